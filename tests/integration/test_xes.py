"""XES export and import, and the dwell report, checked against real municipal event logs.

The expected dwell figures are computed here, independently of ``engine.xes`` and
``engine.dwell``: the file is read with ``xml.etree.ElementTree``, timestamps with
``datetime.fromisoformat``, and the statistics come from ``statistics.mean``,
``statistics.median`` and ``statistics.quantiles(method="inclusive")`` (which
interpolates linearly at position (n - 1) * p, like numpy's default).

Data: ``receipt.xes`` – J.C.A.M. Buijs, "Receipt phase of an environmental permit
application process ('WABO'), CoSeLoG project", 4TU.ResearchData,
doi:10.4121/uuid:a07386a5-7be3-4367-9535-70bc9e77dbe6; ``roadtraffic100traces.xes`` –
M. de Leoni and F. Mannhardt, "Road Traffic Fine Management Process", 4TU.ResearchData,
doi:10.4121/uuid:270fd440-1057-4fb9-89a9-b699b47990f5 (100-case sample). Both are read
from ``../shared/data/eventlogs/`` beside the checkout, never copied into the repository.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from api.cli_xes import register
from engine import Engine, EngineError, FixedClock, StoreError
from engine import store as st
from engine.durations import Duration, DurationUnit
from engine.dwell import StepDwell, dwell_report, percentile
from engine.xes import ImportSummary, export_xes, import_xes, read_log, slugify
from tests.factories import assert_history_explains_case, process_yaml

EVENTLOGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eventlogs"
RECEIPT = EVENTLOGS / "receipt.xes"
RECEIPT_GZ = EVENTLOGS / "receipt.xes.gz"
ROADTRAFFIC = EVENTLOGS / "roadtraffic100traces.xes"
XES = "{http://www.xes-standard.org/}"

needs_logs = pytest.mark.skipif(not RECEIPT.exists(), reason=f"event logs not found in {EVENTLOGS}")


# --------------------------------------------------------------------------- the independent computation


@dataclass(frozen=True)
class Expected:
    cases: int
    events: int
    activities: int
    dwell: dict[str, list[float]]  # activity -> dwell seconds of its visits (the case's last event excluded)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def expected_from(path: Path) -> Expected:
    """Read the log with ElementTree and compute every visit's dwell time, as the issue defines it."""
    root = ET.parse(path).getroot()
    cases = events = 0
    activities: set[str] = set()
    dwell: dict[str, list[float]] = defaultdict(list)
    for trace in (t for t in root if _local(t.tag) == "trace"):
        found = []
        for position, element in enumerate(e for e in trace if _local(e.tag) == "event"):
            attributes = {a.get("key"): a.get("value") for a in element}
            if attributes.get("lifecycle:transition", "complete").lower() != "complete":
                continue
            stamp = datetime.fromisoformat(attributes["time:timestamp"]).astimezone(UTC)
            found.append((stamp, position, attributes["concept:name"]))
        if not found:
            continue
        found.sort()
        cases += 1
        events += len(found)
        for (at, _, activity), (following, _, _) in itertools.pairwise(found):
            dwell[activity].append((following - at).total_seconds())
        activities.update(activity for _, _, activity in found)
    return Expected(cases, events, len(activities), dict(dwell))


def expected_figures(values: list[float]) -> tuple[int, float, float, float]:
    if len(values) == 1:
        return 1, values[0], values[0], values[0]
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8]
    return len(values), statistics.mean(values), statistics.median(values), p90


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def assert_report_matches(report: list[StepDwell], expected: Expected) -> None:
    by_title = {row.title: row for row in report}
    assert sum(row.visits for row in report) == sum(len(v) for v in expected.dwell.values())
    for activity, values in expected.dwell.items():
        row = by_title[activity]
        visits, mean, median, p90 = expected_figures(values)
        assert row.visits == visits, activity
        assert close(row.mean_seconds, mean), (activity, row.mean_seconds, mean)
        assert close(row.median_seconds, median), (activity, row.median_seconds, median)
        assert close(row.p90_seconds, p90), (activity, row.p90_seconds, p90)
    for row in report:
        if row.title not in expected.dwell:
            assert (row.visits, row.mean_seconds, row.median_seconds, row.p90_seconds) == (0, None, None, None)


def count(engine: Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.store.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def case_ids(engine: Engine, process_id: str) -> list[int]:
    with engine.store.transaction() as conn:
        return list(
            conn.execute(sa.select(st.cases_t.c.id).where(st.cases_t.c.process_id == process_id).order_by("id"))
            .scalars()
            .all()
        )


@pytest.fixture(scope="module")
def receipt_expected() -> Expected:
    return expected_from(RECEIPT)


# --------------------------------------------------------------------------- the real logs


@needs_logs
def test_the_independent_parse_agrees_with_the_data_readme(receipt_expected: Expected) -> None:
    assert (receipt_expected.cases, receipt_expected.events, receipt_expected.activities) == (1434, 8577, 27)
    # 7,143 directly-follows occurrences = visits with a dwell time (every event but each case's last)
    assert sum(len(v) for v in receipt_expected.dwell.values()) == 7143


@needs_logs
def test_receipt_imports_with_the_right_counts(engine: Engine, receipt_expected: Expected) -> None:
    summary = import_xes(engine, RECEIPT, process_id="receipt", actor="import-test")
    assert (summary.cases, summary.events, summary.activities) == (1434, 8577, 27)
    assert summary.directly_follows == 99
    assert (summary.skipped_events, summary.skipped_traces, summary.naive_timestamps) == (0, 0, 0)
    assert summary.first_event == datetime(2010, 10, 2, 7, 20, 39, 266000, tzinfo=UTC)
    assert summary.last_event == datetime(2012, 1, 23, 14, 42, 54, 644000, tzinfo=UTC)
    e = st.events_t.c
    ids = st.cases_t.c.process_id == "receipt"
    assert count(engine, st.cases_t, ids, st.cases_t.c.status == "closed") == 1434
    in_receipt = e.case_id.in_(sa.select(st.cases_t.c.id).where(ids))
    assert count(engine, st.events_t, in_receipt, e.kind.in_(("opened", "fired"))) == 8577
    # the case's last event closes it: one 'closed' entry per case, at the same instant
    assert count(engine, st.events_t, in_receipt, e.kind == "closed") == 1434
    v = st.visits_t.c
    assert count(engine, st.visits_t, v.process_id == "receipt") == 8577
    assert count(engine, st.visits_t, v.process_id == "receipt", v.office_days.is_not(None)) == 7143


@needs_logs
def test_receipt_dwell_report_matches_the_independent_computation(engine: Engine, receipt_expected: Expected) -> None:
    import_xes(engine, RECEIPT, process_id="receipt", actor="import-test")
    report = dwell_report(engine, "receipt")
    assert len(report) == 27  # one step per activity; the single start activity needs no synthetic start step
    assert_report_matches(report, receipt_expected)


@needs_logs
def test_gzip_log_imports_like_the_plain_one(engine: Engine, receipt_expected: Expected) -> None:
    summary = import_xes(engine, RECEIPT_GZ, process_id="receipt_gz", actor="import-test")
    assert (summary.cases, summary.events) == (1434, 8577)
    assert_report_matches(dwell_report(engine, "receipt_gz"), receipt_expected)


@needs_logs
def test_roadtraffic_imports_with_ties_and_dst(engine: Engine) -> None:
    expected = expected_from(ROADTRAFFIC)
    summary = import_xes(engine, ROADTRAFFIC, process_id="roadtraffic", actor="import-test")
    assert (summary.cases, summary.events, summary.activities) == (100, 390, 10)
    assert (expected.cases, expected.events) == (100, 390)
    report = dwell_report(engine, "roadtraffic")
    assert_report_matches(report, expected)
    # timestamps are local midnights: some waits within a case are 0 s, and they count as visits
    assert any(0.0 in values for values in expected.dwell.values())


@needs_logs
def test_imported_cases_are_explained_by_their_history(engine: Engine) -> None:
    import_xes(engine, ROADTRAFFIC, process_id="roadtraffic", actor="import-test")
    for case_id in case_ids(engine, "roadtraffic")[:25]:
        assert_history_explains_case(engine, case_id)
    # a case that repeats an activity (A then A) enters a new visit of the same step
    import_xes(engine, RECEIPT, process_id="receipt", actor="import-test")
    with engine.store.transaction() as conn:
        e = st.events_t.c
        loops = conn.execute(sa.select(e.case_id).where(e.kind == "fired", e.from_step == e.to_step).limit(5)).scalars()
        looping = list(loops)
    assert looping
    for case_id in looping:
        assert_history_explains_case(engine, case_id)


@needs_logs
def test_imported_visits_carry_the_engines_deadline_figures(engine: Engine) -> None:
    """due_at, overran, office days and excess as Engine._leave computes them, with the generated expected durations."""
    import_xes(engine, ROADTRAFFIC, process_id="roadtraffic", actor="import-test")
    definition = engine.process("roadtraffic")
    calendar = definition.calendar
    checked = 0
    for case_id in case_ids(engine, "roadtraffic")[:40]:
        visits = engine.visits(case_id)
        for visit, following in itertools.pairwise(visits):
            step = definition.steps[visit.step]
            assert visit.left_at == following.entered_at
            assert step.expected is not None and step.expected.unit is DurationUnit.CALENDAR_DAYS
            assert visit.due_at == calendar.due_at(visit.entered_at, step.expected)
            assert visit.office_days == calendar.office_days_between(visit.entered_at, visit.left_at)
            assert visit.overran == (visit.left_at > visit.due_at)
            excess = calendar.office_days_between(visit.due_at - timedelta(seconds=1), visit.left_at)
            assert visit.excess_office_days == (excess if visit.overran else 0)
            checked += 1
        last = visits[-1]
        assert (last.left_at, last.office_days, last.due_at, last.overran) == (last.entered_at, None, None, None)
    assert checked > 100


@needs_logs
def test_generated_definition_has_a_step_per_activity_and_the_observed_moves(engine: Engine) -> None:
    import_xes(engine, RECEIPT, process_id="receipt", actor="import-test")
    definition = engine.process("receipt")
    assert definition.start == "confirmation_of_receipt"
    finals = [s for s in definition.steps.values() if s.final]
    assert [(s.id, s.outcome) for s in finals] == [("ende", "historisch")]
    steps = [s for s in definition.steps.values() if not s.final]
    assert len(steps) == 27
    assert {s.agency for s in steps} == {"HIST"}
    assert definition.agencies["HIST"] == "Historisches Ereignisprotokoll"
    moves = sum(1 for s in steps for a in s.actions.values() if a.next != "ende")
    assert moves == 99
    t02 = definition.steps["t02_check_confirmation_of_receipt"]
    assert t02.title == "T02 Check confirmation of receipt"
    # expected = p90 of the observed dwell, rounded up to calendar days (at least one)
    values = sorted(receipt_dwell(engine, "t02_check_confirmation_of_receipt"))
    assert t02.expected == Duration(max(1, math.ceil(percentile(values, 0.9) / 86_400)), DurationUnit.CALENDAR_DAYS)


def receipt_dwell(engine: Engine, step: str) -> list[float]:
    v = st.visits_t.c
    with engine.store.transaction() as conn:
        rows = conn.execute(sa.select(v.entered_at, v.left_at).where(v.step == step, v.office_days.is_not(None))).all()
    return [(left - entered).total_seconds() for entered, left in rows]


# --------------------------------------------------------------------------- export and the round trip

ROUND_TRIP_CASES = 12


def make_engine_log(engine: Engine, clock: FixedClock) -> list[int]:
    """Cases of the default test process, moved with a fixed clock: completed, closed early, still open."""
    engine.deploy_text(process_yaml(), actor="koordination")
    start = clock.now()
    ids = []
    for n in range(ROUND_TRIP_CASES):
        clock.set(start + timedelta(days=n, hours=n % 5))
        case = engine.open_case("intake", actor=f"m.mustermann{n % 3}")
        ids.append(case.id)
        clock.advance(hours=3 + 7 * n, minutes=n)
        if n % 6 == 5:
            engine.close(case.id, outcome="verzogen", reason="Umzug", actor="koordination")
            continue
        engine.fire(case.id, "forward", actor=f"e.beispiel{n % 2}", data={"name": "Erika Musterfrau"})
        if n % 4 == 3:
            continue  # stays open in 'review'
        clock.advance(days=n % 7, seconds=17 * n + 1)
        engine.fire(case.id, "approve" if n % 2 else "reject", actor=f"m.mustermann{n % 3}")
    return ids


def test_export_is_wellformed_xes_with_pseudonyms_and_no_case_data(engine: Engine, clock: FixedClock) -> None:
    ids = make_engine_log(engine, clock)
    out = io.BytesIO()
    summary = export_xes(engine, out, process_id="intake")
    raw = out.getvalue()
    assert b"Erika" not in raw and b"mustermann" not in raw and b"beispiel" not in raw and b"Umzug" not in raw
    root = ET.fromstring(raw)
    assert root.tag == f"{XES}log" and root.get("xes.version") == "1849-2016"
    assert {e.get("prefix") for e in root.iter(f"{XES}extension")} == {"concept", "time", "lifecycle", "org"}
    traces = root.findall(f"{XES}trace")
    assert [t.find(f"{XES}string[@key='concept:name']").get("value") for t in traces] == [str(i) for i in ids]
    assert summary.traces == len(ids)
    events = root.findall(f"{XES}trace/{XES}event")
    assert summary.events == len(events)
    resources = set()
    for event in events:
        values = {a.get("key"): a.get("value") for a in event}
        assert values["lifecycle:transition"] == "complete"
        stamp = datetime.fromisoformat(values["time:timestamp"])
        assert stamp.utcoffset() == timedelta(0)
        resources.add(values["org:resource"])
    assert resources == {f"akteur-{n}" for n in range(1, len(resources) + 1)}
    first = {a.get("key"): a.get("value") for a in traces[0].find(f"{XES}event")}
    assert (first["concept:name"], first["kimflow_kind"], first["kimflow_step"]) == ("Erfassung", "opened", "intake")
    assert datetime.fromisoformat(first["time:timestamp"]) == engine.get_case(ids[0]).opened_at


def test_export_to_a_gzip_path_and_of_all_processes(engine: Engine, clock: FixedClock, tmp_path: Path) -> None:
    make_engine_log(engine, clock)
    target = tmp_path / "log.xes.gz"
    summary = export_xes(engine, target)
    root = ET.fromstring(gzip.decompress(target.read_bytes()))
    assert len(root.findall(f"{XES}trace")) == summary.traces == ROUND_TRIP_CASES


def test_export_streams_in_batches(engine: Engine, clock: FixedClock) -> None:
    make_engine_log(engine, clock)
    small, whole = io.BytesIO(), io.BytesIO()
    export_xes(engine, small, batch_cases=1)
    export_xes(engine, whole, batch_cases=1000)
    assert small.getvalue() == whole.getvalue()


def test_export_then_import_gives_the_same_dwell_per_step(engine: Engine, clock: FixedClock, tmp_path: Path) -> None:
    make_engine_log(engine, clock)
    original = {row.title: row for row in dwell_report(engine, "intake") if row.visits}
    assert set(original) == {"Erfassung", "Prüfung"}
    target = tmp_path / "intake.xes"
    export_xes(engine, target, process_id="intake")
    import_xes(engine, target, process_id="intake_hist", actor="import-test")
    again = {row.title: row for row in dwell_report(engine, "intake_hist") if row.visits}
    assert set(again) == set(original)
    for title, row in original.items():
        other = again[title]
        assert other.visits == row.visits
        for name in ("mean_seconds", "median_seconds", "p90_seconds"):
            assert close(getattr(other, name), getattr(row, name)), (title, name)
    # and once more: exporting the imported process reproduces the same log
    second = tmp_path / "again.xes"
    export_xes(engine, second, process_id="intake_hist")
    import_xes(engine, second, process_id="intake_hist2", actor="import-test")
    third = {row.title: row.as_dict() | {"step": None} for row in dwell_report(engine, "intake_hist2") if row.visits}
    assert third == {title: row.as_dict() | {"step": None} for title, row in again.items()}


def test_unknown_process_cannot_be_exported(engine: Engine) -> None:
    with pytest.raises(EngineError, match="not deployed"):
        export_xes(engine, io.BytesIO(), process_id="gibt_es_nicht")


# --------------------------------------------------------------------------- reading details and bad input


def xes_text(traces: str, *, root: str = "log", namespace: bool = True) -> str:
    ns = ' xmlns="http://www.xes-standard.org/"' if namespace else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xes.version="1849-2016"{ns}>\n{traces}</{root}>\n'


def event(activity: str | None, stamp: str | None, lifecycle: str | None = "complete", extra: str = "") -> str:
    parts = ["<event>"]
    if activity is not None:
        parts.append(f'<string key="concept:name" value="{activity}"/>')
    if stamp is not None:
        parts.append(f'<date key="time:timestamp" value="{stamp}"/>')
    if lifecycle is not None:
        parts.append(f'<string key="lifecycle:transition" value="{lifecycle}"/>')
    parts.append(extra)
    parts.append("</event>")
    return "".join(parts)


def trace(name: str, *events: str) -> str:
    return f'<trace><string key="concept:name" value="{name}"/>{"".join(events)}</trace>\n'


def write(tmp_path: Path, text: str | bytes, name: str = "log.xes") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_only_complete_events_count_and_order_is_by_time(engine: Engine, tmp_path: Path) -> None:
    text = xes_text(
        trace(
            "a",
            event("Prüfen", "2024-03-01T10:00:00+01:00"),
            event("Antrag", "2024-03-01T08:00:00+01:00", lifecycle=None),  # no lifecycle: complete
            event("Prüfen", "2024-03-01T09:00:00+01:00", lifecycle="start"),
            event(
                "Bescheid",
                "2024-03-05T12:00:00+01:00",
                extra='<list key="nested"><string key="concept:name" value="Falle"/></list>',
            ),
        )
        + trace("nur-start", event("Prüfen", "2024-03-01T09:00:00+01:00", lifecycle="start"))
        + trace("b", event("Antrag", "2024-04-01T08:00:00"), event("Prüfen", "2024-04-01T08:00:00"))
    )
    summary = import_xes(engine, write(tmp_path, text), process_id="klein", actor="import-test")
    assert (summary.cases, summary.events, summary.activities) == (2, 5, 3)
    assert (summary.skipped_events, summary.skipped_traces, summary.naive_timestamps) == (2, 1, 2)
    first = case_ids(engine, "klein")[0]
    visits = engine.visits(first)
    assert [v.step for v in visits] == ["antrag", "pruefen", "bescheid"]
    assert visits[0].entered_at == datetime(2024, 3, 1, 7, tzinfo=UTC)
    assert engine.get_case(first).data == {"xes_case": "a"}
    report = {row.step: row for row in dwell_report(engine, "klein")}
    assert (report["antrag"].visits, report["antrag"].mean_seconds) == (2, (2 * 3600 + 0) / 2)
    assert report["pruefen"].median_seconds == (4 * 86400 + 2 * 3600)
    assert report["bescheid"].visits == 0


def test_different_start_activities_get_a_synthetic_start_step(engine: Engine, tmp_path: Path) -> None:
    text = xes_text(
        trace("a", event("Antrag", "2024-03-01T08:00:00Z"), event("Prüfen", "2024-03-02T08:00:00Z"))
        + trace("b", event("Prüfen", "2024-03-01T08:00:00Z"), event("Antrag", "2024-03-01T09:00:00Z")),
        namespace=False,
    )
    import_xes(engine, write(tmp_path, text), process_id="zwei_anfaenge", actor="import-test")
    definition = engine.process("zwei_anfaenge")
    assert definition.start == "beginn"
    assert sorted(a.next for a in definition.steps["beginn"].actions.values()) == ["antrag", "pruefen"]
    assert dwell_report(engine, "zwei_anfaenge")[0].step == "beginn"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("not-xml.xes", "Fallnummer;Aktivität\n1;Antrag\n", "not a well-formed XML file"),
        ("empty.xes", "", "not a well-formed XML file"),
        ("truncated.xes", xes_text(trace("a", event("A", "2024-01-01T00:00:00Z")))[:-20], "well-formed"),
        ("html.xes", xes_text("", root="html"), "not an XES event log"),
        ("no-traces.xes", xes_text('<string key="concept:name" value="leer"/>'), "contains no traces"),
        (
            "no-timestamp.xes",
            xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"), event("B", None))),
            r"line 3 \(trace 'a'\): the event has no time:timestamp",
        ),
        (
            "bad-timestamp.xes",
            xes_text(trace("a", event("A", "gestern"))),
            "time:timestamp 'gestern' is not an ISO 8601 date-time",
        ),
        ("no-activity.xes", xes_text(trace("a", event(None, "2024-01-01T00:00:00Z"))), "has no concept:name"),
        (
            "only-start.xes",
            xes_text(trace("a", event("A", "2024-01-01T00:00:00Z", lifecycle="start"))),
            "no events with lifecycle:transition 'complete'",
        ),
    ],
)
def test_bad_input_gives_a_clear_error_and_leaves_nothing(
    engine: Engine, tmp_path: Path, name: str, content: str, message: str
) -> None:
    with pytest.raises(EngineError, match=message):
        import_xes(engine, write(tmp_path, content, name), process_id="kaputt", actor="import-test")
    assert engine.registry.list() == []
    assert count(engine, st.cases_t) == 0


def test_a_broken_gzip_file_gives_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    broken = gzip.compress(xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"))).encode())[:-12]
    with pytest.raises(EngineError, match=r"log\.xes"):
        import_xes(engine, write(tmp_path, broken), process_id="kaputt", actor="import-test")


def test_a_missing_file_gives_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="cannot read"):
        import_xes(engine, tmp_path / "fehlt.xes", process_id="fehlt", actor="import-test")


@pytest.mark.parametrize("process_id", ["Receipt", "1abc", "a", "mit-strich", "x" * 64])
def test_an_invalid_process_id_is_refused(engine: Engine, tmp_path: Path, process_id: str) -> None:
    path = write(tmp_path, xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"))))
    with pytest.raises(EngineError, match="not a valid process id"):
        import_xes(engine, path, process_id=process_id, actor="import-test")


def test_an_existing_process_is_not_imported_into(engine: Engine, tmp_path: Path) -> None:
    engine.deploy_text(process_yaml(), actor="koordination")
    path = write(tmp_path, xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"))))
    with pytest.raises(EngineError, match="already exists"):
        import_xes(engine, path, process_id="intake", actor="import-test")


def test_a_failure_while_writing_removes_the_partial_import(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import xes

    text = xes_text(
        "".join(
            trace(f"c{n}", event("A", f"2024-01-0{n}T00:00:00Z"), event("B", f"2024-01-0{n}T05:00:00Z"))
            for n in range(1, 6)
        )
    )
    batches = []
    original = xes._Writer._batch

    def failing(self: xes._Writer, conn: sa.Connection, first: int, last: int) -> None:
        batches.append(first)
        if len(batches) == 3:
            raise RuntimeError("Platte voll")
        original(self, conn, first, last)

    monkeypatch.setattr(xes._Writer, "_batch", failing)
    with pytest.raises(RuntimeError, match="Platte voll"):
        import_xes(engine, write(tmp_path, text), process_id="halb", actor="import-test", batch_events=2)
    assert len(batches) == 3
    assert engine.registry.list() == []
    assert count(engine, st.cases_t) == count(engine, st.events_t) == count(engine, st.visits_t) == 0


def test_a_database_refusal_is_a_store_error_and_removes_the_import(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import xes

    path = write(tmp_path, xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"), event("B", "2024-01-02T00:00:00Z"))))
    import_xes(engine, path, process_id="zuerst", actor="import-test")
    taken = case_ids(engine, "zuerst")[0]
    reserve = xes._reserve_ids
    monkeypatch.setattr(
        xes, "_reserve_ids", lambda conn, table, n: [taken] * n if table is st.cases_t else reserve(conn, table, n)
    )
    with pytest.raises(StoreError, match="database error"):
        import_xes(engine, path, process_id="doppelt", actor="import-test")
    assert [d.process_id for d in engine.registry.list()] == ["zuerst"]
    assert case_ids(engine, "zuerst") == [taken]
    assert count(engine, st.visits_t) == 2


def test_read_log_keeps_file_order_for_equal_times(tmp_path: Path) -> None:
    text = xes_text(trace("a", event("B", "2024-01-01T00:00:00Z"), event("A", "2024-01-01T00:00:00Z")))
    log = read_log(write(tmp_path, text))
    assert [list(log.activities)[a] for a in log.acts] == ["B", "A"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("T02 Check confirmation of receipt", "t02_check_confirmation_of_receipt"),
        ("Prüfung der Unterlagen (§ 81)", "pruefung_der_unterlagen_81"),
        ("Straße größer", "strasse_groesser"),
        ("01 Antrag", "s_01_antrag"),
        ("---", "schritt"),
        ("x" * 80, "x" * 60),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


# --------------------------------------------------------------------------- the dwell report


def test_percentile_interpolates_linearly_like_numpy() -> None:
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert percentile(values, 0.5) == 4.0
    assert percentile(values, 0.9) == pytest.approx(8.0 + 0.6 * 8.0)  # position 3.6
    assert percentile([5.0], 0.9) == 5.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_dwell_report_of_an_unknown_process_is_an_error(engine: Engine) -> None:
    with pytest.raises(EngineError, match="not deployed"):
        dwell_report(engine, "gibt_es_nicht")


def test_dwell_report_counts_left_visits_only(engine: Engine, clock: FixedClock) -> None:
    engine.deploy_text(process_yaml(), actor="koordination")
    a = engine.open_case("intake", actor="cm01")
    b = engine.open_case("intake", actor="cm01")
    clock.advance(hours=2, microseconds=250)
    engine.fire(a.id, "forward", actor="cm01", data={"name": "Beispiel"})
    clock.advance(hours=1)
    engine.fire(a.id, "approve", actor="cm02")
    rows = {row.step: row for row in dwell_report(engine, "intake")}
    assert list(rows) == ["intake", "review"]  # final steps have no dwell and are not listed
    assert rows["intake"].visits == 1  # b is still in intake
    assert rows["intake"].mean_seconds == pytest.approx(7200.00025, rel=1e-12)
    assert (rows["review"].visits, rows["review"].p90_seconds) == (1, 3600.0)
    assert b.id != a.id


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def cli(engine: Engine) -> Callable[..., SimpleNamespace]:
    """Run the three commands, registered on a throwaway root app as api/cli.py registers them."""
    app = typer.Typer()
    report_app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = SimpleNamespace(actor="cli-test")

    app.add_typer(report_app, name="report")
    register(app, report_app, lambda: engine)
    runner = CliRunner()

    def run(*args: str) -> SimpleNamespace:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return SimpleNamespace(code=result.exit_code, out=result.stdout, err=result.stderr)

    return run


def test_cli_import_then_dwell_report(cli: Callable[..., SimpleNamespace], engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        xes_text(trace("a", event("Antrag", "2024-03-01T08:00:00Z"), event("Prüfen", "2024-03-03T20:00:00Z"))),
    )
    result = cli("import", "xes", str(path), "--process-id", "klein", "--format", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["process"], summary["cases"], summary["events"]) == ("klein", 1, 2)
    assert engine.registry.list()[0].deployed_by == "cli-test"
    result = cli("report", "dwell", "--process", "klein", "--format", "json")
    assert result.code == 0
    assert json.loads(result.out) == {
        "process": "klein",
        "steps": [
            {"step": "antrag", "title": "Antrag", "visits": 1, "mean_seconds": 216000.0,
             "median_seconds": 216000.0, "p90_seconds": 216000.0},
            {"step": "pruefen", "title": "Prüfen", "visits": 0, "mean_seconds": None,
             "median_seconds": None, "p90_seconds": None},
        ],
    }  # fmt: skip
    text = cli("report", "dwell", "--process", "klein")
    assert text.code == 0
    assert "Antrag (antrag)" in text.out and "2,5 Tage" in text.out


def test_cli_export_to_file_and_stdout(
    cli: Callable[..., SimpleNamespace], engine: Engine, clock: FixedClock, tmp_path: Path
) -> None:
    make_engine_log(engine, clock)
    target = tmp_path / "out.xes"
    result = cli("export", "xes", "--process", "intake", "--output", str(target))
    assert result.code == 0
    assert f"{ROUND_TRIP_CASES} Fälle" in result.out
    assert len(ET.parse(target).getroot().findall(f"{XES}trace")) == ROUND_TRIP_CASES
    piped = cli("export", "xes")
    assert piped.code == 0
    assert ET.fromstring(piped.out.encode()).tag == f"{XES}log"
    assert "XES geschrieben" in piped.err


def test_cli_import_of_a_missing_file_is_a_usage_error(cli: Callable[..., SimpleNamespace], tmp_path: Path) -> None:
    result = cli("import", "xes", str(tmp_path / "fehlt.xes"), "--process-id", "fehlt")
    assert result.code == 2


def test_import_summary_as_dict_is_json_ready(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, xes_text(trace("a", event("A", "2024-01-01T00:00:00Z"))))
    summary = import_xes(engine, path, process_id="eins", actor="import-test")
    assert isinstance(summary, ImportSummary)
    assert json.loads(json.dumps(summary.as_dict()))["first_event"] == "2024-01-01T00:00:00+00:00"
