"""Processes: the deployed definitions, their diagrams and descriptions, and the YAML editor.

Reading (list, process page, description) is open to the roles that may read processes in
the API (``PROCESS_READERS``); editing and deploying to those that may deploy
(``PROCESS_EDITORS``, the coordination). The editor validates with the same loader as the
CLI and ``POST /api/v1/processes/validate`` (:func:`engine.check_definition`, diagnostics
with line and column), plus the child-process references against what is deployed, which
``deploy`` would check anyway; deploying is :meth:`engine.Engine.deploy_text`, so a
deployed version stays immutable (a different text under the same version is refused with
the engine's conflict message).

The coordinator's process page colours the steps by their stall share: the share of the
step's completed visits in that version that overran their deadline, from
:func:`engine.reports.dwell_samples` (one aggregate query, no personal data).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import security
from api.deps import EngineDep
from api.web import i18n
from api.web.diagram import render_diagram
from api.web.session import CsrfChecked, page_for
from api.web.templating import gettext_for, render
from engine import DefinitionNotFound, check_definition, conditions
from engine.accounts import User
from engine.definition import CATEGORY_LABELS, ActionDef, ProcessDefinition, StepDef, TimerDef, check_references
from engine.durations import Duration, DurationUnit
from engine.errors import DefinitionConflict, DefinitionError, Diagnostic
from engine.registry import Deployment
from engine.reports import dwell_samples, expected_office_days
from engine.scope import ScopedEngine

router = APIRouter(include_in_schema=False)

Reader = Annotated[User, Depends(page_for(*sorted(security.PROCESS_READERS)))]
Editor = Annotated[User, Depends(page_for(*sorted(security.PROCESS_EDITORS)))]

#: The largest draft the editor accepts (as the API: a definition is far smaller).
MAX_DRAFT_CHARS = 1_000_000
#: A new process starts from this: valid, so the preview shows something at once.
NEW_PROCESS_TEMPLATE = """\
# Neue Prozessdefinition. Aufbau und alle Schlüssel: docs/process-format.md
schema_version: 1
id: neuer_prozess
version: 1
title: Neuer Prozess
description: >-
  Wozu der Prozess dient und wer beteiligt ist.

agencies:
  KIM-CM: KIM-Case Management
  KLIENT: Klientin / Klient

data:
  eingang_am:
    type: date
    label: Eingang am
    category: process

steps:
  erfassen:
    title: Anliegen erfassen
    agency: KIM-CM
    expected: 5 Arbeitstage
    warn_after: 3 Arbeitstage
    actions:
      erfasst:
        title: Anliegen erfasst
        records: [eingang_am]
        next: abgeschlossen

  abgeschlossen:
    title: Abgeschlossen
    final: true
    outcome: erledigt
"""


# --------------------------------------------------------------------------- helpers


def _not_found() -> StarletteHTTPException:
    """Unknown process or version: the HTML 404 page (engine errors would answer with JSON)."""
    return StarletteHTTPException(404)


def _definition(engine: ScopedEngine, process_id: str, version: int | None) -> ProcessDefinition:
    registry = engine.registry
    try:
        compiled = registry.latest(process_id) if version is None else registry.get(process_id, version)
    except DefinitionNotFound:
        raise _not_found() from None
    return compiled.definition


def _deployments(engine: ScopedEngine, process_id: str) -> list[Deployment]:
    return [d for d in engine.registry.list() if d.process_id == process_id]


def _duration(duration: Duration | None, locale: str) -> str | None:
    if duration is None:
        return None
    return duration.german() if locale == "de" else duration.english()


def _office_days(duration: Duration | None) -> float | None:
    """A duration in office days ("Arbeitstage"), approximately for weeks and months; None if it is one."""
    if duration is None or duration.unit is DurationUnit.OFFICE_DAYS:
        return None
    return expected_office_days(duration)


@dataclass(frozen=True, slots=True)
class StallFigures:
    """A step's completed visits in one version and how many overran their deadline."""

    visits: int
    completed: int
    overran: int

    @property
    def share(self) -> float | None:
        return self.overran / self.completed if self.completed else None


def _stall_figures(engine: ScopedEngine, definition: ProcessDefinition) -> dict[str, StallFigures]:
    samples = dwell_samples(engine, definition.id, version=definition.version)
    return {
        step: StallFigures(sample.visits, sample.completed, sample.overran)
        for step, sample in samples.items()
        if step in definition.steps and not definition.steps[step].final
    }


# --------------------------------------------------------------------------- what the pages show about steps


@dataclass(frozen=True, slots=True)
class ActionView:
    action: ActionDef
    title: str
    next_title: str | None
    automatic: bool
    timer: bool
    condition: str | None
    requires: tuple[str, ...]
    records: tuple[str, ...]
    handoff: HandoffView | None
    child: str | None


@dataclass(frozen=True, slots=True)
class HandoffView:
    step_title: str
    action_title: str
    from_agency: str
    from_name: str
    to_agency: str
    to_name: str
    shares: tuple[str, ...]
    categories: tuple[str, ...]
    consent_required: bool
    legal_basis: str | None


@dataclass(frozen=True, slots=True)
class TimerView:
    action_title: str
    kind: str  # "in_step", "before_field", "after_field"
    duration: str
    field: str | None


@dataclass(frozen=True, slots=True)
class StepView:
    step: StepDef
    title: str
    agency_name: str | None
    waiting_on_name: str | None
    expected: str | None
    expected_office_days: float | None
    warn_after: str | None
    actions: tuple[ActionView, ...]
    timers: tuple[TimerView, ...]
    stall_causes: tuple[tuple[str, str], ...]


def _field_label(definition: ProcessDefinition, name: str, locale: str) -> str:
    spec = definition.fields.get(name)
    return i18n.pick(spec.label, spec.label_en, locale) if spec else name


def _step_views(engine: ScopedEngine, definition: ProcessDefinition, locale: str) -> list[StepView]:
    english = locale == "en"
    labels = {n: _field_label(definition, n, locale) for n in definition.fields}
    values = {n: f.values for n, f in definition.fields.items() if f.values}
    steps = definition.steps

    def step_title(step_id: str) -> str:
        step = steps[step_id]
        return i18n.pick(step.title, step.title_en, locale)

    views = []
    for step in steps.values():
        timer_actions = {t.action for t in step.timers}
        actions = []
        for action in step.actions.values():
            handoff = None
            if action.handoff is not None:
                h = action.handoff
                handoff = HandoffView(
                    step_title=step_title(step.id),
                    action_title=i18n.pick(action.title, action.title_en, locale),
                    from_agency=h.from_agency,
                    from_name=definition.agencies.get(h.from_agency, h.from_agency),
                    to_agency=h.to_agency,
                    to_name=definition.agencies.get(h.to_agency, h.to_agency),
                    shares=tuple(labels.get(n, n) for n in h.shares),
                    categories=tuple(
                        CATEGORY_LABELS[c][1 if english else 0] if c in CATEGORY_LABELS else c for c in h.categories
                    ),
                    consent_required=h.consent_required,
                    legal_basis=h.legal_basis,
                )
            actions.append(
                ActionView(
                    action=action,
                    title=i18n.pick(action.title, action.title_en, locale),
                    next_title=step_title(action.next) if action.next in steps else None,
                    automatic=action.system_only or action.name in timer_actions or action.name == step.on_child_done,
                    timer=action.name in timer_actions,
                    condition=conditions.describe(action.when, labels, english=english, values=values)
                    if action.when is not None
                    else None,
                    requires=tuple(labels.get(n, n) for n in action.requires),
                    records=tuple(labels.get(n, n) for n in action.records),
                    handoff=handoff,
                    child=action.start_child.process if action.start_child else None,
                )
            )
        views.append(
            StepView(
                step=step,
                title=step_title(step.id),
                agency_name=definition.agencies.get(step.agency) if step.agency else None,
                waiting_on_name=definition.agencies.get(step.waiting_on)
                if step.waiting_on and step.waiting_on != step.agency
                else None,
                expected=_duration(step.expected, locale),
                expected_office_days=_office_days(step.expected),
                warn_after=_duration(step.warn_after, locale),
                actions=tuple(actions),
                timers=tuple(_timer_view(t, step, definition, locale) for t in step.timers),
                stall_causes=tuple((c, engine.taxonomy.label(c, english=english)) for c in step.stall_causes),
            )
        )
    return views


def _timer_view(timer: TimerDef, step: StepDef, definition: ProcessDefinition, locale: str) -> TimerView:
    action = step.actions.get(timer.action)
    title = i18n.pick(action.title, action.title_en, locale) if action else timer.action
    field = _field_label(definition, timer.field, locale) if timer.field else None
    if timer.before is not None:
        return TimerView(title, "before_field", _duration(timer.before, locale) or "", field)
    kind = "after_field" if timer.field else "in_step"
    return TimerView(title, kind, _duration(timer.after, locale) or "", field)


def _version_facts(engine: ScopedEngine, definition: ProcessDefinition) -> tuple[Deployment | None, list[Deployment]]:
    deployments = _deployments(engine, definition.id)
    this = next((d for d in deployments if d.version == definition.version), None)
    return this, deployments


# --------------------------------------------------------------------------- list and process pages


@router.get("/prozesse")
def process_list(request: Request, user: Reader, engine: EngineDep) -> Response:
    """Every deployed process with its versions (newest first), deployment time, author and checksum."""
    locale = i18n.locale_of(request)
    by_id: dict[str, list[Deployment]] = {}
    for deployment in engine.registry.list():
        by_id.setdefault(deployment.process_id, []).append(deployment)
    processes = []
    for process_id, deployments in by_id.items():
        newest = engine.registry.get(process_id, deployments[-1].version).definition
        processes.append(
            {
                "id": process_id,
                "title": i18n.pick(newest.title, newest.title_en, locale),
                "newest": newest.version,
                "versions": list(reversed(deployments)),
            }
        )
    processes.sort(key=lambda p: str(p["title"]).casefold())
    return render(
        request,
        "processes/list.html",
        processes=processes,
        can_edit=user.role in security.PROCESS_EDITORS,
    )


def _process_page(request: Request, user: User, engine: ScopedEngine, definition: ProcessDefinition) -> Response:
    locale = i18n.locale_of(request)
    this, deployments = _version_facts(engine, definition)
    coordinator = user.role in security.PROCESS_EDITORS
    figures = _stall_figures(engine, definition) if coordinator else None
    heat = {step: f.share for step, f in figures.items() if f.share is not None} if figures is not None else None
    flash = None
    deployed = request.query_params.get("bereitgestellt")
    if deployed in ("neu", "unveraendert"):
        _ = gettext_for(request)
        text = (
            _("Version %(version)s wurde bereitgestellt. Neue Fälle laufen ab jetzt nach dieser Version.")
            if deployed == "neu"
            else _("Diese Version war mit genau diesem Inhalt schon bereitgestellt; es hat sich nichts geändert.")
        )
        flash = {"kind": "ok", "text": text % {"version": definition.version}}
    return render(
        request,
        "processes/show.html",
        definition=definition,
        title=i18n.pick(definition.title, definition.title_en, locale),
        deployment=this,
        deployments=list(reversed(deployments)),
        newest=deployments[-1].version if deployments else definition.version,
        steps=_step_views(engine, definition, locale),
        diagram=render_diagram(definition, locale=locale, heat=heat),
        figures=figures,
        coordinator=coordinator,
        flash=flash,
    )


@router.get("/prozesse/neu")
def new_process(request: Request, user: Editor, engine: EngineDep) -> Response:
    """The editor with a small valid template for a new process."""
    return _editor(request, engine, text=NEW_PROCESS_TEMPLATE, basis=None)


@router.get("/prozesse/{process_id}")
def process_newest(request: Request, user: Reader, engine: EngineDep, process_id: str) -> Response:
    return _process_page(request, user, engine, _definition(engine, process_id, None))


@router.get("/prozesse/{process_id}/bearbeiten")
def edit_process(request: Request, user: Editor, engine: EngineDep, process_id: str) -> Response:
    """The editor, filled with the newest deployed source (as deployed, byte for byte)."""
    basis = _definition(engine, process_id, None)
    return _editor(request, engine, text=basis.source_text, basis=basis)


@router.get("/prozesse/{process_id}/{version:int}")
def process_version(request: Request, user: Reader, engine: EngineDep, process_id: str, version: int) -> Response:
    return _process_page(request, user, engine, _definition(engine, process_id, version))


@router.get("/prozesse/{process_id}/{version:int}/beschreibung")
def process_description(request: Request, user: Reader, engine: EngineDep, process_id: str, version: int) -> Response:
    """A printable description of the process for network partners (the cooperation concept)."""
    locale = i18n.locale_of(request)
    definition = _definition(engine, process_id, version)
    this, _ = _version_facts(engine, definition)
    steps = _step_views(engine, definition, locale)
    handoffs = [a.handoff for s in steps for a in s.actions if a.handoff is not None]
    responsible: dict[str, list[str]] = {code: [] for code in definition.agencies}
    for view in steps:
        if view.step.agency in responsible and not view.step.final:
            responsible[view.step.agency].append(view.title)
    fields = [
        {
            "label": _field_label(definition, f.name, locale),
            "category": CATEGORY_LABELS.get(f.category, (f.category, f.category))[1 if locale == "en" else 0],
            "help": f.help,
        }
        for f in definition.fields.values()
    ]
    return render(
        request,
        "processes/description.html",
        definition=definition,
        title=i18n.pick(definition.title, definition.title_en, locale),
        deployment=this,
        steps=steps,
        handoffs=handoffs,
        responsible=responsible,
        fields=fields,
        diagram=render_diagram(definition, locale=locale, dom_id="beschreibung-diagramm"),
    )


@router.get("/prozesse/{process_id}/{version:int}/quelle")
def process_source(user: Reader, engine: EngineDep, process_id: str, version: int) -> Response:
    """The YAML source as deployed (to read, or to save and edit elsewhere)."""
    definition = _definition(engine, process_id, version)
    return PlainTextResponse(
        definition.source_text,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{definition.id}-v{definition.version}.yaml"'},
    )


# --------------------------------------------------------------------------- the editor


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "same"
    text: str


@dataclass(frozen=True, slots=True)
class DraftCheck:
    """What the editor shows about a draft: its problems, the diff to the basis, the preview."""

    definition: ProcessDefinition | None
    diagnostics: tuple[Diagnostic, ...]
    diff: tuple[DiffLine, ...]
    added: int
    removed: int
    preview: Any


def _normalise(text: str) -> str:
    """Browsers send a textarea's lines with CRLF; the deployed sources have LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _deployed_newest(engine: ScopedEngine) -> dict[str, ProcessDefinition]:
    newest: dict[str, int] = {}
    for deployment in engine.registry.list():
        newest[deployment.process_id] = deployment.version
    return {pid: engine.registry.get(pid, version).definition for pid, version in newest.items()}


def _diff(basis: ProcessDefinition | None, text: str) -> tuple[tuple[DiffLine, ...], int, int]:
    if basis is None:
        return (), 0, 0
    lines: list[DiffLine] = []
    added = removed = 0
    for raw in difflib.unified_diff(basis.source_text.splitlines(), text.splitlines(), lineterm="", n=2):
        if raw.startswith(("---", "+++")):
            continue
        if raw.startswith("@@"):
            lines.append(DiffLine("hunk", raw))
        elif raw.startswith("+"):
            added += 1
            lines.append(DiffLine("add", raw))
        elif raw.startswith("-"):
            removed += 1
            lines.append(DiffLine("del", raw))
        else:
            lines.append(DiffLine("same", raw))
    return tuple(lines), added, removed


def _check_draft(engine: ScopedEngine, text: str, basis: ProcessDefinition | None, locale: str) -> DraftCheck:
    if len(text) > MAX_DRAFT_CHARS:
        too_big = Diagnostic("entwurf.yaml", 1, 1, "too-large", "the definition is too large (at most 1 MB)")
        return DraftCheck(None, (too_big,), (), 0, 0, None)
    definition, diagnostics = check_definition(text, "entwurf.yaml")
    if definition is not None:
        known = _deployed_newest(engine)
        diagnostics = check_references([definition], known)
        if diagnostics:
            definition = None
    diff, added, removed = _diff(basis, text)
    preview = render_diagram(definition, locale=locale, dom_id="vorschau") if definition is not None else None
    return DraftCheck(definition, tuple(diagnostics), diff, added, removed, preview)


def _basis(engine: ScopedEngine, process_id: str, version: str) -> ProcessDefinition | None:
    """The deployed version the editor was opened with (hidden form fields), if any."""
    if not process_id or not version.isdigit():
        return None
    try:
        return engine.registry.get(process_id, int(version)).definition
    except DefinitionNotFound:
        return None


def _editor(
    request: Request,
    engine: ScopedEngine,
    *,
    text: str,
    basis: ProcessDefinition | None,
    status_code: int = 200,
    conflict: str | None = None,
    checked: DraftCheck | None = None,
) -> Response:
    locale = i18n.locale_of(request)
    check = checked or _check_draft(engine, text, basis, locale)
    return render(
        request,
        "processes/editor.html",
        status_code=status_code,
        text=text,
        basis=basis,
        basis_title=i18n.pick(basis.title, basis.title_en, locale) if basis else None,
        check=check,
        conflict=conflict,
    )


DraftText = Annotated[str, Form(alias="quelle")]
BasisId = Annotated[str, Form(alias="basis_prozess")]
BasisVersion = Annotated[str, Form(alias="basis_version")]


@router.post("/prozesse/pruefung", dependencies=[CsrfChecked])
def validate_draft(
    request: Request,
    user: Editor,
    engine: EngineDep,
    quelle: DraftText = "",
    basis_prozess: BasisId = "",
    basis_version: BasisVersion = "",
) -> Response:
    """The editor's live check (htmx): diagnostics, diff and preview as a fragment of the page."""
    text = _normalise(quelle)
    basis = _basis(engine, basis_prozess, basis_version)
    check = _check_draft(engine, text, basis, i18n.locale_of(request))
    return render(request, "processes/_live.html", check=check, basis=basis)


@router.post("/prozesse/entwurf", dependencies=[CsrfChecked])
def submit_draft(
    request: Request,
    user: Editor,
    engine: EngineDep,
    quelle: DraftText = "",
    basis_prozess: BasisId = "",
    basis_version: BasisVersion = "",
    aktion: Annotated[str, Form()] = "pruefen",
) -> Response:
    """The editor's form: "Prüfen" shows the check (the page without JavaScript), "Bereitstellen" deploys."""
    text = _normalise(quelle)
    basis = _basis(engine, basis_prozess, basis_version)
    check = _check_draft(engine, text, basis, i18n.locale_of(request))
    if aktion != "bereitstellen" or check.definition is None:
        status = 200 if check.definition is not None else 422
        return _editor(request, engine, text=text, basis=basis, checked=check, status_code=status)
    try:
        deployment = engine.deploy_text(text, actor=user.name, file=f"{check.definition.id}.yaml")
    except DefinitionConflict as exc:
        _ = gettext_for(request)
        message = _(
            "Version %(version)s von „%(process)s“ ist schon mit anderem Inhalt bereitgestellt. Eine bereitgestellte "
            "Version ändert sich nie: Erhöhen Sie die Versionsnummer (version) und stellen Sie erneut bereit."
        ) % {"version": check.definition.version, "process": check.definition.id}
        refused = DraftCheck(None, exc.diagnostics, check.diff, check.added, check.removed, check.preview)
        return _editor(request, engine, text=text, basis=basis, checked=refused, status_code=409, conflict=message)
    except DefinitionError as exc:  # e.g. a child process removed meanwhile
        failed = DraftCheck(None, exc.diagnostics, check.diff, check.added, check.removed, None)
        return _editor(request, engine, text=text, basis=basis, checked=failed, status_code=422)
    state = "neu" if deployment.created else "unveraendert"
    return RedirectResponse(
        f"/prozesse/{deployment.process_id}/{deployment.version}?bereitgestellt={state}", status_code=303
    )


__all__ = ["NEW_PROCESS_TEMPLATE", "router"]
