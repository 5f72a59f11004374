"""Process-mining interop: the engine's event log as XES, and historical XES logs as processes.

XES (IEEE 1849-2016) is the exchange format of ProM, PM4Py, Disco and Celonis.

**Export** (:func:`export_xes`) writes one trace per case (``concept:name`` = the case
number) and one event per history entry that moved the case or fired an action:
``opened`` and every ``fired`` entry, plus ``closed``/``cancelled`` (they end the
visit of the step the case was in, so a re-import sees how long that visit lasted).
An event's ``concept:name`` is the title of the step the case entered (also when an
action leads back into its own step: that begins a new visit), the title of the action
if it has no ``next`` (the case stayed where it was), or "Fall beendet"/"Fall storniert";
``lifecycle:transition`` is ``complete``; ``time:timestamp`` is UTC with offset.
``org:resource`` is a *pseudonym* of the actor (``akteur-1``, ``akteur-2``, … in order
of first appearance within one export; the system actor stays ``system``), so an
export does not carry caseworker names and two exports cannot be linked by them.
Case data values, consents, notes and reasons are never exported; besides the
standard keys events carry only ``kimflow_step``, ``kimflow_action`` and
``kimflow_kind`` (ids from the definition), traces ``kimflow_process`` and
``kimflow_version``. The document is written in a stream, a batch of cases at a
time (keyset pagination over case numbers), so memory stays bounded for any size;
:func:`iter_xes` hands out the same document chunk by chunk (the HTTP API streams it).

**Import** (:func:`import_xes`) reads a log (``.xes`` or gzip-compressed, detected by
content) with the standard library's expat parser through start/end handlers
(no element tree is built: XES keeps everything in attributes). Only events with
``lifecycle:transition`` ``complete`` count (events without one count as complete);
events of a trace are ordered by timestamp (ties keep file order); timestamps go to
UTC (a timestamp without offset is read as UTC and counted in the summary). Then:

* a definition is generated and deployed: one step per activity (id slugified from the
  activity name, German title = the activity name, agency ``HIST``), an action from
  each step to every step that directly follows it somewhere in the log, an action
  ``beenden`` to the final step ``ende`` from every activity that ends a case, and a
  synthetic start step ``beginn`` only if cases start with different activities (a
  definition has one start step, and every step must be reachable from it).
  ``expected`` of a step is its observed p90 dwell time rounded up to whole calendar
  days (at least 1; 30 if the activity never has a dwell time), so "overrun" means
  "slower than nine in ten historical visits" (the median would call half of all
  visits overrun; calendar days because the log's time is calendar time);
* the cases are written in bulk (the DBAPI's ``executemany`` on the store's tables,
  one transaction per batch of about 50,000 events; if a batch fails, the batches
  already written and the definition are deleted again): per trace one case (data
  ``xes_case`` = the trace's ``concept:name``), per event one history entry
  (``opened``, then ``fired`` with action ``zu_<step>``; actor = ``org:resource`` or the
  importing actor) and one visit. The visit of an event lasts until the case's next
  event; ``due_at``, ``overran``, ``office_days`` and ``excess_office_days`` are filled
  as the engine fills them when it closes a visit. The case's **last event closes the
  case**: a ``closed`` entry at the same instant (outcome ``historisch``, marked
  ``detail.import = "xes"`` so that an export leaves it out), and the last visit is
  stored like a final step's visit: ``left_at = entered_at`` with ``office_days`` NULL,
  which is how :mod:`engine.dwell` tells visits without a dwell time.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import time
import unicodedata
import zlib
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO
from xml.parsers import expat
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import store as st
from engine.case import CANCELLED, CLOSED
from engine.cases import SYSTEM_ACTOR
from engine.definition import calendar_for
from engine.durations import Duration, DurationUnit
from engine.dwell import percentile
from engine.errors import DefinitionNotFound, EventLogError, StoreError

if TYPE_CHECKING:
    from engine.cases import Engine

XES_NAMESPACE = "http://www.xes-standard.org/"
HIST_AGENCY = "HIST"
HIST_AGENCY_NAME = "Historisches Ereignisprotokoll"
START_STEP = "beginn"
FINAL_STEP = "ende"
END_ACTION = "beenden"
OUTCOME = "historisch"
CASE_FIELD = "xes_case"
DEFAULT_EXPECTED_DAYS = 30
IMPORT_MARK = "xes"

_PROCESS_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_MAX_STEP_ID = 60  # action names are "zu_" + step id, and identifiers have at most 63 characters
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EVENT_KEYS = frozenset({"concept:name", "time:timestamp", "lifecycle:transition", "org:resource"})
_EXPORTED_KINDS = ("opened", "fired", CLOSED, CANCELLED)
_END_TITLES = {CLOSED: "Fall beendet", CANCELLED: "Fall storniert"}
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What :func:`import_xes` loaded.

    Attributes:
        process_id/version: The deployed process.
        cases: Cases written (traces with at least one complete event).
        events: Events written (lifecycle ``complete`` or none).
        activities: Distinct activities (= steps, without ``beginn``/``ende``).
        directly_follows: Distinct pairs of directly following activities (= actions between steps).
        skipped_events: Events left out because their lifecycle transition is not ``complete``.
        skipped_traces: Traces left out because they have no complete event.
        naive_timestamps: Timestamps without a UTC offset (read as UTC).
        first_event/last_event: The earliest and latest event (UTC).
        seconds: Wall time of the import.
    """

    process_id: str
    version: int
    cases: int
    events: int
    activities: int
    directly_follows: int
    skipped_events: int
    skipped_traces: int
    naive_timestamps: int
    first_event: datetime
    last_event: datetime
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "process": self.process_id,
            "version": self.version,
            "cases": self.cases,
            "events": self.events,
            "activities": self.activities,
            "directly_follows": self.directly_follows,
            "skipped_events": self.skipped_events,
            "skipped_traces": self.skipped_traces,
            "naive_timestamps": self.naive_timestamps,
            "first_event": self.first_event.isoformat(),
            "last_event": self.last_event.isoformat(),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :func:`export_xes` wrote: traces (cases), events, and distinct actors (pseudonymised)."""

    traces: int
    events: int
    actors: int


# --------------------------------------------------------------------------- export


def export_xes(
    engine: Engine, out: BinaryIO | str | Path, *, process_id: str | None = None, batch_cases: int = 500
) -> ExportSummary:
    """Write the engine's event log (all processes, or one) as an XES document.

    Args:
        engine: Whose store is read.
        out: A binary stream, or a path (``*.gz``: gzip-compressed).
        process_id: Only cases of this process (all versions).
        batch_cases: Cases read per query; bounds the memory used.

    Raises:
        DefinitionNotFound: If ``process_id`` is given but not deployed.
    """
    if process_id is not None:
        engine.registry.latest_version(process_id)  # raises DefinitionNotFound
    with ExitStack() as stack:
        if isinstance(out, str | Path):
            path = Path(out)
            raw: IO[bytes] = stack.enter_context(path.open("wb"))
            if path.suffix == ".gz":
                raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0))
        else:
            raw = out
        writer = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")  # type: ignore[arg-type]
        exporter = _Exporter(engine, process_id, batch_cases)
        try:
            for chunk in exporter.chunks():
                writer.write(chunk)
        finally:
            writer.flush()
            writer.detach()  # leave a caller's stream open
        return exporter.summary()


def iter_xes(engine: Engine, *, process_id: str | None = None, batch_cases: int = 500) -> Iterator[bytes]:
    """The document of :func:`export_xes` as UTF-8 chunks (one per batch of cases), for streaming.

    A server can send each chunk as it is made, so neither it nor the client holds the
    whole log. The process is looked up at once, before the first chunk, so an unknown
    one is an error the caller can still answer properly; the chunks themselves read the
    store a batch at a time, each batch in its own read transaction (as the export does).

    Raises:
        DefinitionNotFound: If ``process_id`` is given but not deployed (raised by this call).
    """
    if process_id is not None:
        engine.registry.latest_version(process_id)  # raises DefinitionNotFound
    return (chunk.encode("utf-8") for chunk in _Exporter(engine, process_id, batch_cases).chunks())


class _Exporter:
    """Makes the XES document as text chunks: the header, one chunk per batch of cases, the end."""

    def __init__(self, engine: Engine, process_id: str | None, batch_cases: int) -> None:
        self.engine = engine
        self.process_id = process_id
        self.batch_cases = max(1, batch_cases)
        self.pseudonyms: dict[str, str] = {SYSTEM_ACTOR: SYSTEM_ACTOR}
        self.titles: dict[tuple[str, int], tuple[dict[str, str], dict[tuple[str, str], tuple[str, bool]]]] = {}
        self.quoted: dict[str, str] = {}  # titles, step ids, pseudonyms repeat: quote each once
        self.traces = 0
        self.events = 0

    def _q(self, value: str) -> str:
        quoted = self.quoted.get(value)
        if quoted is None:
            quoted = self.quoted[value] = _attr(value)
        return quoted

    def chunks(self) -> Iterator[str]:
        name = self.process_id or "kimflow"
        yield (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<log xes.version="1849-2016" xes.features="" xmlns="{XES_NAMESPACE}">\n'
            '\t<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>\n'
            '\t<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>\n'
            '\t<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>\n'
            '\t<extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>\n'
            '\t<global scope="trace">\n\t\t<string key="concept:name" value="__INVALID__"/>\n\t</global>\n'
            '\t<global scope="event">\n'
            '\t\t<string key="concept:name" value="__INVALID__"/>\n'
            '\t\t<date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>\n'
            '\t\t<string key="lifecycle:transition" value="complete"/>\n'
            '\t\t<string key="org:resource" value="__INVALID__"/>\n'
            "\t</global>\n"
            '\t<classifier name="Aktivität" keys="concept:name"/>\n'
            '\t<classifier name="Aktivität und Lebenszyklus" keys="concept:name lifecycle:transition"/>\n'
            f'\t<string key="concept:name" value={_attr(name)}/>\n'
            '\t<string key="lifecycle:model" value="standard"/>\n'
            '\t<string key="source" value="kimflow"/>\n'
        )
        for cases, events in self._batches():
            yield self._render(cases, events)
        yield "</log>\n"

    def summary(self) -> ExportSummary:
        return ExportSummary(self.traces, self.events, len(self.pseudonyms) - 1)

    def _batches(self) -> Iterator[tuple[list[Any], list[Any]]]:
        """Pages of ``batch_cases`` cases in case-number order, each with its exported history entries."""
        c = st.cases_t.c
        e = st.events_t.c
        # Imported cases end with a synthetic 'closed' entry (detail.import); only end entries need detail.
        end_detail = sa.case((e.kind.in_((CLOSED, CANCELLED)), e.detail), else_=sa.null())
        columns = (e.case_id, e.at, e.actor, e.kind, e.action, e.from_step, e.to_step, end_detail)
        after = 0
        while True:
            query = sa.select(c.id, c.process_id, c.process_version).where(c.id > after)
            if self.process_id is not None:
                # Deliberately not searchable by index: the only index on process_id is (process_id, step),
                # and using it would sort all of the process's cases for every page. Paging along the
                # primary key with the filter stays linear. With an index on (process_id, id) this can
                # become a plain comparison.
                query = query.where(sa.func.coalesce(c.process_id, "") == self.process_id)
            query = query.order_by(c.id).limit(self.batch_cases)
            with self.engine.store.read() as conn:
                cases = conn.execute(query).all()
                if not cases:
                    return
                low, high = cases[0][0], cases[-1][0]
                if self.process_id is None:  # every case in the range is in the page
                    where = [e.case_id >= low, e.case_id <= high]
                else:
                    where = [e.case_id.in_([row[0] for row in cases])]
                events = conn.execute(
                    sa.select(*columns).where(*where, e.kind.in_(_EXPORTED_KINDS)).order_by(e.case_id, e.seq)
                ).all()
            yield cases, events
            after = high

    def _names(self, process_id: str, version: int) -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, bool]]]:
        """Step titles, and per (step, action) the action's title and whether it enters a step (``next``)."""
        key = (process_id, version)
        names = self.titles.get(key)
        if names is None:
            definition = self.engine.registry.get(process_id, version).definition
            steps = {s.id: s.title for s in definition.steps.values()}
            actions = {
                (s.id, a.name): (a.title, a.next is not None)
                for s in definition.steps.values()
                for a in s.actions.values()
            }
            names = self.titles[key] = (steps, actions)
        return names

    def _pseudonym(self, actor: str) -> str:
        pseudonym = self.pseudonyms.get(actor)
        if pseudonym is None:
            pseudonym = self.pseudonyms[actor] = f"akteur-{len(self.pseudonyms)}"
        return pseudonym

    def _render(self, cases: list[Any], events: list[Any]) -> str:
        by_case: dict[int, list[Any]] = {}
        for row in events:
            by_case.setdefault(row[0], []).append(row)
        parts: list[str] = []
        add = parts.append
        for case_id, process_id, version in cases:
            rows = by_case.get(case_id, ())
            steps, actions = self._names(process_id, version)
            add(
                f'\t<trace>\n\t\t<string key="concept:name" value="{case_id}"/>\n'
                f'\t\t<string key="kimflow_process" value={self._q(process_id)}/>\n'
                f'\t\t<int key="kimflow_version" value="{version}"/>\n'
            )
            self.traces += 1
            for _, at, actor, kind, action, from_step, to_step, detail in rows:
                if kind in _END_TITLES:
                    if isinstance(detail, dict) and detail.get("import") == IMPORT_MARK:
                        continue  # the importer's end marker carries nothing the log did not have
                    activity = _END_TITLES[kind]
                elif kind == "fired" and to_step == from_step and action is not None:
                    # an action without 'next' is an activity of its own; one leading back into its
                    # own step begins a new visit, so it is named after the step like any other move
                    title, moves = actions.get((from_step, action), (action, False))
                    activity = steps.get(to_step, to_step) if moves else title
                else:
                    activity = steps.get(to_step, to_step or "")
                add(
                    f'\t\t<event>\n\t\t\t<string key="concept:name" value={self._q(activity)}/>\n'
                    f'\t\t\t<date key="time:timestamp" value="{_timestamp(at)}"/>\n'
                    '\t\t\t<string key="lifecycle:transition" value="complete"/>\n'
                    f'\t\t\t<string key="org:resource" value={self._q(self._pseudonym(actor))}/>\n'
                    f'\t\t\t<string key="kimflow_kind" value="{kind}"/>\n'
                )
                step = to_step or from_step
                if step:
                    add(f'\t\t\t<string key="kimflow_step" value={self._q(step)}/>\n')
                if action:
                    add(f'\t\t\t<string key="kimflow_action" value={self._q(action)}/>\n')
                add("\t\t</event>\n")
                self.events += 1
            add("\t</trace>\n")
        return "".join(parts)


_XML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _attr(value: str) -> str:
    """``value`` as a double-quoted XML attribute (characters XML 1.0 cannot hold become U+FFFD)."""
    text = value.translate(_XML_ESCAPES)
    if _NOT_XML.search(text):
        text = _NOT_XML.sub("\ufffd", text)
    return f'"{text}"'


def _timestamp(at: datetime) -> str:
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="milliseconds" if at.microsecond % 1000 == 0 else "microseconds")


# --------------------------------------------------------------------------- import: reading


class ParsedLog:
    """A parsed log, compactly: per case a slice of parallel arrays, ordered by time.

    Attributes:
        name: The log's ``concept:name``, if it has one.
        activities/resources: Names by first appearance (their index is what the arrays hold).
        case_names: Per case the trace's ``concept:name`` (``trace-<n>`` if it has none).
        offsets: Case ``i`` has the events ``offsets[i]:offsets[i + 1]``.
        times/acts/res: Per event the UTC instant (microseconds since 1970), the activity
            index and the resource index (-1: none).
        traces/skipped_events/skipped_traces/naive: Counts for the summary.
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.activities: dict[str, int] = {}
        self.resources: dict[str, int] = {}
        self.case_names: list[str] = []
        self.offsets = array("q", [0])  # case i has events offsets[i]:offsets[i + 1]
        self.times = array("q")  # UTC microseconds since 1970
        self.acts = array("i")
        self.res = array("i")  # -1: no resource
        self.traces = 0
        self.skipped_events = 0
        self.skipped_traces = 0
        self.naive = 0


class _Reader:
    """Expat handlers that collect a XES log into a :class:`ParsedLog`.

    Only the start and end of elements are handled (XES keeps everything in attributes);
    the handlers track the depth so that only direct children of a ``<trace>`` or an
    ``<event>`` count (nested attributes are ignored). Attributes arrive as an ordered
    list ``[name, value, name, value, …]``, which expat builds faster than a dict.
    """

    def __init__(self, name: str) -> None:
        self.file = name
        self.log = ParsedLog()
        self.parser = parser = expat.ParserCreate()
        parser.ordered_attributes = True
        self.trace_name: str | None = None
        self.event_line = 0
        self.pending: list[tuple[int, int, int, int]] = []
        self._install()

    def _install(self) -> None:
        # Closures over local cells: the two handlers run for every element, so they avoid attribute look-ups.
        parser = self.parser
        wanted = _EVENT_KEYS
        depth = 0
        trace_depth = -1
        event_depth = -1
        event: dict[str, str] = {}

        def start(name: str, attrs: list[str]) -> None:
            nonlocal depth, trace_depth, event_depth, event
            depth += 1
            if depth == event_depth + 1:  # an attribute of the current event: the hot path
                if attrs and attrs[0] == "key" and len(attrs) >= 4 and attrs[2] == "value":
                    if attrs[1] in wanted:
                        event[attrs[1]] = attrs[3]
                else:
                    values = dict(zip(attrs[::2], attrs[1::2], strict=True))
                    key = values.get("key")
                    if key in wanted:
                        event[key] = values.get("value", "")
                return
            local = name.rpartition(":")[2]
            if depth == trace_depth + 1:
                if local == "event":
                    event_depth = depth
                    event = {}
                    self.event_line = parser.CurrentLineNumber
                else:
                    values = dict(zip(attrs[::2], attrs[1::2], strict=True))
                    if values.get("key") == "concept:name":
                        self.trace_name = values.get("value", "")
            elif depth == 2:
                if local == "trace":
                    trace_depth = depth
                    self.trace_name = None
                    self.pending = []
                else:
                    values = dict(zip(attrs[::2], attrs[1::2], strict=True))
                    if values.get("key") == "concept:name":
                        self.log.name = values.get("value")
            elif depth == 1 and local != "log":
                raise EventLogError(
                    f"{self.file} is not an XES event log: the document element is <{name}>, expected <log>"
                )

        def end(_name: str) -> None:
            nonlocal depth, trace_depth, event_depth
            if depth == event_depth:
                event_depth = -1
                self._finish_event(event)
            elif depth == trace_depth:
                trace_depth = -1
                self._finish_trace()
            depth -= 1

        parser.StartElementHandler = start
        parser.EndElementHandler = end

    def feed(self, stream: IO[bytes]) -> ParsedLog:
        parse = self.parser.Parse
        while chunk := stream.read(_CHUNK):
            parse(chunk, False)
        parse(b"", True)
        return self.log

    def _where(self) -> str:
        trace = f"trace '{self.trace_name}'" if self.trace_name is not None else f"trace {self.log.traces + 1}"
        return f"{self.file}, line {self.event_line} ({trace})"

    def _finish_event(self, event: dict[str, str]) -> None:
        log = self.log
        lifecycle = event.get("lifecycle:transition")
        if lifecycle is not None and lifecycle.strip().lower() != "complete":
            log.skipped_events += 1
            return
        activity = event.get("concept:name")
        if activity is None:
            raise EventLogError(f"{self._where()}: the event has no concept:name (activity)")
        stamp = event.get("time:timestamp")
        if stamp is None:
            raise EventLogError(f"{self._where()}: the event has no time:timestamp")
        try:
            instant = datetime.fromisoformat(stamp.strip())
        except ValueError as exc:
            raise EventLogError(f"{self._where()}: time:timestamp '{stamp}' is not an ISO 8601 date-time") from exc
        if instant.tzinfo is None:
            log.naive += 1
            instant = instant.replace(tzinfo=UTC)
        act = log.activities.get(activity)
        if act is None:
            act = log.activities[activity] = len(log.activities)
        resource = event.get("org:resource")
        if resource is None:
            res = -1
        else:
            res = log.resources.get(resource, -1)
            if res < 0:
                res = log.resources[resource] = len(log.resources)
        self.pending.append(((instant - _EPOCH) // _MICROSECOND, len(self.pending), act, res))

    def _finish_trace(self) -> None:
        log = self.log
        log.traces += 1
        pending = self.pending
        if not pending:
            log.skipped_traces += 1
            return
        pending.sort()  # by time; the running number keeps file order for equal times
        for micros, _, act, res in pending:
            log.times.append(micros)
            log.acts.append(act)
            log.res.append(res)
        log.offsets.append(len(log.times))
        log.case_names.append(self.trace_name if self.trace_name is not None else f"trace-{log.traces}")


def read_log(path: str | Path) -> ParsedLog:
    """Parse an XES file (plain or gzip) into compact arrays.

    Raises:
        EngineError: If the file cannot be read, is not XML, is not an XES log, has no
            traces or no complete events, or an event lacks its activity or timestamp.
    """
    path = Path(path)
    name = path.name
    reader = _Reader(name)
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            if magic == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    log = reader.feed(unzipped)  # type: ignore[arg-type]
            else:
                log = reader.feed(raw)
    except expat.ExpatError as exc:
        raise EventLogError(
            f"{name} is not a well-formed XML file (line {exc.lineno}, column {exc.offset + 1}: "
            f"{expat.ErrorString(exc.code)})"
        ) from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise EventLogError(f"{name} is not a readable gzip file ({exc})") from exc
    except OSError as exc:
        raise EventLogError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if log.traces == 0:
        raise EventLogError(f"{name} contains no traces (<trace> elements directly in <log>)")
    if not log.times:
        raise EventLogError(
            f"{name} has no events with lifecycle:transition 'complete' "
            f"({log.skipped_events} other events in {log.traces} traces)"
        )
    return log


# --------------------------------------------------------------------------- import: the definition


def slugify(text: str) -> str:
    """An identifier from a name: German letters transcribed, lowercase ASCII, digits and ``_``."""
    text = text.translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not slug:
        slug = "schritt"
    if not slug[0].isalpha():
        slug = f"s_{slug}"
    return slug[:_MAX_STEP_ID].rstrip("_")


def _unique(slug: str, used: set[str]) -> str:
    candidate = slug
    n = 2
    while candidate in used:
        suffix = f"_{n}"
        candidate = slug[: _MAX_STEP_ID - len(suffix)].rstrip("_") + suffix
        n += 1
    used.add(candidate)
    return candidate


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _q(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (a JSON string, with YAML's line breaks escaped)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


@dataclass(frozen=True, slots=True)
class _Plan:
    step_ids: list[str]  # by activity index
    expected_days: list[int]  # by activity index
    start: str
    follows: dict[int, list[int]]  # activity -> following activities (first-seen order)
    ends: set[int]
    starts: list[int]
    pairs: int


def _plan(log: ParsedLog) -> _Plan:
    n = len(log.activities)
    used = {START_STEP, FINAL_STEP}
    step_ids = [_unique(slugify(name), used) for name in log.activities]
    dwell: list[list[int]] = [[] for _ in range(n)]
    follows: dict[int, dict[int, None]] = {a: {} for a in range(n)}
    ends: set[int] = set()
    starts: dict[int, None] = {}
    times, acts, offsets = log.times, log.acts, log.offsets
    for case in range(len(log.case_names)):
        first, last = offsets[case], offsets[case + 1] - 1
        starts[acts[first]] = None
        for i in range(first, last):
            a = acts[i]
            dwell[a].append(times[i + 1] - times[i])
            follows[a][acts[i + 1]] = None
        ends.add(acts[last])
    expected = []
    for values in dwell:
        if values:
            values.sort()
            p90_days = percentile(values, 0.9) / 86_400e6
            expected.append(max(1, math.ceil(p90_days - 1e-9)))
        else:
            expected.append(DEFAULT_EXPECTED_DAYS)
    start = step_ids[next(iter(starts))] if len(starts) == 1 else START_STEP
    return _Plan(
        step_ids,
        expected,
        start,
        {a: list(f) for a, f in follows.items()},
        ends,
        list(starts),
        sum(len(f) for f in follows.values()),
    )


def _days(n: int) -> str:
    return f"{n} Kalendertag" if n == 1 else f"{n} Kalendertage"


def definition_yaml(process_id: str, log: ParsedLog, plan: _Plan, source: str) -> str:
    """The generated process definition as YAML text."""
    names = list(log.activities)
    title = f"Historisches Ereignisprotokoll: {log.name or source}"
    description = (
        f"Aus dem Ereignisprotokoll {source} eingelesen (kimflow import xes): {len(log.case_names)} Fälle, "
        f"{len(log.times)} Ereignisse, {len(names)} Aktivitäten. Ein Schritt je Aktivität; ein Aufenthalt "
        "dauert vom Ereignis der Aktivität bis zum nächsten Ereignis des Falls; das letzte Ereignis beendet "
        "den Fall. Erwartete Dauer: 90. Perzentil der beobachteten Verweildauer, aufgerundet auf "
        f"Kalendertage (mindestens 1; {DEFAULT_EXPECTED_DAYS} ohne Beobachtung)."
    )
    lines = [
        "# Erzeugt von 'kimflow import xes'; nicht von Hand ändern.",
        "schema_version: 1",
        f"id: {process_id}",
        "version: 1",
        f"title: {_q(title)}",
        f"description: {_q(description)}",
        "agencies:",
        f"  {HIST_AGENCY}: {_q(HIST_AGENCY_NAME)}",
        "data:",
        f"  {CASE_FIELD}:",
        "    type: string",
        f"    label: {_q('Fall-ID im Ereignisprotokoll')}",
        "    category: process",
        f"start: {plan.start}",
        "steps:",
    ]

    def action(name: str, title: str, target: str) -> None:
        lines.extend([f"      {name}:", f"        title: {_q(title)}", f"        next: {target}"])

    if plan.start == START_STEP:
        lines.extend(
            [
                f"  {START_STEP}:",
                f"    title: {_q('Beginn des Ereignisprotokolls')}",
                f"    agency: {HIST_AGENCY}",
                f"    expected: {_q(_days(1))}",
                "    actions:",
            ]
        )
        for a in plan.starts:
            action(f"zu_{plan.step_ids[a]}", names[a] or "(ohne Namen)", plan.step_ids[a])
    for a, step_id in enumerate(plan.step_ids):
        lines.extend(
            [
                f"  {step_id}:",
                f"    title: {_q(names[a] or '(ohne Namen)')}",
                f"    agency: {HIST_AGENCY}",
                f"    expected: {_q(_days(plan.expected_days[a]))}",
                "    actions:",
            ]
        )
        for b in plan.follows[a]:
            action(f"zu_{plan.step_ids[b]}", names[b] or "(ohne Namen)", plan.step_ids[b])
        if a in plan.ends:
            action(END_ACTION, "Ende des Protokolls", FINAL_STEP)
    lines.extend(
        [
            f"  {FINAL_STEP}:",
            f"    title: {_q('Ende des Ereignisprotokolls')}",
            "    final: true",
            f"    outcome: {OUTCOME}",
        ]
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- import: writing


def import_xes(
    engine: Engine, path: str | Path, *, process_id: str, actor: str, batch_events: int = 50_000
) -> ImportSummary:
    """Load a historical XES event log as a new process with its cases, history and step visits.

    Args:
        engine: Where to load it (schema migrated).
        path: The ``.xes`` file, plain or gzip-compressed.
        process_id: Id of the new process (lowercase letters, digits, ``_``); must not exist yet.
        actor: Who imports (deploys the definition; actor of events without ``org:resource``).
        batch_events: Events written per transaction.

    Raises:
        EngineError: Bad input (see :func:`read_log`), a bad or existing process id. Nothing
            stays behind if writing fails part-way.
        DefinitionError: If the generated definition is refused (e.g. too many activities).
    """
    started = time.perf_counter()
    if not _PROCESS_ID.match(process_id):
        raise EventLogError(
            f"'{process_id}' is not a valid process id (lowercase letters, digits and '_', "
            "starting with a letter, 2 to 63 characters)"
        )
    try:
        engine.registry.latest_version(process_id)
    except DefinitionNotFound:
        pass
    else:
        raise EventLogError(f"process '{process_id}' already exists; import the log under a new process id")
    source = Path(path)
    log = read_log(source)
    plan = _plan(log)
    deployment = engine.deploy_text(
        definition_yaml(process_id, log, plan, source.name), actor=actor, file=f"xes:{source.name}"
    )
    try:
        _Writer(engine, log, plan, process_id, deployment.version, actor).run(max(1, batch_events))
    except BaseException as exc:
        try:
            _remove(engine, process_id)
        except Exception as cleanup:  # keep the original error; say what is left behind
            exc.add_note(f"the partial import of '{process_id}' could not be removed: {cleanup}")
        raise
    return ImportSummary(
        process_id=process_id,
        version=deployment.version,
        cases=len(log.case_names),
        events=len(log.times),
        activities=len(log.activities),
        directly_follows=plan.pairs,
        skipped_events=log.skipped_events,
        skipped_traces=log.skipped_traces,
        naive_timestamps=log.naive,
        first_event=_EPOCH + timedelta(microseconds=min(log.times)),
        last_event=_EPOCH + timedelta(microseconds=max(log.times)),
        seconds=time.perf_counter() - started,
    )


_CASE_COLUMNS = (
    "id",
    "process_id",
    "process_version",
    "step",
    "status",
    "version",
    "data",
    "assignee",
    "waiting_on",
    "paused",
    "pause_reason",
    "outcome",
    "opened_at",
    "updated_at",
    "closed_at",
    "due_at",
    "visit_id",
    "step_entered_at",
    "parent_id",
    "child_name",
)
_VISIT_COLUMNS = (
    "id",
    "case_id",
    "process_id",
    "process_version",
    "step",
    "agency",
    "waiting_on",
    "entered_at",
    "left_at",
    "due_at",
    "warn_at",
    "paused_seconds",
    "paused_since",
    "overran",
    "office_days",
    "excess_office_days",
    "reason_code",
    "handoff_from",
)
_EVENT_COLUMNS = ("case_id", "seq", "at", "actor", "kind", "action", "from_step", "to_step", "changes", "detail")
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH_NAIVE.toordinal()
_HOUR = 3_600_000_000
_DAY = 86_400_000_000


class _Codec:
    """Values in the form the database driver takes, as SQLAlchemy's column types would bind them.

    Binding through SQLAlchemy costs several microseconds per value (a type decorator and a
    dialect processor per datetime), which is most of a bulk import. Instants are therefore
    formatted here directly: on SQLite as SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff`` text in
    UTC, on PostgreSQL as the aware UTC datetime (checked against SQLAlchemy's own processors
    when the codec is made; if they ever differ, SQLAlchemy's processors are used). JSON is
    text: SQLAlchemy's serializer on SQLite, ``json.dumps`` for PostgreSQL's ``COPY`` (which
    parses it into ``jsonb``).
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        stamp = st.UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        as_bool = sa.Boolean().dialect_impl(dialect).bind_processor(dialect)
        self._stamp = stamp or _same
        if dialect.name == "postgresql":
            self.json: Any = json.dumps
            self.true, self.false = True, False
        else:
            self.json = st.JSONType.dialect_impl(dialect).bind_processor(dialect) or _same
            self.true = as_bool(True) if as_bool else True
            self.false = as_bool(False) if as_bool else False
        self.empty_json = self.json({})
        samples = (datetime(2011, 10, 11, 13, 45, 40, 276000, tzinfo=UTC), datetime(1999, 1, 1, tzinfo=UTC))
        if dialect.name == "sqlite" and all(self._stamp(v) == _sqlite_text(v) for v in samples):
            self.instant = _sqlite_text
        elif dialect.name == "postgresql" and all(self._stamp(v) == v for v in samples):
            self.instant = _same
        else:  # pragma: no cover - only if SQLAlchemy changes how it binds datetimes
            self.instant = self._stamp

    def micros(self, value: int) -> Any:
        """The stored form of the instant ``value`` microseconds after 1970-01-01 UTC."""
        if self.instant is _sqlite_text:
            return (_EPOCH_NAIVE + timedelta(microseconds=value)).isoformat(" ", "microseconds")
        return self.instant(_EPOCH + timedelta(microseconds=value))


def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(value: datetime) -> datetime:
    return value


class _Bulk:
    """Rows of fixed columns written inside the caller's transaction: ``COPY`` on PostgreSQL, else ``executemany``.

    PostgreSQL's ``executemany`` (psycopg's pipeline) still costs a round of Python per row;
    ``COPY … FROM STDIN`` streams the rows and is several times faster.
    """

    def __init__(self, dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.copy = dialect.name == "postgresql"
        if self.copy:
            quote = dialect.identifier_preparer.quote
            names = ", ".join(quote(name) for name in columns)
            self.sql = f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
            return
        compiled = sa.insert(table).inline().compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.positional = dialect.positional
        if self.positional:
            order = list(compiled.positiontup or ())
            if sorted(order) != sorted(columns):  # pragma: no cover - the compiler adds a defaulted column
                raise RuntimeError(f"unexpected columns in {self.sql}")
            self.order = [columns.index(name) for name in order]
        elif set(compiled.binds) - set(columns):  # pragma: no cover
            raise RuntimeError(f"unexpected columns in {self.sql}")

    def run(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cursor = conn.connection.cursor()
        try:
            self._write(cursor, rows)
        except conn.dialect.loaded_dbapi.Error as exc:  # the driver's own errors: SQLAlchemy is bypassed here
            first = str(exc).strip().splitlines()
            raise StoreError(f"database error: {first[0] if first else type(exc).__name__}") from exc
        finally:
            cursor.close()

    def _write(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        if self.copy:
            with cursor.copy(self.sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if not self.positional:  # pragma: no cover - both supported backends bind positionally or COPY
            cursor.executemany(self.sql, [dict(zip(self.columns, row, strict=True)) for row in rows])
            return
        if self.order != list(range(len(self.columns))):
            rows = [tuple(row[i] for i in self.order) for row in rows]
        cursor.executemany(self.sql, rows)


def _reserve_ids(conn: sa.Connection, table: sa.Table, n: int) -> list[int]:
    """``n`` new primary keys of ``table`` for rows this transaction is about to insert.

    PostgreSQL: values drawn from the column's sequence (safe with concurrent writers).
    SQLite: the writer holds the database's write lock for the whole transaction
    (``BEGIN IMMEDIATE``) and an INTEGER PRIMARY KEY is the rowid, so ``max(id) + 1 …``
    are exactly the ids SQLite itself would assign next.
    """
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        ids = conn.execute(
            sa.text("SELECT array_agg(nextval(pg_get_serial_sequence(:table, 'id'))) FROM generate_series(1, :n)"),
            {"table": table.name, "n": n},
        ).scalar_one()
        return [int(i) for i in ids]
    if conn.dialect.name == "sqlite":
        current = conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
        return list(range(current + 1, current + 1 + n))
    raise NotImplementedError(f"bulk import is not implemented for the {conn.dialect.name} backend")


class _Writer:
    def __init__(self, engine: Engine, log: ParsedLog, plan: _Plan, process_id: str, version: int, actor: str) -> None:
        self.engine = engine
        self.log = log
        self.plan = plan
        self.process_id = process_id
        self.version = version
        self.actor = actor[:128]
        # The generated definition has the default calendar (NRW); share the loader's instance and its year cache.
        self.calendar = calendar_for("NW", ())
        self.expected = [Duration(d, DurationUnit.CALENDAR_DAYS) for d in plan.expected_days]
        self.actors = [r[:128] for r in log.resources]
        self.ref = f"{process_id}@{version}"
        dialect = engine.store.engine.dialect
        self.codec = _Codec(dialect)
        self.cases = _Bulk(dialect, st.cases_t, _CASE_COLUMNS)
        self.visits = _Bulk(dialect, st.visits_t, _VISIT_COLUMNS)
        self.events = _Bulk(dialect, st.events_t, _EVENT_COLUMNS)
        self.due: dict[tuple[int, int], tuple[datetime, Any, int]] = {}
        self.office: dict[tuple[int, int], int] = {}
        self.offsets: dict[int, int] = {}
        self.zone = ZoneInfo(self.calendar.timezone)

    def run(self, batch_events: int) -> None:
        offsets = self.log.offsets
        cases = len(self.log.case_names)
        first = 0
        while first < cases:
            last = first + 1
            while last < cases and offsets[last + 1] - offsets[first] <= batch_events:
                last += 1
            with self.engine.store.transaction() as conn:
                self._batch(conn, first, last)
            first = last

    def _local_day(self, micros: int) -> int:
        """Ordinal of the calendar's local date at UTC ``micros`` (the UTC offset is cached per hour)."""
        hour = micros // _HOUR
        offset = self.offsets.get(hour)
        if offset is None:
            zone = self.zone
            begin = (_EPOCH + timedelta(microseconds=hour * _HOUR)).astimezone(zone).utcoffset()
            end = (_EPOCH + timedelta(microseconds=(hour + 1) * _HOUR - 1)).astimezone(zone).utcoffset()
            if begin != end:  # the offset changes within this hour: no caching, ask the calendar
                return self.calendar.local_date(_EPOCH + timedelta(microseconds=micros)).toordinal()
            offset = self.offsets[hour] = (begin or timedelta()) // _MICROSECOND
        return (micros + offset) // _DAY + _EPOCH_ORDINAL

    def _due(self, day: int, activity: int) -> tuple[datetime, Any, int]:
        """``(due_at, its stored form, ordinal of its last day)`` of a visit entered on local ``day``."""
        key = (day, activity)
        found = self.due.get(key)
        if found is None:
            # = calendar.due_at(entered, expected): the deadline ends with its last (local) day
            last = self.calendar.due_date(date.fromordinal(day), self.expected[activity])
            due = self.calendar.end_of_day(last)
            found = self.due[key] = (due, self.codec.instant(due), last.toordinal())
        return found

    def _office_days(self, start: datetime, start_day: int, end: datetime, end_day: int) -> int:
        """``calendar.office_days_between(start, end)``, which depends on the two local days only."""
        if end_day <= start_day:
            return 0
        key = (start_day, end_day)
        found = self.office.get(key)
        if found is None:
            found = self.office[key] = self.calendar.office_days_between(start, end)
        return found

    def _batch(self, conn: sa.Connection, first: int, last: int) -> None:
        log, plan, codec = self.log, self.plan, self.codec
        times, acts, res, offsets = log.times, log.acts, log.res, log.offsets
        step_ids, actors = plan.step_ids, self.actors
        office_days, local_day = self._office_days, self._local_day
        pid, version, actor, empty = self.process_id, self.version, self.actor, codec.empty_json
        true, false = codec.true, codec.false
        begin_all, end_all = offsets[first], offsets[last]
        case_ids = _reserve_ids(conn, st.cases_t, last - first)
        visit_ids = _reserve_ids(conn, st.visits_t, end_all - begin_all)
        opened_detail = codec.json({"process": self.ref, "import": IMPORT_MARK})
        closed_detail = codec.json(
            {"reason": "Ende des importierten Ereignisprotokolls", "outcome": OUTCOME, "import": IMPORT_MARK}
        )
        false_paused = false
        case_rows: list[tuple[Any, ...]] = []
        visit_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for n, case in enumerate(range(first, last)):
            case_id = case_ids[n]
            begin, end = offsets[case], offsets[case + 1]
            name = log.case_names[case]
            moments = [_EPOCH + timedelta(microseconds=times[i]) for i in range(begin, end)]
            stored = [codec.micros(times[i]) for i in range(begin, end)]
            days = [local_day(times[i]) for i in range(begin, end)]
            previous: str | None = None
            for j in range(end - begin):
                i = begin + j
                act = acts[i]
                step = step_ids[act]
                r = res[i]
                at = stored[j]
                visit_id = visit_ids[i - begin_all]
                if previous is None:
                    event_rows.append(
                        (
                            case_id,
                            1,
                            at,
                            actors[r] if r >= 0 else actor,
                            "opened",
                            None,
                            None,
                            step,
                            codec.json({CASE_FIELD: [None, name]}),
                            opened_detail,
                        )
                    )
                else:
                    # Back into the same step: a new visit all the same, which the history says with
                    # detail.visit_id (see engine.history); otherwise from_step != to_step says it.
                    detail = codec.json({"visit_id": visit_id}) if previous == step else empty
                    event_rows.append(
                        (case_id, j + 1, at, actors[r] if r >= 0 else actor, "fired", f"zu_{step}", previous, step,
                         empty, detail)
                    )  # fmt: skip
                if j + 1 < end - begin:
                    entered, left = moments[j], moments[j + 1]
                    due, due_stored, due_day = self._due(days[j], act)
                    overran = left > due
                    visit_rows.append(
                        (
                            visit_id,
                            case_id,
                            pid,
                            version,
                            step,
                            HIST_AGENCY,
                            HIST_AGENCY,
                            at,
                            stored[j + 1],
                            due_stored,
                            None,
                            0,
                            None,
                            true if overran else false,
                            office_days(entered, days[j], left, days[j + 1]),
                            office_days(due - _MICROSECOND, due_day, left, days[j + 1]) if overran else 0,
                            None,
                            None,
                        )
                    )
                    previous = step
                else:  # the last event closes the case: its visit ends at once and has no dwell time
                    visit_rows.append(
                        (visit_id, case_id, pid, version, step, HIST_AGENCY, HIST_AGENCY, at, at, None, None, 0,
                         None, None, None, None, None, None)
                    )  # fmt: skip
                    event_rows.append((case_id, j + 2, at, actor, CLOSED, None, step, step, empty, closed_detail))
                    case_rows.append(
                        (
                            case_id,
                            pid,
                            version,
                            step,
                            CLOSED,
                            j + 2,
                            codec.json({CASE_FIELD: name}),
                            None,
                            HIST_AGENCY,
                            false_paused,
                            None,
                            OUTCOME,
                            stored[0],
                            at,
                            at,
                            None,
                            visit_id,
                            at,
                            None,
                            None,
                        )
                    )
        self.cases.run(conn, case_rows)
        self.visits.run(conn, visit_rows)
        self.events.run(conn, event_rows)


def _remove(engine: Engine, process_id: str) -> None:
    """Undo a failed import: its cases, history, visits and the generated definition."""
    cases = sa.select(st.cases_t.c.id).where(st.cases_t.c.process_id == process_id)
    with engine.store.transaction() as conn:
        conn.execute(sa.delete(st.events_t).where(st.events_t.c.case_id.in_(cases)))
        conn.execute(sa.delete(st.visits_t).where(st.visits_t.c.process_id == process_id))
        conn.execute(sa.delete(st.cases_t).where(st.cases_t.c.process_id == process_id))
        conn.execute(sa.delete(st.definitions_t).where(st.definitions_t.c.process_id == process_id))


__all__ = [
    "ExportSummary",
    "ImportSummary",
    "ParsedLog",
    "definition_yaml",
    "export_xes",
    "import_xes",
    "iter_xes",
    "read_log",
    "slugify",
]
