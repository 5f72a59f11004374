"""Caseworker pages: the worklist, opening a case, and the case page with every change made there.

The pages call the same engine functions as the JSON routes of :mod:`api.routes.cases`, with
the same rules:

* **Who sees what.** Caseworkers and coordinators only (others get the 403 page); a
  caseworker sees her own team's cases (:func:`api.deps.team_filter`), and another team's
  case answers with the 404 page, exactly as an unknown number does, so its existence is not
  revealed.
* **Data minimisation.** The worklist shows where cases stand, never their data; a case's data
  is shown one case at a time on its page, and every such page view is written to the access
  log (as the API's ``_log_read`` does).
* **Changes.** Each change runs as one engine operation whose access-log entry is written by a
  ``before_commit`` hook of :func:`engine.scope.request_scope` on the operation's own
  connection, so the change and its entry commit together or not at all — the mechanism of
  :class:`api.deps.Change`, without its idempotency records (a browser form is answered with a
  redirect, and a repeated post fails on the case version instead of changing twice).
* **No silent overwrites.** Every change form carries the case version it was rendered with;
  it is passed to the engine as ``expected_version``. When a colleague changed the case in
  between, the page answers 409 with what changed since (the events after that version) and a
  button that sends the same input again against the fresh state.

Forms are generated from the process definition's typed fields (German labels, dates as
TT.MM.JJJJ, German messages at the field via ``aria-describedby``). The definitions have no
notion of "required at opening": opening offers the fields the first step asks for, all
optional (the engine opens a case with whatever is known); an action's ``requires`` fields
are required in that action's form.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import AccountsDep, EngineDep, team_filter
from api.web import i18n
from api.web.changes import logged_change
from api.web.diagram import render_diagram
from api.web.i18n import N_
from api.web.session import CSRF_FIELD, CsrfChecked, page_for
from api.web.templating import gettext_for, render
from engine import audit
from engine import store as st
from engine.accounts import CASEWORKER, COORDINATOR, User
from engine.case import CANCELLED, CLOSED, COMPLETED, OPEN, ActionOption, Case, CaseEvent, StepVisit
from engine.cases import CLIENT, SYSTEM_ACTOR
from engine.definition import CATEGORY_LABELS, FieldDef, ProcessDefinition, StepDef
from engine.errors import (
    ActionNotAllowed,
    ActionUnavailable,
    CaseClosed,
    ConcurrentUpdate,
    ConsentNotFound,
    DefinitionNotFound,
    EngineError,
    FindingNotAllowed,
    InvalidCaseData,
)
from engine.scope import ScopedEngine, case_team
from engine.stalls import AT_RISK, STALLED, judge
from engine.worklist import DUE_STATES, OVERDUE, Position, list_page


class _PageRoute(APIRoute):
    """The routes of this module: a change form without the case version gets the 400 page here.

    The change dependencies (:func:`_versioned`) find it before a route's own input checks run;
    answering it in this one place keeps it out of every change route.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except _IncompleteForm:
                return _incomplete_form(request)

        return answer


router = APIRouter(include_in_schema=False, route_class=_PageRoute)

Staff = Annotated[User, Depends(page_for(CASEWORKER, COORDINATOR))]
T = TypeVar("T")

PAGE_SIZE = 50
WORKLIST_SORT = "due_at"  # overdue and at-risk cases first: the earliest deadline leads
_MAX_CASE_ID = 2**31 - 1
_DATE_DE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$")
_DATE_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")

# --------------------------------------------------------------------------- texts

STATUS_LABELS = {
    OPEN: N_("offen"),
    COMPLETED: N_("abgeschlossen"),
    CLOSED: N_("vorzeitig beendet"),
    CANCELLED: N_("storniert"),
}
#: The worklist's case-status filter; "alle" lists ended cases too.
STATUS_FILTERS = (
    (OPEN, N_("offen")),
    (COMPLETED, N_("abgeschlossen")),
    (CLOSED, N_("vorzeitig beendet")),
    (CANCELLED, N_("storniert")),
    ("alle", N_("alle")),
)
#: The deadline filter (values of :data:`engine.worklist.DUE_STATES`).
DUE_FILTERS = (
    (OVERDUE, N_("nur überfällige")),
    (AT_RISK, N_("nur gefährdete")),
    ("on_time", N_("nur im Plan")),
)
BADGES = {
    "overdue": ("badge--overdue", N_("überfällig")),
    "at_risk": ("badge--risk", N_("gefährdet")),
    "on_time": ("badge--ok", N_("im Plan")),
    "paused": ("badge--neutral", N_("pausiert")),
}
EVENT_LABELS = {
    "opened": N_("Fall eröffnet"),
    "fired": N_("Aktion ausgeführt"),
    "paused": N_("Pausiert"),
    "resumed": N_("Fortgesetzt"),
    "waiting": N_("Wartet auf"),
    "assigned": N_("Zuständigkeit geändert"),
    "consent_recorded": N_("Einwilligung erfasst"),
    "consent_revoked": N_("Einwilligung widerrufen"),
    CLOSED: N_("Vorzeitig beendet"),
    CANCELLED: N_("Storniert"),
}
#: Confirmations after a successful change (the redirect names one by its key).
DONE = {
    "eroeffnet": N_("Der Fall wurde eröffnet."),
    "aktion": N_("Die Aktion wurde ausgeführt."),
    "einwilligung": N_("Die Einwilligung wurde erfasst."),
    "widerruf": N_("Die Einwilligung wurde widerrufen."),
    "pausiert": N_("Der Fall wurde pausiert. Die Frist steht still."),
    "fortgesetzt": N_("Der Fall läuft weiter. Die Frist wurde um die Pause verlängert."),
    "wartet": N_("Gespeichert, auf wen der Fall wartet."),
    "zugewiesen": N_("Die Zuständigkeit wurde gespeichert."),
    "hinweis": N_("Der strukturelle Hinweis wurde gespeichert."),
    "beendet": N_("Der Fall wurde vorzeitig beendet."),
    "storniert": N_("Der Fall wurde storniert."),
}
#: Outcomes a caseworker can choose when ending a case early (code -> German label).
EARLY_OUTCOMES = {
    "verzogen": N_("Person ist verzogen"),
    "kein_bedarf": N_("Kein Unterstützungsbedarf mehr"),
    "kontakt_abgebrochen": N_("Kontakt abgebrochen"),
    "anderweitig_geloest": N_("Anderweitig gelöst"),
}
#: German messages for problems the engine reports on inputs that are not case data fields.
INPUT_PROBLEMS = {
    "recipient": N_("Bitte wählen Sie eine Stelle dieses Prozesses als Empfänger."),
    "purpose": N_("Bitte geben Sie den Zweck der Einwilligung an."),
    "categories": N_("Bitte wählen Sie mindestens eine Datenkategorie."),
    "valid_until": N_("Bitte geben Sie ein Datum im Format TT.MM.JJJJ ein, z. B. 24.11.2026."),
    "reason": N_("Bitte wählen Sie einen Grund aus der Liste."),
    "waiting_on": N_("Bitte wählen Sie eine Stelle dieses Prozesses."),
    "visit_id": N_("Bitte wählen Sie einen Schritt dieses Falls."),
    "text": N_("Bitte beschreiben Sie den Hinweis in 5 bis 500 Zeichen."),
}


# --------------------------------------------------------------------------- access and changes


def _case_number(raw: str) -> int:
    """The case number of a path, or the 404 page (also for text that is no number)."""
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_CASE_ID:
        raise StarletteHTTPException(404)
    return int(raw)


def _visible(engine: ScopedEngine, user: User, case_id: int) -> bool:
    """Whether the case exists and the user may see it (the API's team rule)."""
    exists, team = case_team(engine.store, case_id)
    restricted, own_team = team_filter(user)
    return exists and not (restricted and team != own_team)


def _require_visible(engine: ScopedEngine, user: User, raw: str) -> int:
    case_id = _case_number(raw)
    if not _visible(engine, user, case_id):
        raise StarletteHTTPException(404)
    return case_id


def _log_read(request: Request, user: User, engine: ScopedEngine, case_id: int, fields: Iterable[str]) -> None:
    audit.record_now(
        engine.store,
        at=engine.clock.now(),
        actor=user.name,
        role=user.role,
        case_id=case_id,
        access=audit.READ,
        fields=sorted(set(fields)),
        route=f"{request.method} {request.url.path}",
    )


async def form_data(request: Request) -> FormData:
    """The posted form (parsed once; the CSRF check has read it already)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(form_data)]


# --------------------------------------------------------------------------- deadlines


@dataclass(frozen=True, slots=True)
class Deadline:
    """How a case's current step stands against its deadline, in office days (Arbeitstage).

    Attributes:
        state: ``overdue``, ``at_risk``, ``on_time``, or ``none`` (no deadline, or ended).
        day: The last day of the deadline (local date), extended for a clock that stands still.
        remaining: Office days left after today (0: due today); 0 when overdue.
        overdue_days: Office days past the deadline.
        clock_stopped: The deadline clock stands still now (paused, or waiting on the client).
    """

    state: str
    day: date | None = None
    remaining: int = 0
    overdue_days: int = 0
    clock_stopped: bool = False


NO_DEADLINE = Deadline("none")


def _deadline(
    definition: ProcessDefinition,
    now: datetime,
    case: Case,
    due_at: datetime | None,
    warn_at: datetime | None,
    paused_since: datetime | None,
) -> Deadline:
    """Judge the current visit as the stall list does (a stopped clock extends the deadline to now)."""
    if not case.is_open or due_at is None:
        return NO_DEADLINE
    calendar = definition.calendar
    verdict = judge(calendar, now, due_at, warn_at, paused_since)
    last_instant = verdict.due_at - timedelta(seconds=1)
    state = {STALLED: "overdue", AT_RISK: "at_risk"}.get(verdict.status or "", "on_time")
    return Deadline(
        state=state,
        day=calendar.local_date(last_instant),
        remaining=0 if state == "overdue" else calendar.office_days_between(now, last_instant),
        overdue_days=verdict.overdue_office_days,
        clock_stopped=paused_since is not None,
    )


def _badges(case: Case, deadline: Deadline) -> list[tuple[str, str]]:
    """The status badges of a case: its deadline state, and "pausiert"; an ended case its status."""
    if not case.is_open:
        return [("badge--neutral", STATUS_LABELS.get(case.status, case.status))]
    badges = [BADGES[deadline.state]] if deadline.state != "none" else []
    if case.paused:
        badges.append(BADGES["paused"])
    return badges


# --------------------------------------------------------------------------- fields and forms


@dataclass
class FieldView:
    """One input of a generated form."""

    name: str
    input_id: str
    label: str
    type: str
    value: str
    required: bool = False
    hint: str | None = None
    error: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class FormState:
    """A form that came back with problems: which one, what was typed, and what is wrong."""

    key: str
    values: Mapping[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    reasons: list[str] = field(default_factory=list)


def _parse_date(text: str) -> str | None:
    """TT.MM.JJJJ (also T.M.JJJJ) or ISO JJJJ-MM-TT as an ISO date; None if it is neither or no real day."""
    match = _DATE_DE.match(text)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day).isoformat()
        match = _DATE_ISO.match(text)
        if match:
            return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return None
    return None


def _number_text(value: float, locale: str) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace(".", ",") if locale == "de" else text


def _input_text(spec: FieldDef, value: Any, locale: str) -> str:
    """A stored value as the form shows it (dates as TT.MM.JJJJ, German decimal commas)."""
    if value is None:
        return ""
    if spec.type == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d.%m.%Y")
        except ValueError:
            return value
    if spec.type == "boolean":
        return "true" if value is True else "false" if value is False else ""
    if spec.type == "number" and isinstance(value, int | float):
        return _number_text(value, locale)
    return str(value)


def display_value(spec: FieldDef | None, value: Any, locale: str) -> str:
    """A stored value as people read it (German dates, ja/nein, the label of an enum value)."""
    gettext = i18n.translations(locale).gettext
    if value is None or value == "":
        return "–"
    if spec is None:
        return str(value)
    if spec.type == "date" and isinstance(value, str):
        try:
            return i18n.fmt_date(date.fromisoformat(value), locale)
        except ValueError:
            return value
    if spec.type == "boolean":
        return gettext("ja") if value is True else gettext("nein")
    if spec.type == "enum":
        return str(spec.values.get(value, value))
    if spec.type == "number" and isinstance(value, int | float):
        return _number_text(value, locale)
    return str(value)


def _german_problem(spec: FieldDef, value: Any, gettext: Callable[[str], str]) -> str | None:
    """Why ``value`` does not fit ``spec``, in German — the checks of :meth:`FieldDef.check`."""
    _ = gettext
    if value is None:
        return None
    if spec.type in ("string", "text"):
        if not isinstance(value, str):
            return _("Bitte geben Sie einen Text ein.")
        if "\x00" in value:
            return _("Der Text enthält ein unzulässiges Steuerzeichen.")
        if spec.max_length is not None and len(value) > spec.max_length:
            return _("Der Text ist zu lang: höchstens %(max)s Zeichen, eingegeben %(length)s.") % {
                "max": spec.max_length,
                "length": len(value),
            }
        return None
    if spec.type == "date":
        return None if isinstance(value, str) and _parse_date(value) == value else _(INPUT_PROBLEMS["valid_until"])
    if spec.type == "boolean":
        return None if isinstance(value, bool) else _("Bitte wählen Sie ja oder nein.")
    if spec.type == "enum":
        return None if value in spec.values else _("Bitte wählen Sie einen der angebotenen Werte.")
    if spec.type == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return _("Bitte geben Sie eine ganze Zahl ein, z. B. 3.")
    if spec.type == "number" and (
        not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
    ):
        return _("Bitte geben Sie eine Zahl ein, z. B. 12,5.")
    if spec.minimum is not None and value < spec.minimum:
        return _("Der Wert darf nicht kleiner als %(min)s sein.") % {"min": f"{spec.minimum:g}"}
    if spec.maximum is not None and value > spec.maximum:
        return _("Der Wert darf nicht größer als %(max)s sein.") % {"max": f"{spec.maximum:g}"}
    return None


def _parse_value(spec: FieldDef, raw: str, gettext: Callable[[str], str]) -> tuple[Any, str | None]:
    """A typed value from a form input; (None, None) for an empty input."""
    _ = gettext
    text = raw if spec.type == "text" else raw.strip()
    if not text.strip():
        return None, None
    value: Any
    if spec.type in ("string", "text"):
        value = text
    elif spec.type == "date":
        value = _parse_date(text)
        if value is None:
            return None, _(INPUT_PROBLEMS["valid_until"])
    elif spec.type == "integer":
        try:
            value = int(text.replace(" ", ""))
        except ValueError:
            return None, _("Bitte geben Sie eine ganze Zahl ein, z. B. 3.")
    elif spec.type == "number":
        normal = text.replace(" ", "")
        if "," in normal:
            normal = normal.replace(".", "").replace(",", ".")
        try:
            value = float(normal)
        except ValueError:
            return None, _("Bitte geben Sie eine Zahl ein, z. B. 12,5.")
        if value.is_integer() and abs(value) < 2**53:
            value = int(value)
    elif spec.type == "boolean":
        if text not in ("true", "false"):
            return None, _("Bitte wählen Sie ja oder nein.")
        value = text == "true"
    else:
        value = text
    return value, _german_problem(spec, value, gettext)


def _parse_fields(
    definition: ProcessDefinition,
    names: Sequence[str],
    form: FormData,
    *,
    required: Iterable[str] = (),
    current: Mapping[str, Any] | None = None,
    gettext: Callable[[str], str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The case data of a generated form: typed values, and German problems by field.

    Only what differs from the case's data is returned (so the access log names the fields a
    change really touched); an empty input clears a value the case had. A required field must
    have a value after the change.
    """
    _ = gettext
    current = current or {}
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in names:
        spec = definition.fields[name]
        value, problem = _parse_value(spec, str(form.get(name, "")), gettext)
        if problem:
            problems[name] = problem
        elif value is not None:
            if current.get(name) != value:
                data[name] = value
        elif current.get(name) not in (None, ""):
            data[name] = None
    for name in required:
        if name not in problems and {**current, **data}.get(name) in (None, ""):
            problems[name] = _("Diese Angabe ist für diese Aktion erforderlich.")
    return data, problems


def _engine_problems(
    exc: InvalidCaseData, definition: ProcessDefinition, submitted: Mapping[str, Any], gettext: Callable[[str], str]
) -> dict[str, str]:
    """The engine's problems (English, by input) as German messages at the same inputs."""
    _ = gettext
    german = {}
    for name, problem in exc.problems.items():
        spec = definition.fields.get(name)
        if spec is not None:
            german[name] = _german_problem(spec, submitted.get(name), gettext) or _(
                "Dieser Wert passt nicht zu diesem Feld."
            )
        elif name == "text" and "quotes case data" in problem:
            german[name] = _(
                "Der Text enthält Angaben aus diesem Fall. Beschreiben Sie bitte das Muster, nicht die Person."
            )
        else:
            german[name] = _(INPUT_PROBLEMS.get(name, N_("Diese Angabe passt nicht.")))
    return german


def _field_views(
    definition: ProcessDefinition,
    names: Sequence[str],
    *,
    prefix: str,
    locale: str,
    values: Mapping[str, Any],
    typed: Mapping[str, str] | None = None,
    required: Iterable[str] = (),
    errors: Mapping[str, str] | None = None,
) -> list[FieldView]:
    """The inputs for ``names``, filled with what was typed (after an error) or the stored values."""
    gettext = i18n.translations(locale).gettext
    required = set(required)
    views = []
    for name in names:
        spec = definition.fields[name]
        shown = str(typed.get(name, "")) if typed is not None else _input_text(spec, values.get(name), locale)
        hints = []
        if spec.help and locale == "de":
            hints.append(spec.help)
        if spec.type == "date":
            hints.append(gettext("Datum als TT.MM.JJJJ"))
        if spec.type in ("string", "text") and spec.max_length:
            hints.append(gettext("höchstens %(max)s Zeichen") % {"max": spec.max_length})
        if spec.type in ("integer", "number") and (spec.minimum is not None or spec.maximum is not None):
            low = "–" if spec.minimum is None else f"{spec.minimum:g}"
            high = "–" if spec.maximum is None else f"{spec.maximum:g}"
            hints.append(gettext("von %(min)s bis %(max)s") % {"min": low, "max": high})
        options: list[tuple[str, str]] = []
        if spec.type == "enum":
            options = [(key, str(label)) for key, label in spec.values.items()]
        elif spec.type == "boolean":
            options = [("true", gettext("ja")), ("false", gettext("nein"))]
        views.append(
            FieldView(
                name=name,
                input_id=f"{prefix}-{name}",
                label=i18n.pick(spec.label, spec.label_en, locale),
                type=spec.type,
                value=shown,
                required=name in required,
                hint="; ".join(hints) or None,
                error=(errors or {}).get(name),
                options=options,
            )
        )
    return views


def _opening_fields(definition: ProcessDefinition) -> list[str]:
    """The fields the first step asks for (what is usually known when a case is opened), else all."""
    start = definition.steps[definition.start]
    names = dict.fromkeys(name for action in start.actions.values() for name in (*action.requires, *action.records))
    return list(names) or list(definition.fields)


# --------------------------------------------------------------------------- worklist


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One line of the worklist, its texts ready to print (the page must render 50 of them fast)."""

    case: Case
    process: str
    step: str
    agency: str | None
    deadline: Deadline
    due_day: str
    due_note: str
    waiting_on: str | None
    reason: str | None
    badges: list[tuple[str, str]]


def deadline_note(deadline: Deadline, locale: str) -> str:
    """The deadline in words: remaining or overdue working days (Arbeitstage), or due today."""
    translations = i18n.translations(locale)
    if deadline.state == "none":
        return translations.gettext("keine Frist")
    if deadline.state == "overdue":
        if not deadline.overdue_days:
            return translations.gettext("überfällig")
        return translations.ngettext(
            "seit %(num)s Arbeitstag überfällig", "seit %(num)s Arbeitstagen überfällig", deadline.overdue_days
        ) % {"num": deadline.overdue_days}
    if deadline.remaining == 0:
        return translations.gettext("heute fällig")
    return translations.ngettext("noch %(num)s Arbeitstag", "noch %(num)s Arbeitstage", deadline.remaining) % {
        "num": deadline.remaining
    }


def _encode_cursor(position: Position) -> str:
    raw = json.dumps([position.sort, position.value, position.case_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Position | None:
    """The position of a ``weiter`` link; None for anything else (the list then starts at the top)."""
    try:
        sort, value, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if sort != WORKLIST_SORT or not isinstance(value, str) or not isinstance(case_id, int):
        return None
    return Position(sort, value, case_id)


def _latest_definitions(engine: ScopedEngine) -> dict[str, ProcessDefinition]:
    """The newest version of every deployed process, by id (one query; definitions are cached)."""
    newest: dict[str, int] = {}
    for deployment in engine.registry.list():
        newest[deployment.process_id] = max(deployment.version, newest.get(deployment.process_id, 0))
    return {pid: engine.registry.get(pid, version).definition for pid, version in sorted(newest.items())}


def _visit_deadlines(engine: ScopedEngine, visit_ids: list[int]) -> dict[int, Any]:
    """Deadline columns and the last reason code of the given visits, in one query."""
    if not visit_ids:
        return {}
    v = st.visits_t.c
    with engine.store.read() as conn:
        rows = conn.execute(
            sa.select(v.id, v.due_at, v.warn_at, v.paused_since, v.reason_code).where(v.id.in_(visit_ids))
        ).all()
    return {row.id: row for row in rows}


@lru_cache(maxsize=4096)
def _day_text(day: date, locale: str) -> str:
    """A date as the page shows it, cached: Babel's formatting costs more than the rest of a row."""
    return i18n.fmt_date(day, locale)


def _worklist_rows(engine: ScopedEngine, cases: list[Case], now: datetime, locale: str) -> list[WorklistRow]:
    visits = _visit_deadlines(engine, [c.visit_id for c in cases if c.visit_id is not None])
    gettext = i18n.translations(locale).gettext
    rows = []
    for case in cases:
        definition = engine.registry.get(case.process_id, case.process_version).definition
        step = definition.steps.get(case.step)
        visit = visits.get(case.visit_id) if case.visit_id is not None else None
        deadline = (
            _deadline(definition, now, case, visit.due_at, visit.warn_at, visit.paused_since)
            if visit is not None
            else NO_DEADLINE
        )
        reason = visit.reason_code if visit is not None and case.is_open else None
        rows.append(
            WorklistRow(
                case=case,
                process=i18n.pick(definition.title, definition.title_en, locale),
                step=i18n.pick(step.title, step.title_en, locale) if step else case.step,
                agency=definition.agencies.get(step.agency, step.agency) if step and step.agency else None,
                deadline=deadline,
                due_day=_day_text(deadline.day, locale) if deadline.day is not None else "",
                due_note=deadline_note(deadline, locale),
                waiting_on=definition.agencies.get(case.waiting_on, case.waiting_on)
                if case.waiting_on and case.is_open
                else None,
                reason=engine.taxonomy.label(reason, english=locale == "en") if reason else None,
                badges=[(css, gettext(label)) for css, label in _badges(case, deadline)],
            )
        )
    return rows


@router.get("/faelle")
def worklist(
    request: Request,
    user: Staff,
    engine: EngineDep,
    prozess: Annotated[str, Query(max_length=64)] = "",
    schritt: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=20)] = OPEN,
    frist: Annotated[str, Query(max_length=20)] = "",
    meine: Annotated[str, Query(max_length=5)] = "",
    nummer: Annotated[str, Query(max_length=20)] = "",
    weiter: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The worklist: the user's cases by deadline (overdue and at risk first), 50 a page, without case data."""
    _ = gettext_for(request)
    locale = i18n.locale_of(request)
    flash = None
    number = nummer.strip().lstrip("#")
    if number:
        if number.isdigit() and 1 <= int(number) <= _MAX_CASE_ID and _visible(engine, user, int(number)):
            return RedirectResponse(f"/faelle/{int(number)}", status_code=303)
        flash = {
            "kind": "error",
            "text": _("Einen Fall mit der Nummer %(number)s gibt es in Ihrer Arbeitsliste nicht.") % {"number": number},
        }
    definitions = _latest_definitions(engine)
    process = definitions.get(prozess)
    step = schritt if process is not None and schritt in process.steps else ""
    status_filter = status if status in STATUS_LABELS or status == "alle" else OPEN
    due = frist if frist in DUE_STATES else ""
    mine = meine == "1"
    team_only, team = team_filter(user)
    now = engine.clock.now()
    after = _decode_cursor(weiter) if weiter else None
    page = list_page(
        engine.store,
        now=now,
        process_id=process.id if process is not None else None,
        step=step or None,
        status=None if status_filter == "alle" else status_filter,
        assignee=user.name if mine else None,
        due=due or None,
        registry=engine.registry,
        team_only=team_only,
        team=team,
        sort=WORKLIST_SORT,
        after=after,
        limit=PAGE_SIZE,
    )
    filters = {
        "prozess": process.id if process is not None else "",
        "schritt": step,
        "status": status_filter,
        "frist": due,
        "meine": "1" if mine else "",
    }
    query = {k: v for k, v in filters.items() if v and not (k == "status" and v == OPEN)}
    next_url = None
    if page.next is not None:
        next_url = "/faelle?" + urlencode({**query, "weiter": _encode_cursor(page.next)})
    return render(
        request,
        "cases/worklist.html",
        rows=_worklist_rows(engine, page.cases, now, locale),
        definitions=definitions,
        process=process,
        filters=filters,
        filtered=bool(query),
        status_filters=STATUS_FILTERS,
        due_filters=DUE_FILTERS,
        next_url=next_url,
        first_url=f"/faelle?{urlencode(query)}".rstrip("?") if after is not None else None,
        nummer=nummer,
        flash=flash,
    )


# --------------------------------------------------------------------------- opening a case


def _open_page(
    request: Request,
    definitions: dict[str, ProcessDefinition],
    definition: ProcessDefinition | None,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    assign_me: bool = True,
    status_code: int = 200,
    flash: dict[str, str] | None = None,
) -> Response:
    locale = i18n.locale_of(request)
    fields = (
        _field_views(
            definition,
            _opening_fields(definition),
            prefix="neu",
            locale=locale,
            values={},
            typed=typed,
            errors=errors,
        )
        if definition is not None
        else []
    )
    return render(
        request,
        "cases/open.html" if definition is not None else "cases/choose.html",
        status_code=status_code,
        definitions=definitions,
        definition=definition,
        fields=fields,
        errors=errors or {},
        assign_me=assign_me,
        flash=flash,
    )


@router.get("/faelle/neu")
def open_form(
    request: Request, user: Staff, engine: EngineDep, prozess: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    """Choose a process; then the form of its opening data."""
    definitions = _latest_definitions(engine)
    if prozess and prozess not in definitions:
        _ = gettext_for(request)
        flash = {"kind": "error", "text": _("Diesen Prozess gibt es nicht. Bitte wählen Sie einen aus der Liste.")}
        return _open_page(request, definitions, None, status_code=404, flash=flash)
    return _open_page(request, definitions, definitions.get(prozess))


@router.post("/faelle/neu", dependencies=[CsrfChecked])
def open_case(request: Request, user: Staff, engine: EngineDep, form: PostedForm) -> Response:
    """Open a case of the chosen process with the typed data; it belongs to the opener's team."""
    _ = gettext_for(request)
    definitions = _latest_definitions(engine)
    definition = definitions.get(str(form.get("prozess", "")))
    if definition is None:
        flash = {"kind": "error", "text": _("Diesen Prozess gibt es nicht. Bitte wählen Sie einen aus der Liste.")}
        return _open_page(request, definitions, None, status_code=404, flash=flash)
    names = _opening_fields(definition)
    typed = {name: str(form.get(name, "")) for name in names}
    assign_me = form.get("mir_zuweisen") == "1"
    data, problems = _parse_fields(definition, names, form, gettext=_)
    if not problems:
        try:
            case = logged_change(
                request,
                user,
                engine,
                None,
                data,
                lambda: engine.open_case(
                    definition.id,
                    actor=user.name,
                    data=data,
                    version=definition.version,
                    assignee=user.name if assign_me else None,
                    team=user.team,
                ),
            )
        except InvalidCaseData as exc:
            problems = _engine_problems(exc, definition, data, _)
        except DefinitionNotFound:
            flash = {"kind": "error", "text": _("Diesen Prozess gibt es nicht. Bitte wählen Sie einen aus der Liste.")}
            return _open_page(request, definitions, None, status_code=404, flash=flash)
        else:
            return RedirectResponse(f"/faelle/{case.id}?erledigt=eroeffnet", status_code=303)
    return _open_page(
        request, definitions, definition, typed=typed, errors=problems, assign_me=assign_me, status_code=422
    )


# --------------------------------------------------------------------------- the case page


@dataclass
class ActionView:
    key: str
    name: str
    title: str
    next_step: str | None
    fields: list[FieldView]
    reasons: list[str]
    needs_consent: bool = False


@dataclass
class EventView:
    seq: int
    at: datetime
    actor: str
    label: str
    lines: list[str]
    links: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Conflict:
    """A change refused because the case moved on: who changed it, what, and the input to send again."""

    actors: str
    events: list[EventView]
    action: str
    values: list[tuple[str, str]]


def _offered(option: ActionOption, definition: ProcessDefinition, step: StepDef) -> bool:
    """Whether an action can be fired from its form now: available, or missing only data its own form asks for
    (the engine accepts an action's ``requires`` and ``records`` fields with it)."""
    if option.available:
        return True
    action = step.actions[option.name]
    if action.system_only:
        return False
    own = {*action.records, *action.requires}
    return all(r.code == "missing-data" and set(r.fields) <= own for r in option.reasons)


def _event_views(
    events: Iterable[CaseEvent], engine: ScopedEngine, case: Case, definition: ProcessDefinition, locale: str
) -> list[EventView]:
    """The history in words: what happened, by whom, with the data it changed."""
    _ = i18n.translations(locale).gettext
    pick = lambda de, en=None: i18n.pick(de, en, locale)  # noqa: E731

    def step_title(step_id: str | None) -> str:
        step = definition.steps.get(step_id or "")
        return pick(step.title, step.title_en) if step else (step_id or "–")

    def agency(code: str | None) -> str:
        return definition.agencies.get(code or "", code or "–")

    def reason(code: str | None) -> str:
        return engine.taxonomy.label(code, english=locale == "en") if code else "–"

    # In the definition's order (PostgreSQL's JSONB does not keep the order the fields came in).
    field_order = {name: index for index, name in enumerate(definition.fields)}
    views = []
    for event in events:
        detail = event.detail
        label = _(EVENT_LABELS.get(event.kind, event.kind))
        lines: list[str] = []
        links: list[tuple[str, str]] = []
        if event.kind == "opened":
            lines.append(_("Schritt: %(step)s") % {"step": step_title(event.to_step)})
            if detail.get("parent_id"):
                links.append(
                    (f"/faelle/{detail['parent_id']}", _("Teilfall von Fall %(id)s") % {"id": detail["parent_id"]})
                )
        elif event.kind == "fired":
            step = definition.steps.get(event.from_step or "")
            action = step.actions.get(event.action or "") if step else None
            label = pick(action.title, action.title_en) if action else (event.action or label)
            if event.from_step != event.to_step:
                lines.append(
                    _("Schritt: %(old)s → %(new)s")
                    % {"old": step_title(event.from_step), "new": step_title(event.to_step)}
                )
            handoff = detail.get("handoff")
            if handoff:
                lines.append(
                    _("Übergabe von %(source)s an %(target)s")
                    % {"source": agency(handoff.get("from")), "target": agency(handoff.get("to"))}
                )
            child = detail.get("child")
            if child:
                links.append((f"/faelle/{child['case_id']}", _("Teilfall %(id)s eröffnet") % {"id": child["case_id"]}))
            if detail.get("status") == COMPLETED:
                lines.append(_("Fall abgeschlossen"))
        elif event.kind == "paused":
            lines.append(_("Grund: %(reason)s") % {"reason": reason(detail.get("reason"))})
        elif event.kind == "resumed":
            lines.append(_("Frist um die Pause verlängert"))
        elif event.kind == "waiting":
            label = _("Wartet auf %(party)s") % {"party": agency(detail.get("waiting_on"))}
            lines.append(_("Grund: %(reason)s") % {"reason": reason(detail.get("reason"))})
        elif event.kind == "assigned":
            assignee = detail.get("assignee")
            lines.append(_("Zuständig: %(name)s") % {"name": assignee} if assignee else _("Niemand mehr zuständig"))
        elif event.kind == "consent_recorded":
            categories = ", ".join(
                pick(*CATEGORY_LABELS[c]) if c in CATEGORY_LABELS else c for c in detail.get("categories", ())
            )
            lines.append(_("Empfänger: %(agency)s") % {"agency": agency(detail.get("recipient"))})
            lines.append(_("Datenkategorien: %(categories)s") % {"categories": categories})
        elif event.kind == "consent_revoked":
            lines.append(_("Einwilligung Nr. %(id)s") % {"id": detail.get("consent_id")})
        elif event.kind in (CLOSED, CANCELLED) and detail.get("reason"):
            lines.append(_("Grund: %(reason)s") % {"reason": detail["reason"]})
        note = detail.get("note")
        if note:
            lines.append(_("Vermerk: %(note)s") % {"note": note})
        changed = [
            f"{pick(definition.fields[name].label, definition.fields[name].label_en)}: "
            f"{display_value(definition.fields[name], _new_value(values), locale)}"
            for name, values in sorted(event.changes.items(), key=lambda item: field_order.get(item[0], 0))
            if name in definition.fields
        ]
        if changed:
            lines.append(_("Angaben: %(changes)s") % {"changes": "; ".join(changed)})
        actor = _("automatisch") if event.actor == SYSTEM_ACTOR else event.actor
        views.append(EventView(event.seq, event.at, actor, label, lines, links))
    return views


def _new_value(change: Any) -> Any:
    """The value after a change; events store changes as ``[old, new]``."""
    return change[1] if isinstance(change, list) and len(change) == 2 else change


def _consent_defaults(definition: ProcessDefinition, step: StepDef | None) -> tuple[str, str, list[str]]:
    """Recipient, purpose and categories of the handoff a consent is most likely for (this step's first)."""
    actions = list(step.actions.values()) if step is not None else []
    actions += [a for s in definition.steps.values() for a in s.actions.values()]
    for action in actions:
        handoff = action.handoff
        if handoff is not None and handoff.consent_required:
            return handoff.to_agency, action.title, list(handoff.categories)
    return "", "", []


def _handoffs(definition: ProcessDefinition, locale: str) -> list[dict[str, Any]]:
    """The handoffs of the process that need a consent: what a consent must cover."""
    out = []
    for step in definition.steps.values():
        for action in step.actions.values():
            handoff = action.handoff
            if handoff is None or not handoff.consent_required:
                continue
            out.append(
                {
                    "step": i18n.pick(step.title, step.title_en, locale),
                    "action": i18n.pick(action.title, action.title_en, locale),
                    "recipient": definition.agencies.get(handoff.to_agency, handoff.to_agency),
                    "categories": [i18n.pick(*CATEGORY_LABELS[c], locale) for c in handoff.categories],
                }
            )
    return out


def _assignable(accounts: Any, case: Case, user: User) -> list[str]:
    """Whom the case can be given to: active caseworkers of its team and the coordinators."""
    names = [
        u.name
        for u in accounts.list_users()
        if not u.disabled and (u.role == COORDINATOR or (u.role == CASEWORKER and u.team == case.team))
    ]
    if case.assignee and case.assignee not in names:
        names.append(case.assignee)
    return names


def _case_page(
    request: Request,
    user: User,
    engine: ScopedEngine,
    accounts: Any,
    case_id: int,
    *,
    state: FormState | None = None,
    conflict: Conflict | None = None,
    status_code: int = 200,
    flash: dict[str, str] | None = None,
) -> Response:
    """Render the case page (also after a refused change, with the form's problems or the conflict)."""
    locale = i18n.locale_of(request)
    _ = i18n.translations(locale).gettext
    pick = lambda de, en=None: i18n.pick(de, en, locale)  # noqa: E731
    case = engine.get_case(case_id)
    definition = engine.process(case.process_id, case.process_version)
    step = definition.steps.get(case.step)
    now = engine.clock.now()
    visits = engine.visits(case_id)
    current = next((v for v in visits if v.id == case.visit_id), None)
    deadline = (
        _deadline(definition, now, case, current.due_at, current.warn_at, current.paused_since)
        if current is not None
        else NO_DEADLINE
    )
    consents = engine.consents(case_id)
    history = engine.history(case_id)
    children = engine.children(case_id)

    def typed_for(key: str) -> Mapping[str, str] | None:
        return state.values if state is not None and state.key == key else None

    def errors_for(key: str) -> dict[str, str]:
        return state.errors if state is not None and state.key == key else {}

    offered: list[ActionView] = []
    blocked: list[ActionView] = []
    if case.is_open and step is not None:
        for option in engine.available_actions(case_id):
            action = step.actions[option.name]
            key = f"aktion-{option.name}"
            names = list(option.asks_for)
            view = ActionView(
                key=key,
                name=option.name,
                title=pick(option.title, option.title_en),
                next_step=pick(definition.steps[option.next_step].title, definition.steps[option.next_step].title_en)
                if option.next_step
                else None,
                fields=_field_views(
                    definition,
                    names,
                    prefix=key,
                    locale=locale,
                    values=case.data,
                    typed=typed_for(key),
                    required=action.requires,
                    errors=errors_for(key),
                ),
                # Data the action's own form asks for is no reason to list it as blocked.
                reasons=[
                    pick(r.message, r.message_en)
                    for r in option.reasons
                    if not (r.code == "missing-data" and set(r.fields) <= {*action.records, *action.requires})
                ],
                needs_consent=any(r.code == "missing-consent" for r in option.reasons),
            )
            (offered if _offered(option, definition, step) else blocked).append(view)

    today = now.astimezone(i18n.BERLIN).date().isoformat()
    consent_rows = [
        {
            "consent": c,
            "recipient": definition.agencies.get(c.recipient, c.recipient),
            "categories": [pick(*CATEGORY_LABELS[k]) if k in CATEGORY_LABELS else k for k in c.categories],
            "valid_until": date.fromisoformat(c.valid_until) if c.valid_until else None,
            "state": "revoked" if c.revoked_at else "expired" if c.valid_until and c.valid_until < today else "valid",
        }
        for c in consents
    ]
    recipient, purpose, categories = _consent_defaults(definition, step)
    consent_typed = typed_for("einwilligung")
    if consent_typed is not None:
        recipient = str(consent_typed.get("recipient", ""))
        purpose = str(consent_typed.get("purpose", ""))
        categories = list(consent_typed.getlist("categories")) if isinstance(consent_typed, FormData) else []
    reasons = sorted(engine.taxonomy.codes.values(), key=lambda r: r.code)
    typical = set(step.stall_causes) if step is not None else set()
    reason_groups = [
        (_("Typisch für diesen Schritt"), [r for r in reasons if r.code in typical]),
        (_("Weitere Gründe"), [r for r in reasons if r.code not in typical]),
    ]
    child_rows = []
    for child in children:
        child_definition = engine.process(child.process_id, child.process_version)
        child_step = child_definition.steps.get(child.step)
        child_rows.append(
            {
                "case": child,
                "process": pick(child_definition.title, child_definition.title_en),
                "step": pick(child_step.title, child_step.title_en) if child_step else child.step,
                "status": STATUS_LABELS.get(child.status, child.status),
            }
        )
    visit_options = [
        (
            v.id,
            _visit_label(v, definition, now, locale),
        )
        for v in reversed(visits)
    ]
    data_rows = [
        (pick(spec.label, spec.label_en), display_value(spec, case.data.get(name), locale))
        for name, spec in definition.fields.items()
    ]
    read_fields = [*case.data, *(name for e in history for name in e.changes)]
    if consents:
        read_fields.append("consents")
    _log_read(request, user, engine, case_id, read_fields)
    done = request.query_params.get("erledigt", "")
    if flash is None and done in DONE and state is None and conflict is None:
        flash = {"kind": "ok", "text": _(DONE[done])}
    return render(
        request,
        "cases/case.html",
        status_code=status_code,
        case=case,
        definition=definition,
        step=step,
        step_title=pick(step.title, step.title_en) if step else case.step,
        agency=definition.agencies.get(step.agency, step.agency) if step and step.agency else None,
        waiting_on=definition.agencies.get(case.waiting_on, case.waiting_on) if case.waiting_on else None,
        waiting_reason=engine.taxonomy.label(current.reason_code, english=locale == "en")
        if current is not None and current.reason_code and case.is_open
        else None,
        pause_reason=engine.taxonomy.label(case.pause_reason, english=locale == "en") if case.pause_reason else None,
        paused_since=current.paused_since if current is not None else None,
        client_wait=case.waiting_on == CLIENT,
        deadline=deadline,
        due_note=deadline_note(deadline, locale),
        status_badges=_badges(case, deadline),
        status_label=STATUS_LABELS.get(case.status, case.status),
        offered=offered,
        blocked=blocked,
        consent_rows=consent_rows,
        consent_form={"recipient": recipient, "purpose": purpose, "categories": categories},
        consent_valid_until=str(consent_typed.get("valid_until", "")) if consent_typed is not None else "",
        handoffs=_handoffs(definition, locale),
        category_labels=[(k, pick(*v)) for k, v in CATEGORY_LABELS.items()],
        agencies=list(definition.agencies.items()),
        reason_groups=reason_groups,
        early_outcomes=list(EARLY_OUTCOMES.items()),
        assignable=_assignable(accounts, case, user),
        visit_options=visit_options,
        current_visit=case.visit_id,
        child_rows=child_rows,
        data_rows=data_rows,
        events=list(reversed(_event_views(history, engine, case, definition, locale))),
        steps=[
            (
                s.id,
                pick(s.title, s.title_en),
                definition.agencies.get(s.agency, s.agency) if s.agency else "–",
                (s.expected.german() if locale == "de" else s.expected.english()) if s.expected else "–",
            )
            for s in definition.steps.values()
        ],
        diagram=render_diagram(definition, locale=locale, highlight=case.step),
        state=state,
        conflict=conflict,
        flash=flash,
        typed=typed_for,
        errors=errors_for,
    )


def _visit_label(visit: StepVisit, definition: ProcessDefinition, now: datetime, locale: str) -> str:
    _ = i18n.translations(locale).gettext
    step = definition.steps.get(visit.step)
    title = i18n.pick(step.title, step.title_en, locale) if step else visit.step
    since = i18n.fmt_date(visit.entered_at, locale)
    late = (
        visit.overran
        if visit.left_at is not None
        else (visit.due_at is not None and visit.due_at < now) or (visit.warn_at is not None and visit.warn_at < now)
    )
    if visit.left_at is None:
        text = _("%(step)s (seit %(since)s, aktuell)") % {"step": title, "since": since}
    else:
        text = _("%(step)s (%(since)s bis %(until)s)") % {
            "step": title,
            "since": since,
            "until": i18n.fmt_date(visit.left_at, locale),
        }
    return text + (" – " + _("Frist überschritten oder gefährdet") if late else "")


@router.get("/faelle/{case_id}")
def case_page(request: Request, case_id: str, user: Staff, engine: EngineDep, accounts: AccountsDep) -> Response:
    """One case: where it stands, what can be done now and why not, consents, waiting, findings, history, data."""
    return _case_page(request, user, engine, accounts, _require_visible(engine, user, case_id))


# --------------------------------------------------------------------------- changes from the case page


def _expected_version(form: FormData) -> int | None:
    """The case version the form was rendered with (every change form carries it); None if missing."""
    raw = str(form.get("version", ""))
    return int(raw) if raw.isdigit() else None


def _incomplete_form(request: Request) -> Response:
    """A change form without the case version: refused (it cannot be checked against a colleague's change)."""
    return render(
        request,
        "error.html",
        status_code=400,
        heading=N_("Formular unvollständig"),
        message=N_(
            "Dem Formular fehlt der Stand des Falls, auf dem es beruht. Bitte laden Sie die Seite des Falls neu "
            "und versuchen Sie es noch einmal."
        ),
        correlation=None,
    )


def _conflict(
    request: Request, engine: ScopedEngine, case_id: int, expected: int, form: FormData, locale: str
) -> Conflict:
    case = engine.get_case(case_id)
    definition = engine.process(case.process_id, case.process_version)
    since = [e for e in engine.history(case_id) if e.seq > expected]
    events = _event_views(since, engine, case, definition, locale)
    actors = ", ".join(dict.fromkeys(e.actor for e in events)) or "–"
    values = [(k, str(v)) for k, v in form.multi_items() if k not in (CSRF_FIELD, "version")]
    return Conflict(actors=actors, events=events, action=request.url.path, values=values)


_CHECK_MARKED = N_("Die Änderung wurde nicht gespeichert. Bitte prüfen Sie die markierten Angaben.")
#: What the page says when the engine refuses a change for one of these reasons (the first match counts).
_REFUSALS: tuple[tuple[type[EngineError], str], ...] = (
    (
        FindingNotAllowed,
        N_(
            "Ein struktureller Hinweis ist nur zu einem Schritt möglich, der seine Frist überschritten hat "
            "oder dessen Frist gefährdet ist. Der gewählte Schritt liegt im Plan; "
            "der Hinweis wurde nicht gespeichert."
        ),
    ),
    (CaseClosed, N_("Der Fall ist beendet und kann nicht mehr geändert werden.")),
    (ActionNotAllowed, N_("Diese Aktion gibt es im aktuellen Schritt nicht, oder sie wird nur automatisch ausgelöst.")),
    (ConsentNotFound, N_("Diese Einwilligung ist nicht (mehr) wirksam; sie wurde schon widerrufen.")),
    (EngineError, N_("Die Änderung wurde abgelehnt.")),
)


@dataclass(frozen=True)
class PostedChange:
    """A change posted from the page of a case the user may see, with what every change route needs.

    Built by the dependencies below before the route's own input checks: an unknown case or
    another team's answers with the 404 page, a change form without the case version with the
    400 page (:class:`_IncompleteForm`). A route then either refuses its input
    (:meth:`refuse`) or hands the engine operation to :meth:`apply`.

    Attributes:
        case_id: The case's number.
        expected: The case version the form was rendered with, for the engine's
            ``expected_version``; None only for a finding, which does not change the case.
    """

    request: Request
    user: User
    engine: ScopedEngine
    accounts: Any
    form: FormData
    case_id: int
    expected: int | None

    @property
    def actor(self) -> str:
        return self.user.name

    @property
    def gettext(self) -> Callable[[str], str]:
        return gettext_for(self.request)  # type: ignore[no-any-return]

    def _page(self, status_code: int, *, state: FormState | None = None, conflict: Conflict | None = None) -> Response:
        return _case_page(
            self.request,
            self.user,
            self.engine,
            self.accounts,
            self.case_id,
            state=state,
            conflict=conflict,
            status_code=status_code,
        )

    def refuse(self, key: str, errors: dict[str, str]) -> Response:
        """The page with the form's input problems (found before or by the engine), 422."""
        state = FormState(key=key, values=self.form, errors=errors, message=self.gettext(_CHECK_MARKED))
        return self._page(422, state=state)

    def apply(
        self,
        *,
        key: str,
        fields: Iterable[str],
        operation: Callable[[], object],
        done: str,
        submitted: Mapping[str, Any] | None = None,
        anchor: str = "",
    ) -> Response:
        """Run the change; on success back to the page (303), otherwise the page with the problem."""
        _ = self.gettext
        locale = i18n.locale_of(self.request)
        state = FormState(key=key, values=self.form)
        try:
            logged_change(self.request, self.user, self.engine, self.case_id, fields, operation)
        except ConcurrentUpdate as exc:
            conflict = _conflict(self.request, self.engine, self.case_id, exc.expected_version, self.form, locale)
            return self._page(409, conflict=conflict)
        except InvalidCaseData as exc:
            case = self.engine.get_case(self.case_id)
            definition = self.engine.process(case.process_id, case.process_version)
            return self.refuse(key, _engine_problems(exc, definition, submitted or {}, _))
        except ActionUnavailable as exc:
            state.message = _("Das ist jetzt nicht möglich. Die Änderung wurde nicht gespeichert.")
            state.reasons = [i18n.pick(r.message, r.message_en, locale) for r in exc.reasons]
            missing = {name for r in exc.reasons if r.code == "missing-data" for name in r.fields}
            state.errors = {name: _("Diese Angabe ist für diese Aktion erforderlich.") for name in missing}
            return self._page(409, state=state)
        except EngineError as exc:
            state.message = _(next(text for kind, text in _REFUSALS if isinstance(exc, kind)))
            return self._page(409, state=state)
        return RedirectResponse(f"/faelle/{self.case_id}?erledigt={done}{anchor}", status_code=303)


class _IncompleteForm(Exception):
    """Raised by :func:`_versioned_change`; :class:`_PageRoute` answers it with :func:`_incomplete_form`."""


def _posted_change(
    request: Request, case_id: str, user: Staff, engine: EngineDep, accounts: AccountsDep, form: PostedForm
) -> PostedChange:
    """A post to a case the user may see (the 404 page otherwise); the case version is read, not required."""
    number = _require_visible(engine, user, case_id)
    return PostedChange(request, user, engine, accounts, form, number, _expected_version(form))


def _versioned(change: PostedChange) -> PostedChange:
    """``change`` if its form carries the case version, else the 400 page: without it no overwrite can be noticed."""
    if change.expected is None:
        raise _IncompleteForm
    return change


def _versioned_change(change: Annotated[PostedChange, Depends(_posted_change)]) -> PostedChange:
    return _versioned(change)


def _revocation(
    consent_id: int,
    request: Request,
    case_id: str,
    user: Staff,
    engine: EngineDep,
    accounts: AccountsDep,
    form: PostedForm,
) -> tuple[PostedChange, int]:
    """The revocation of a consent: the consent number is a parameter of this dependency so that, as
    for any route's own path parameters, a malformed one answers 422 before the case is looked at."""
    return _versioned(_posted_change(request, case_id, user, engine, accounts, form)), consent_id


#: A post to a visible case that does not change it (no version needed).
VisibleCase = Annotated[PostedChange, Depends(_posted_change)]
#: A change to a visible case, checked against the version its form was rendered with.
CaseChange = Annotated[PostedChange, Depends(_versioned_change)]
Revocation = Annotated[tuple[PostedChange, int], Depends(_revocation)]


@router.post("/faelle/{case_id}/aktionen/{action}", dependencies=[CsrfChecked])
def fire_action(action: str, change: CaseChange) -> Response:
    """Fire an action of the current step with the data its form records."""
    engine, number = change.engine, change.case_id
    case = engine.get_case(number)
    definition = engine.process(case.process_id, case.process_version)
    step = definition.steps.get(case.step)
    spec = step.actions.get(action) if step is not None and case.is_open else None
    key = f"aktion-{action}"
    data: dict[str, Any] = {}
    if spec is not None:
        names = list(dict.fromkeys(spec.requires + spec.records))
        data, problems = _parse_fields(
            definition, names, change.form, required=spec.requires, current=case.data, gettext=change.gettext
        )
        if problems:
            return change.refuse(key, problems)
    return change.apply(
        key=key,
        fields=data,
        operation=lambda: engine.fire(number, action, actor=change.actor, data=data, expected_version=change.expected),
        done="aktion",
        submitted=data,
    )


@router.post("/faelle/{case_id}/einwilligungen", dependencies=[CsrfChecked])
def record_consent(change: CaseChange) -> Response:
    """Record the client's consent: recipient, purpose, data categories, optionally until when."""
    _ = change.gettext
    form = change.form
    recipient = str(form.get("recipient", "")).strip()
    purpose = str(form.get("purpose", "")).strip()
    categories = [str(c) for c in form.getlist("categories")]
    raw_until = str(form.get("valid_until", "")).strip()
    valid_until = _parse_date(raw_until) if raw_until else None
    problems = {}
    if not recipient:
        problems["recipient"] = _(INPUT_PROBLEMS["recipient"])
    if not purpose:
        problems["purpose"] = _(INPUT_PROBLEMS["purpose"])
    if not categories:
        problems["categories"] = _(INPUT_PROBLEMS["categories"])
    if raw_until and valid_until is None:
        problems["valid_until"] = _(INPUT_PROBLEMS["valid_until"])
    if problems:
        return change.refuse("einwilligung", problems)
    return change.apply(
        key="einwilligung",
        fields=["consents"],
        operation=lambda: change.engine.record_consent(
            change.case_id,
            recipient=recipient,
            purpose=purpose,
            categories=categories,
            valid_until=valid_until,
            actor=change.actor,
            expected_version=change.expected,
        ),
        done="einwilligung",
        anchor="#einwilligungen",
    )


@router.post("/faelle/{case_id}/einwilligungen/{consent_id}/widerrufen", dependencies=[CsrfChecked])
def revoke_consent(revocation: Revocation) -> Response:
    """Revoke a recorded consent; handoffs it covered are unavailable from now on."""
    change, consent_id = revocation
    return change.apply(
        key=f"widerruf-{consent_id}",
        fields=["consents"],
        operation=lambda: change.engine.revoke_consent(
            change.case_id, consent_id, actor=change.actor, expected_version=change.expected
        ),
        done="widerruf",
        anchor="#einwilligungen",
    )


def _reason_problems(change: PostedChange) -> dict[str, str]:
    reason = str(change.form.get("reason", ""))
    return {} if reason in change.engine.taxonomy else {"reason": change.gettext(INPUT_PROBLEMS["reason"])}


def _reason_and_note(form: FormData) -> dict[str, Any]:
    """The reason code and the optional free note of a pause or a wait (the reason checked already)."""
    return {"reason": str(form["reason"]), "note": str(form.get("note", "")).strip() or None}


@router.post("/faelle/{case_id}/pausieren", dependencies=[CsrfChecked])
def pause_case(change: CaseChange) -> Response:
    """Pause the case with a reason code; its deadline clock stops."""
    problems = _reason_problems(change)
    if problems:
        return change.refuse("pause", problems)
    form = change.form
    return change.apply(
        key="pause",
        fields=["pause"],
        operation=lambda: change.engine.pause(
            change.case_id, **_reason_and_note(form), actor=change.actor, expected_version=change.expected
        ),
        done="pausiert",
    )


@router.post("/faelle/{case_id}/fortsetzen", dependencies=[CsrfChecked])
def resume_case(change: CaseChange) -> Response:
    """Resume a paused case; the deadline moves later by the office days it stood still."""
    return change.apply(
        key="fortsetzen",
        fields=["pause"],
        operation=lambda: change.engine.resume(change.case_id, actor=change.actor, expected_version=change.expected),
        done="fortgesetzt",
    )


@router.post("/faelle/{case_id}/wartet-auf", dependencies=[CsrfChecked])
def wait_on(change: CaseChange) -> Response:
    """Record whom the case waits on now and why."""
    form = change.form
    problems = _reason_problems(change)
    party = str(form.get("party", ""))
    if not party:
        problems["party"] = change.gettext(INPUT_PROBLEMS["waiting_on"])
    if problems:
        return change.refuse("warten", problems)
    return change.apply(
        key="warten",
        fields=["waiting_on"],
        operation=lambda: change.engine.wait_on(
            change.case_id, party, **_reason_and_note(form), actor=change.actor, expected_version=change.expected
        ),
        done="wartet",
    )


@router.post("/faelle/{case_id}/zuweisen", dependencies=[CsrfChecked])
def assign_case(change: CaseChange) -> Response:
    """Make someone (or the user, or nobody) responsible for the case."""
    engine, number = change.engine, change.case_id
    assignee = str(change.form.get("assignee", "")).strip() or None
    if assignee is not None and assignee not in _assignable(change.accounts, engine.get_case(number), change.user):
        _ = change.gettext
        return change.refuse("zuweisen", {"assignee": _("Bitte wählen Sie eine Person aus der Liste.")})
    return change.apply(
        key="zuweisen",
        fields=["assignee"],
        operation=lambda: engine.assign(number, assignee, actor=change.actor, expected_version=change.expected),
        done="zugewiesen",
    )


@router.post("/faelle/{case_id}/hinweise", dependencies=[CsrfChecked])
def add_finding(change: VisibleCase) -> Response:
    """Attach a structural finding to a stalled visit (the case itself does not change, so no version check)."""
    _ = change.gettext
    form = change.form
    problems = _reason_problems(change)
    text = " ".join(str(form.get("text", "")).split())
    if not 5 <= len(text) <= 500:
        problems["text"] = _(INPUT_PROBLEMS["text"])
    raw_visit = str(form.get("visit_id", ""))
    visit_id = int(raw_visit) if raw_visit.isdigit() else None
    if problems:
        return change.refuse("hinweis", problems)
    return change.apply(
        key="hinweis",
        fields=[],
        operation=lambda: change.engine.add_finding(
            change.case_id, code=str(form["reason"]), text=text, visit_id=visit_id, actor=change.actor
        ),
        done="hinweis",
        anchor="#hinweis",
    )


@router.post("/faelle/{case_id}/beenden", dependencies=[CsrfChecked])
def end_case(change: CaseChange) -> Response:
    """End the case early with an outcome, or cancel it as opened in error; both need a reason."""
    _ = change.gettext
    form, engine = change.form, change.engine
    outcome = str(form.get("outcome", ""))
    reason = " ".join(str(form.get("end_reason", "")).split())
    problems = {}
    if outcome not in EARLY_OUTCOMES and outcome != "storniert":
        problems["outcome"] = _("Bitte wählen Sie, wie der Fall endet.")
    if not 3 <= len(reason) <= 500:
        problems["end_reason"] = _("Bitte begründen Sie das Beenden in 3 bis 500 Zeichen.")
    if problems:
        return change.refuse("beenden", problems)
    number, expected = change.case_id, change.expected
    if outcome == "storniert":
        operation = lambda: engine.cancel(number, reason=reason, actor=change.actor, expected_version=expected)  # noqa: E731
    else:
        operation = lambda: engine.close(  # noqa: E731
            number, outcome=outcome, reason=reason, actor=change.actor, expected_version=expected
        )
    return change.apply(
        key="beenden",
        fields=[],
        operation=operation,
        done="storniert" if outcome == "storniert" else "beendet",
    )


__all__ = ["router"]
