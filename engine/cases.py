"""The engine facade: every operation on cases, each one database transaction.

Every change to a case (a) checks the case's version (optimistic concurrency: a
stale expected version is refused, and so is the loser of a race between
the read and the write), (b) updates the case row, (c) appends one event, and
(d) keeps the step-visit rows (entered, left, deadline, paused time) and timer
rows in step — all in the same transaction, so the store is never half-updated.
Time comes from the injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import store as st
from engine.case import (
    CANCELLED,
    CLOSED,
    COMPLETED,
    OPEN,
    ActionOption,
    Case,
    CaseEvent,
    Consent,
    Finding,
    StepVisit,
)
from engine.clock import Clock, SystemClock
from engine.definition import CATEGORY_LABELS, ActionDef, ProcessDefinition, StepDef
from engine.errors import (
    ActionNotAllowed,
    ActionUnavailable,
    CaseClosed,
    ConcurrentUpdate,
    ConsentNotFound,
    FindingNotAllowed,
    InvalidCaseData,
    Reason,
)
from engine.machine import CompiledProcess
from engine.registry import Deployment, Registry
from engine.taxonomy import Taxonomy, load_taxonomy

SYSTEM_ACTOR = "system"
#: The agency code for the client; waiting on the client may stop a step's clock.
CLIENT = "KLIENT"
_BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one ``tick`` did: timers fired, and timers whose action was unavailable."""

    fired: int
    skipped: int


class Engine:
    """Deploy process definitions and run cases durably.

    Args:
        database_url: SQLAlchemy URL; SQLite file by default.
        clock: Where "now" comes from (injected for tests and simulations).
        store: An existing store instead of a URL.
        taxonomy: The stall-cause codes in force (default: the shipped ones).
        durable: False only for synthetic bulk data on SQLite (no fsync per commit).

    Example:
        >>> engine = Engine("sqlite:///kimflow.db")          # doctest: +SKIP
        >>> engine.upgrade_schema()                          # doctest: +SKIP
        >>> engine.deploy(["processes/"], actor="koordination")  # doctest: +SKIP
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        clock: Clock | None = None,
        store: st.Store | None = None,
        taxonomy: Taxonomy | None = None,
        durable: bool = True,
    ) -> None:
        self.store = store or st.Store(database_url, durable=durable)
        self.clock: Clock = clock or SystemClock()
        self.registry = Registry(self.store, self.clock)
        self.taxonomy = taxonomy or load_taxonomy()

    # ------------------------------------------------------------------ definitions

    def upgrade_schema(self) -> None:
        """Create or upgrade the database schema (Alembic migrations)."""
        self.store.upgrade()

    def deploy(self, paths: Iterable[str | Path], *, actor: str) -> list[Deployment]:
        """Validate and deploy definition files or directories, all or nothing."""
        return self.registry.deploy_files(paths, actor=actor)

    def deploy_text(self, text: str, *, actor: str, file: str = "<text>") -> Deployment:
        """Validate and deploy one definition given as YAML text."""
        return self.registry.deploy_texts([(file, text)], actor=actor)[0]

    def process(self, process_id: str, version: int | None = None) -> ProcessDefinition:
        """A deployed definition (the newest version unless ``version`` is given)."""
        return self._compiled(process_id, version).definition

    def _compiled(
        self, process_id: str, version: int | None = None, conn: sa.Connection | None = None
    ) -> CompiledProcess:
        if version is None:
            return self.registry.latest(process_id, conn)
        return self.registry.get(process_id, version, conn)

    # ------------------------------------------------------------------ reading

    def get_case(self, case_id: int) -> Case:
        """Read a case.

        Raises:
            CaseNotFound: If it does not exist.
        """
        with self.store.read() as conn:
            return st.load_case(conn, case_id)

    def history(self, case_id: int) -> list[CaseEvent]:
        """The case's events, oldest first."""
        with self.store.read() as conn:
            st.load_case(conn, case_id)
            return st.load_events(conn, case_id)

    def visits(self, case_id: int) -> list[StepVisit]:
        """The case's step visits, oldest first."""
        with self.store.read() as conn:
            st.load_case(conn, case_id)
            return st.load_visits(conn, case_id)

    def consents(self, case_id: int) -> list[Consent]:
        """All consents recorded for the case, revoked ones included."""
        with self.store.read() as conn:
            st.load_case(conn, case_id)
            return st.load_consents(conn, case_id)

    def children(self, case_id: int) -> list[Case]:
        with self.store.read() as conn:
            return st.load_cases(conn, [st.cases_t.c.parent_id == case_id], limit=1000)

    def list_cases(
        self,
        *,
        process_id: str | None = None,
        step: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        waiting_on: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Case]:
        """Cases matching all given filters, by case number."""
        c = st.cases_t.c
        where = [
            column == value
            for column, value in (
                (c.process_id, process_id),
                (c.step, step),
                (c.status, status),
                (c.assignee, assignee),
                (c.waiting_on, waiting_on),
            )
            if value is not None
        ]
        with self.store.read() as conn:
            return st.load_cases(conn, where, limit=limit, offset=offset)

    def findings(
        self,
        *,
        process_id: str | None = None,
        step: str | None = None,
        code: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        """Structural findings matching all given filters, newest first.

        Each finding carries its case and its author; whoever passes findings on to working
        and project groups decides which of the two they may see (the HTTP API shows them
        neither author nor, to project groups, the case).

        Args:
            before_id: Only findings older than this one (the last id of the previous page).
            limit: Page size.
        """
        f = st.findings_t.c
        where = [
            column == value
            for column, value in ((f.process_id, process_id), (f.step, step), (f.code, code))
            if value is not None
        ]
        if before_id is not None:
            where.append(f.id < before_id)
        query = (
            sa.select(
                f.id,
                f.case_id,
                f.visit_id,
                f.process_id,
                f.process_version,
                f.step,
                f.agency,
                f.code,
                f.text,
                f.created_at,
                f.created_by,
            )
            .where(*where)
            .order_by(f.id.desc())
            .limit(limit)
        )
        with self.store.read() as conn:
            return [Finding(*row) for row in conn.execute(query)]

    def available_actions(self, case_id: int) -> list[ActionOption]:
        """The actions of the case's current step, each with whether and why not it can be fired now."""
        with self.store.read() as conn:
            case = st.load_case(conn, case_id)
            compiled = self._compiled(case.process_id, case.process_version, conn)
            step = compiled.definition.steps[case.step]
            needs_consents = any(a.handoff for a in step.actions.values())
            consents = st.load_consents(conn, case_id) if needs_consents else []
        options = []
        for action in step.actions.values():
            reasons = self._blockers(compiled, case, action, case.data, consents)
            if action.system_only:
                reasons = (
                    Reason("system-only", "Wird automatisch ausgelöst", "fired automatically only"),
                    *reasons,
                )
            options.append(
                ActionOption(
                    action.name,
                    action.title,
                    action.title_en,
                    action.next,
                    not reasons,
                    reasons,
                    tuple(dict.fromkeys(action.requires + action.records)),
                )
            )
        return options

    # ------------------------------------------------------------------ changing

    def open_case(
        self,
        process_id: str,
        *,
        actor: str,
        data: Mapping[str, Any] | None = None,
        version: int | None = None,
        assignee: str | None = None,
        team: str | None = None,
    ) -> Case:
        """Open a case on the newest (or the given) version of a process.

        ``team`` is the team the case belongs to for good (the HTTP API passes the opener's
        team and shows a caseworker only their team's cases); child cases the case starts
        later belong to the same team. It is stored with the case row in the opening
        transaction, so no moment exists in which the case is visible without its team.

        Raises:
            DefinitionNotFound: If the process is not deployed.
            InvalidCaseData: If ``data`` does not fit the process's fields.
        """
        compiled = self._compiled(process_id, version)
        with self.store.transaction() as conn:
            case_id = self._open(conn, compiled, actor=actor, data=dict(data or {}), assignee=assignee, team=team)
            return st.load_case(conn, case_id)

    def fire(
        self,
        case_id: int,
        action: str,
        *,
        actor: str,
        data: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> Case:
        """Fire an action of the current step, recording ``data`` with it.

        Raises:
            CaseNotFound, CaseClosed: No such case, or it has ended.
            ConcurrentUpdate: ``expected_version`` is stale, or someone changed the case meanwhile.
            ActionNotAllowed: The step has no such action, or only the system may fire it.
            ActionUnavailable: A condition fails, required data or a consent is missing, or the case is paused.
            InvalidCaseData: ``data`` does not fit the fields the action records.
        """
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            self._fire(conn, case, action, actor=actor, data=dict(data or {}), system=False)
            return case

    def record_consent(
        self,
        case_id: int,
        *,
        recipient: str,
        purpose: str,
        categories: Iterable[str],
        valid_until: str | None = None,
        actor: str,
        expected_version: int | None = None,
    ) -> Consent:
        """Record the client's consent to share data of ``categories`` with ``recipient`` (an agency code).

        Raises:
            InvalidCaseData: Unknown recipient or categories, no purpose, or a malformed ``valid_until``.
        """
        categories = tuple(categories)
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            definition = self._compiled(case.process_id, case.process_version, conn).definition
            problems = {}
            if recipient not in definition.agencies:
                problems["recipient"] = f"'{recipient}' is not an agency of {definition.ref}"
            if not purpose.strip():
                problems["purpose"] = "a consent needs a purpose"
            unknown = sorted(set(categories) - set(CATEGORY_LABELS))
            if unknown or not categories:
                problems["categories"] = (
                    f"unknown data categories {unknown}; use {', '.join(CATEGORY_LABELS)}"
                    if unknown
                    else "a consent names the data categories it covers (e.g. identity, residence, benefits)"
                )
            if valid_until is not None:
                try:
                    date.fromisoformat(valid_until)
                except ValueError:
                    problems["valid_until"] = f"'{valid_until}' is not a date YYYY-MM-DD"
            if problems:
                raise InvalidCaseData(case_id, problems)
            now = self.clock.now()
            values = {
                "case_id": case_id,
                "recipient": recipient,
                "purpose": purpose,
                "categories": sorted(set(categories)),
                "recorded_at": now,
                "recorded_by": actor,
                "valid_until": valid_until,
            }
            consent_id = st.insert_consent(conn, values)
            self._record(
                conn,
                case,
                actor=actor,
                kind="consent_recorded",
                now=now,
                detail={
                    "consent_id": consent_id,
                    "recipient": recipient,
                    "purpose": purpose,
                    "categories": values["categories"],
                    "valid_until": valid_until,
                },
            )
            return Consent(
                consent_id, case_id, recipient, purpose, tuple(values["categories"]), now, actor, valid_until
            )

    def revoke_consent(self, case_id: int, consent_id: int, *, actor: str, expected_version: int | None = None) -> Case:
        """Revoke a consent; handoffs it covered are unavailable from now on."""
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version, allow_ended=True)
            now = self.clock.now()
            if not st.revoke_consent(conn, consent_id, case_id, now, actor):
                raise ConsentNotFound(case_id, consent_id)
            self._record(conn, case, actor=actor, kind="consent_revoked", now=now, detail={"consent_id": consent_id})
            return case

    def pause(
        self,
        case_id: int,
        *,
        reason: str,
        actor: str,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Case:
        """Pause the case with a reason code (e.g. W-CLIENT: client in hospital); its deadline clock stops.

        Raises:
            InvalidCaseData: ``reason`` is not a code of the stall-cause taxonomy.
            ActionUnavailable: The case is already paused.
        """
        self._check_reason(case_id, reason)
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            if case.paused:
                raise ActionUnavailable(
                    case_id,
                    "pause",
                    (Reason("paused", "Der Fall ist bereits pausiert", "the case is already paused"),),
                )
            now = self.clock.now()
            values = self._retime(conn, case, now, paused=True, waiting_on=case.waiting_on, reason=reason)
            values.pop("_stopped_seconds", None)
            values.update(paused=True, pause_reason=reason)
            self._record(
                conn, case, actor=actor, kind="paused", now=now, values=values, detail={"reason": reason, "note": note}
            )
            return case

    def resume(self, case_id: int, *, actor: str, expected_version: int | None = None) -> Case:
        """Resume a paused case; the step's deadline moves later by the office days the clock stood still."""
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            if not case.paused:
                raise ActionUnavailable(
                    case_id,
                    "resume",
                    (Reason("not-paused", "Der Fall ist nicht pausiert", "the case is not paused"),),
                )
            now = self.clock.now()
            values = self._retime(conn, case, now, paused=False, waiting_on=case.waiting_on)
            values.update(paused=False, pause_reason=None)
            self._record(
                conn,
                case,
                actor=actor,
                kind="resumed",
                now=now,
                values=values,
                detail={"paused_seconds": values.pop("_stopped_seconds", 0)},
            )
            self._catch_up_with_ended_child(conn, case)
            return case

    def wait_on(
        self,
        case_id: int,
        party: str,
        *,
        reason: str,
        actor: str,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Case:
        """Record whom the case is waiting on now (an agency code, or KLIENT) and why (a reason code).

        Waiting on the client (``KLIENT``) stops the step's deadline clock only where the
        definition says so (``client_wait_stops_clock``); any other wait keeps it running,
        so the stall shows in the reports, attributed to the reason code.

        Raises:
            InvalidCaseData: ``party`` is not an agency of the process or ``reason`` is no known code.
        """
        self._check_reason(case_id, reason)
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            definition = self._compiled(case.process_id, case.process_version, conn).definition
            if party not in definition.agencies:
                raise InvalidCaseData(case_id, {"waiting_on": f"'{party}' is not an agency of {definition.ref}"})
            now = self.clock.now()
            values = self._retime(conn, case, now, paused=case.paused, waiting_on=party, reason=reason)
            values.pop("_stopped_seconds", None)
            values["waiting_on"] = party
            self._record(
                conn,
                case,
                actor=actor,
                kind="waiting",
                now=now,
                values=values,
                detail={"waiting_on": party, "previous": case.waiting_on, "reason": reason, "note": note},
            )
            return case

    def add_finding(self, case_id: int, *, code: str, text: str, actor: str, visit_id: int | None = None) -> int:
        """Attach a structural finding (reason code + short text without personal data) to a stalled visit.

        The visit is the case's current one unless ``visit_id`` names an earlier visit of the case.
        It must be stalled (open and past its deadline) or at risk, or closed late.

        Returns:
            The finding's id.

        Raises:
            InvalidCaseData: Unknown code, empty or overlong text, or a text quoting the case's data.
            FindingNotAllowed: The visit did not stall.
        """
        self._check_reason(case_id, code)
        clean = " ".join(text.split())
        with self.store.transaction() as conn:
            case = st.load_case(conn, case_id)
            problems = {}
            if not 5 <= len(clean) <= 500:
                problems["text"] = "a finding needs a text of 5 to 500 characters"
            # Findings go to working groups: refuse texts that quote this case's own data.
            definition = self._compiled(case.process_id, case.process_version, conn).definition
            free_text = {n for n, f in definition.fields.items() if f.type in ("string", "text")}
            quoted = [
                k
                for k, v in case.data.items()
                if k in free_text and isinstance(v, str) and len(v) >= 3 and v.lower() in clean.lower()
            ]
            if quoted:
                problems["text"] = (
                    f"the text quotes case data ({', '.join(sorted(quoted))}); describe the pattern instead"
                )
            if problems:
                raise InvalidCaseData(case_id, problems)
            target = visit_id if visit_id is not None else case.visit_id
            visit = next((v for v in st.load_visits(conn, case_id) if v.id == target), None)
            if visit is None:
                raise InvalidCaseData(case_id, {"visit_id": f"case {case_id} has no visit {target}"})
            now = self.clock.now()
            late = (
                visit.overran
                if visit.left_at is not None
                else (
                    (visit.due_at is not None and visit.due_at < now)
                    or (visit.warn_at is not None and visit.warn_at < now)
                )
            )
            if not late:
                raise FindingNotAllowed(case_id, visit.id)
            finding_id = st.insert_finding(
                conn,
                {
                    "visit_id": visit.id,
                    "case_id": case_id,
                    "process_id": case.process_id,
                    "process_version": case.process_version,
                    "step": visit.step,
                    "agency": visit.agency,
                    "code": code,
                    "text": clean,
                    "created_at": now,
                    "created_by": actor,
                },
            )
            return finding_id

    def assign(self, case_id: int, assignee: str | None, *, actor: str, expected_version: int | None = None) -> Case:
        """Make ``assignee`` responsible for the case (None: unassigned)."""
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            self._record(
                conn,
                case,
                actor=actor,
                kind="assigned",
                now=self.clock.now(),
                values={"assignee": assignee},
                detail={"assignee": assignee, "previous": case.assignee},
            )
            return case

    def close(
        self, case_id: int, *, outcome: str, reason: str, actor: str, expected_version: int | None = None
    ) -> Case:
        """End the case early with an outcome (e.g. the client moved away)."""
        return self._end(case_id, CLOSED, outcome, reason, actor, expected_version)

    def cancel(self, case_id: int, *, reason: str, actor: str, expected_version: int | None = None) -> Case:
        """Cancel a case opened in error."""
        return self._end(case_id, CANCELLED, "storniert", reason, actor, expected_version)

    def tick(self, *, limit: int = 1000) -> TickResult:
        """Fire every timer that is due now, once; safe to run from several processes at once.

        Each timer is claimed and fired in its own transaction. On PostgreSQL due
        timers are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent tickers
        take different timers; on SQLite transactions are serialised anyway.
        A timer whose action is unavailable (e.g. its condition fails) is marked
        fired without effect and reported as skipped.
        """
        fired = skipped = 0
        t = st.timers_t
        for _ in range(limit):
            now = self.clock.now()
            with self.store.transaction() as conn:
                query = (
                    sa.select(t.c.id, t.c.case_id, t.c.action, t.c.step)
                    .where(t.c.fired_at.is_(None), t.c.cancelled_at.is_(None), t.c.due_at <= now)
                    .order_by(t.c.due_at, t.c.id)
                    .limit(1)
                )
                if self.store.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                row = conn.execute(query).first()
                if row is None:
                    break
                conn.execute(sa.update(t).where(t.c.id == row.id).values(fired_at=now))
                # Another ticker may be firing a different timer of the same case: wait for it
                # (row lock) instead of failing on the case's version afterwards.
                st.lock_case(conn, row.case_id)
                case = st.load_case(conn, row.case_id)
                if not case.is_open or case.step != row.step:
                    skipped += 1
                    continue
                try:
                    with conn.begin_nested():
                        self._fire(
                            conn,
                            case,
                            row.action,
                            actor=SYSTEM_ACTOR,
                            data={},
                            system=True,
                            detail={"timer_id": row.id},
                        )
                    fired += 1
                except (ActionUnavailable, ActionNotAllowed):
                    skipped += 1
        return TickResult(fired, skipped)

    # ------------------------------------------------------------------ internals

    def _load_for_change(
        self, conn: sa.Connection, case_id: int, expected_version: int | None, *, allow_ended: bool = False
    ) -> Case:
        case = st.load_case(conn, case_id)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrentUpdate(case_id, expected_version, case.version)
        if not allow_ended and not case.is_open:
            raise CaseClosed(case_id, case.status)
        return case

    def _check_data(
        self,
        definition: ProcessDefinition,
        case_id: int,
        data: Mapping[str, Any],
        allowed: Iterable[str] | None,
    ) -> None:
        problems: dict[str, str] = {}
        permitted = set(allowed) if allowed is not None else None
        for name, value in data.items():
            spec = definition.fields.get(name)
            if spec is None:
                problems[name] = f"unknown field for {definition.ref}"
            elif permitted is not None and name not in permitted:
                problems[name] = "this action does not record this field"
            else:
                problem = spec.check(value)
                if problem:
                    problems[name] = problem
        if problems:
            raise InvalidCaseData(case_id, problems)

    def _blockers(
        self,
        compiled: CompiledProcess,
        case: Case,
        action: ActionDef,
        data: Mapping[str, Any],
        consents: list[Consent],
    ) -> tuple[Reason, ...]:
        definition = compiled.definition
        reasons: list[Reason] = []
        if case.paused:
            reasons.append(
                Reason(
                    "paused",
                    f"Der Fall ist pausiert ({case.pause_reason})",
                    f"the case is paused ({case.pause_reason})",
                )
            )
        missing = tuple(name for name in action.requires if data.get(name) in (None, ""))
        if missing:
            labels = ", ".join(definition.fields[m].label for m in missing)
            labels_en = ", ".join(definition.fields[m].label_en or definition.fields[m].label for m in missing)
            reasons.append(Reason("missing-data", f"Es fehlt: {labels}", f"missing: {labels_en}", fields=missing))
        handoff = action.handoff
        if handoff is not None and handoff.consent_required:
            today = self.clock.now().astimezone(_BERLIN).date().isoformat()
            valid = [c for c in consents if c.covers(handoff.to_agency, today)]
            name = definition.agencies.get(handoff.to_agency, handoff.to_agency)
            if not valid:
                reasons.append(
                    Reason(
                        "missing-consent",
                        f"Es fehlt: Einwilligung gegenüber {name}",
                        f"missing: consent covering {handoff.to_agency}",
                        agency=handoff.to_agency,
                    )
                )
            elif all(c.missing_categories(handoff.categories) for c in valid):
                # A consent names the data categories it covers; the handoff needs all of them.
                missing = min((c.missing_categories(handoff.categories) for c in valid), key=len)
                labels = ", ".join(CATEGORY_LABELS[m][0] for m in missing)
                labels_en = ", ".join(CATEGORY_LABELS[m][1] for m in missing)
                reasons.append(
                    Reason(
                        "missing-consent",
                        f"Die Einwilligung gegenüber {name} deckt nicht ab: {labels}",
                        f"the consent covering {handoff.to_agency} does not cover: {labels_en}",
                        fields=missing,
                        agency=handoff.to_agency,
                    )
                )
        if not compiled.condition_holds(case.step, action.name, dict(data)):
            reasons.append(compiled.condition_reason(case.step, action.name, dict(data)))
        return tuple(reasons)

    def _open(
        self,
        conn: sa.Connection,
        compiled: CompiledProcess,
        *,
        actor: str,
        data: dict[str, Any],
        assignee: str | None,
        team: str | None = None,
        parent_id: int | None = None,
        child_name: str | None = None,
    ) -> int:
        definition = compiled.definition
        self._check_data(definition, 0, data, None)
        now = self.clock.now()
        start = definition.steps[definition.start]
        case_id = self.store.insert_case(
            conn,
            {
                "process_id": definition.id,
                "process_version": definition.version,
                "step": start.id,
                "status": OPEN,
                "version": 1,
                "data": data,
                "assignee": assignee,
                "waiting_on": start.waiting_on,
                "opened_at": now,
                "updated_at": now,
                "parent_id": parent_id,
                "child_name": child_name,
                "team": team,
            },
        )
        visit_id, due_at = self._enter(conn, definition, case_id, start, data, now)
        conn.execute(
            sa.update(st.cases_t)
            .where(st.cases_t.c.id == case_id)
            .values(visit_id=visit_id, due_at=due_at, step_entered_at=now)
        )
        st.insert_event(
            conn,
            {
                "case_id": case_id,
                "seq": 1,
                "at": now,
                "actor": actor,
                "kind": "opened",
                "action": None,
                "from_step": None,
                "to_step": start.id,
                "changes": {k: [None, v] for k, v in data.items()},
                "detail": {
                    "process": definition.ref,
                    "assignee": assignee,
                    "team": team,
                    "parent_id": parent_id,
                    "child_name": child_name,
                },
            },
        )
        return case_id

    def _enter(
        self,
        conn: sa.Connection,
        definition: ProcessDefinition,
        case_id: int,
        step: StepDef,
        data: Mapping[str, Any],
        now: datetime,
        handoff_from: str | None = None,
    ) -> tuple[int | None, datetime | None]:
        """Insert the visit (with its deadline) and arm the step's timers; returns (visit id, due_at)."""
        calendar = definition.calendar
        due_at = calendar.due_at(now, step.expected) if step.expected else None
        warn_at = calendar.due_at(now, step.warn_after) if step.warn_after else None
        visit_id = st.insert_visit(
            conn,
            {
                "case_id": case_id,
                "process_id": definition.id,
                "process_version": definition.version,
                "step": step.id,
                "agency": step.agency,
                "waiting_on": step.waiting_on,
                "entered_at": now,
                "left_at": now if step.final else None,
                "due_at": due_at,
                "warn_at": warn_at,
                "handoff_from": handoff_from,
            },
        )
        if step.timers:
            rows = []
            for timer in step.timers:
                fire_at = self._timer_due(definition, timer.after, timer.before, timer.field, data, now)
                if fire_at is not None:
                    rows.append(
                        {
                            "case_id": case_id,
                            "visit_id": visit_id,
                            "step": step.id,
                            "action": timer.action,
                            "due_at": fire_at,
                        }
                    )
            st.insert_timers(conn, rows)
        return visit_id, due_at

    @staticmethod
    def _timer_due(
        definition: ProcessDefinition,
        after: Any,
        before: Any,
        field: str | None,
        data: Mapping[str, Any],
        now: datetime,
    ) -> datetime | None:
        calendar = definition.calendar
        if field is None:
            return calendar.due_at(now, after)
        raw = data.get(field)
        if not raw:
            return None  # nothing to count from yet; the timer is armed when the step is entered with the date
        anchor = date.fromisoformat(raw)
        day = calendar.before(anchor, before) if before is not None else calendar.due_date(anchor, after)
        return datetime.combine(day, time(), tzinfo=_BERLIN).astimezone(UTC)

    def _check_reason(self, case_id: int, code: str) -> None:
        problem = self.taxonomy.check(code)
        if problem:
            raise InvalidCaseData(case_id, {"reason": problem})

    def _clock_stopped(self, conn: sa.Connection, case: Case, *, paused: bool, waiting_on: str | None) -> bool:
        """The one rule for the deadline clock: it stands still while the case is paused, or while it
        has been marked as waiting on the client in a step whose definition says that such waiting
        stops the clock. A step that waits on the client by design keeps its clock running: its
        deadline is the client's, and a caseworker should see when the client is late."""
        if paused:
            return True
        if waiting_on != CLIENT:
            return False
        step = self._compiled(case.process_id, case.process_version, conn).definition.steps[case.step]
        return step.client_wait_stops_clock and step.waiting_on != CLIENT

    def _retime(
        self,
        conn: sa.Connection,
        case: Case,
        now: datetime,
        *,
        paused: bool,
        waiting_on: str | None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Apply a change of pause/waiting state to the open visit's clock; returns case column updates.

        When the clock starts again, the visit's deadline (and warning) move later by the time
        it stood still, and that time is added to ``paused_seconds``.
        """
        values: dict[str, Any] = {}
        if case.visit_id is None:
            return values
        was = self._clock_stopped(conn, case, paused=case.paused, waiting_on=case.waiting_on)
        now_stopped = self._clock_stopped(conn, case, paused=paused, waiting_on=waiting_on)
        visit_values: dict[str, Any] = {"waiting_on": waiting_on}
        if reason is not None:
            visit_values["reason_code"] = reason
        if not was and now_stopped:
            visit_values["paused_since"] = now
        elif was and not now_stopped:
            visit = st.load_visit(conn, case.visit_id)
            since = visit.paused_since or now
            stopped = int((now - since).total_seconds())
            calendar = self._compiled(case.process_id, case.process_version, conn).definition.calendar
            visit_values.update(paused_since=None, paused_seconds=visit.paused_seconds + stopped)
            if visit.due_at is not None:
                visit_values["due_at"] = values["due_at"] = calendar.extend_deadline(visit.due_at, since, now)
            if visit.warn_at is not None:
                visit_values["warn_at"] = calendar.extend_deadline(visit.warn_at, since, now)
            values["_stopped_seconds"] = stopped
        st.update_visit(conn, case.visit_id, visit_values)
        return values

    def _leave(self, conn: sa.Connection, case: Case, step: StepDef, now: datetime) -> None:
        if case.visit_id is None:
            return
        calendar = self._compiled(case.process_id, case.process_version, conn).definition.calendar
        office_days = calendar.office_days_between(case.step_entered_at, now) if case.step_entered_at else 0
        overran = excess = None
        if case.due_at is not None:
            overran = now > case.due_at
            # due_at is the end of the due day; count from inside that day so that leaving on
            # the next office day is one day of excess.
            excess = calendar.office_days_between(case.due_at - timedelta(seconds=1), now) if overran else 0
        st.close_visit(conn, case.visit_id, now, overran, office_days, excess)
        if step.timers:
            st.cancel_timers(conn, case.visit_id, now)

    def _fire(
        self,
        conn: sa.Connection,
        case: Case,
        action_name: str,
        *,
        actor: str,
        data: dict[str, Any],
        system: bool,
        detail: dict[str, Any] | None = None,
    ) -> None:
        compiled = self._compiled(case.process_id, case.process_version, conn)
        definition = compiled.definition
        step = definition.steps[case.step]
        action = step.actions.get(action_name)
        if action is None:
            raise ActionNotAllowed(case.id, action_name, case.step, tuple(step.actions))
        if action.system_only and not system:
            raise ActionNotAllowed(
                case.id,
                action_name,
                case.step,
                tuple(step.actions),
                f"action '{action_name}' is fired automatically and cannot be fired by a person",
            )
        self._check_data(definition, case.id, data, action.records + action.requires)
        merged = {**case.data, **data}
        consents = st.load_consents(conn, case.id) if action.handoff is not None else []
        reasons = self._blockers(compiled, case, action, merged, consents)
        if reasons:
            raise ActionUnavailable(case.id, action_name, reasons)
        old_step = case.step
        old_data = case.data
        case.data = merged
        new_step_id = compiled.fire(case, action_name)  # the state machine moves case.step
        now = self.clock.now()
        values: dict[str, Any] = {"data": merged}
        event_detail: dict[str, Any] = dict(detail or {})
        if action.next is not None:
            new_step = definition.steps[new_step_id]
            self._leave(conn, case, step, now)
            handoff_from = action.handoff.from_agency if action.handoff is not None else None
            visit_id, due_at = self._enter(conn, definition, case.id, new_step, merged, now, handoff_from)
            values.update(
                step=new_step_id,
                visit_id=visit_id,
                due_at=due_at,
                waiting_on=new_step.waiting_on,
                step_entered_at=now,
            )
            # The event says which visit began (a self-loop is a new visit) and, at a final
            # step, how the case ended, so the history alone rebuilds case and visits.
            event_detail["visit_id"] = visit_id
            if new_step.final:
                values.update(status=COMPLETED, outcome=new_step.outcome, closed_at=now)
                event_detail.update(status=COMPLETED, outcome=new_step.outcome)
        if action.handoff is not None:
            event_detail["handoff"] = {
                "from": action.handoff.from_agency,
                "to": action.handoff.to_agency,
                "shares": list(action.handoff.shares),
            }
        if action.start_child is not None:
            child = action.start_child
            child_compiled = self.registry.latest(child.process, conn)
            child_data = {name: merged[name] for name in child.copy if merged.get(name) is not None}
            child_id = self._open(
                conn,
                child_compiled,
                actor=actor,
                data=child_data,
                assignee=case.assignee,
                team=case.team,
                parent_id=case.id,
                child_name=child.name,
            )
            event_detail["child"] = {
                "name": child.name,
                "case_id": child_id,
                "process": child_compiled.definition.ref,
            }
        changes = {k: [old_data.get(k), v] for k, v in merged.items() if k not in old_data or old_data[k] != v}
        self._record(
            conn,
            case,
            actor=actor,
            kind="fired",
            now=now,
            values=values,
            action=action_name,
            from_step=old_step,
            to_step=new_step_id,
            changes=changes,
            detail=event_detail,
        )
        if values.get("status") == COMPLETED and case.parent_id is not None:
            self._notify_parent(conn, case)

    def _notify_parent(self, conn: sa.Connection, child: Case) -> None:
        """A child case ended: fire the parent's ``on_child_done`` action if the parent waits for it.

        The parent's action runs in a savepoint: if the parent cannot move now (e.g. it is
        paused), the child still ends, and the parent moves when it is resumed.
        """
        parent = st.load_case(conn, child.parent_id)  # type: ignore[arg-type]
        self._advance_waiting_parent(conn, parent, child)

    def _advance_waiting_parent(self, conn: sa.Connection, parent: Case, child: Case) -> None:
        if not parent.is_open:
            return
        step = self._compiled(parent.process_id, parent.process_version, conn).definition.steps[parent.step]
        if step.wait_for_child != child.child_name or not step.on_child_done:
            return
        try:
            with conn.begin_nested():
                self._fire(
                    conn,
                    parent,
                    step.on_child_done,
                    actor=SYSTEM_ACTOR,
                    data={},
                    system=True,
                    detail={"child_case_id": child.id, "child_outcome": child.outcome, "child_status": child.status},
                )
        except (ActionUnavailable, ActionNotAllowed):
            # The savepoint rolled the parent back; restore the in-memory copy from the database.
            fresh = st.load_case(conn, parent.id)
            for name in fresh.__slots__:
                setattr(parent, name, getattr(fresh, name))

    def _catch_up_with_ended_child(self, conn: sa.Connection, case: Case) -> None:
        """After a resume: if the step waits for a child that ended meanwhile, move on now."""
        step = self._compiled(case.process_id, case.process_version, conn).definition.steps[case.step]
        if not step.wait_for_child:
            return
        children = st.load_cases(
            conn, [st.cases_t.c.parent_id == case.id, st.cases_t.c.child_name == step.wait_for_child], limit=1000
        )
        ended = [c for c in children if not c.is_open]
        if ended:
            self._advance_waiting_parent(conn, case, ended[-1])

    def _end(
        self, case_id: int, status: str, outcome: str, reason: str, actor: str, expected_version: int | None
    ) -> Case:
        with self.store.transaction() as conn:
            case = self._load_for_change(conn, case_id, expected_version)
            definition = self._compiled(case.process_id, case.process_version, conn).definition
            now = self.clock.now()
            self._leave(conn, case, definition.steps[case.step], now)
            self._record(
                conn,
                case,
                actor=actor,
                kind=status,
                now=now,
                values={"status": status, "outcome": outcome, "closed_at": now, "paused": False},
                detail={"reason": reason, "outcome": outcome},
            )
            if case.parent_id is not None:
                self._notify_parent(conn, case)
            return case

    def _record(
        self,
        conn: sa.Connection,
        case: Case,
        *,
        actor: str,
        kind: str,
        now: datetime,
        values: dict[str, Any] | None = None,
        action: str | None = None,
        from_step: str | None = None,
        to_step: str | None = None,
        changes: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Write the case row (version-checked) and append the event; updates ``case`` in place."""
        expected = case.version
        for key, value in (values or {}).items():
            setattr(case, key, value)
        case.version = expected + 1
        case.updated_at = now
        st.update_case(conn, case, expected)
        st.insert_event(
            conn,
            {
                "case_id": case.id,
                "seq": expected + 1,
                "at": now,
                "actor": actor,
                "kind": kind,
                "action": action,
                "from_step": from_step if to_step is not None else case.step,
                "to_step": to_step or case.step,
                "changes": changes or {},
                "detail": detail or {},
            },
        )


__all__ = ["CLIENT", "SYSTEM_ACTOR", "Engine", "TickResult"]
