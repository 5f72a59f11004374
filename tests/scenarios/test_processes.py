"""Every shipped process walked by a realistic case, from the start to a final step (issue #2 §5).

Each test deploys ``processes/``, opens a case as a caseworker would, moves the clock between
the steps and asserts what the caseworker notices: the step after each action, the German
reasons why a button is greyed out, the deadlines (``due_at``), overruns, the timers that
``tick()`` fires, handoffs with and without a sufficient consent, and child cases. After
every operation the case is read again through a fresh ``Engine`` on the same database and
must equal the in-memory result; at the end the history alone must replay to the stored case.

All deadlines below are computed by hand with the NRW calendar, never with the engine:

* A deadline runs to the end of its last day in Berlin: 23:00Z in winter time (CET) and
  22:00Z in summer time (CEST: 2026-03-29 to 2026-10-25, 2027-03-28 to 2027-10-31,
  2028-03-26 to 2028-10-29). A timer relative to a date field fires at the *start* of its
  day in Berlin (a "before" day rolls back, an "after" day forward, to an office day).
* NRW holidays on office days: 2026 New Year 01-01, Good Friday 04-03, Easter Monday 04-06,
  Labour Day 05-01, Ascension 05-14, Whit Monday 05-25, Corpus Christi 06-04, Christmas
  12-25; 2027 New Year 01-01, Good Friday 03-26, Easter Monday 03-29, Ascension 05-06,
  Whit Monday 05-17, Corpus Christi 05-27, All Saints 11-01; 2028 Labour Day 05-01.
* "N Arbeitstage" counts office days after the day of entry; weeks and months land on a
  calendar day that rolls forward to the next office day (BGB §§ 187, 188, 193).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine import (
    ActionNotAllowed,
    ActionOption,
    ActionUnavailable,
    Case,
    CaseEvent,
    Consent,
    Engine,
    FixedClock,
    StepVisit,
    rebuild_visits,
    replay,
)

ROOT = Path(__file__).resolve().parents[2]
BERLIN = ZoneInfo("Europe/Berlin")
DAY = 24 * 3600  # seconds

KO = "ko.schneider"  # KIM-Koordination
CM = "cm.yilmaz"  # KIM-Case Management
JC = "jc.brandt"  # Integrationsfachkraft im Jobcenter
ABH = "abh.krueger"  # Sachbearbeitung in der Ausländerbehörde

#: One move of a walk: (Berlin wall-clock time, action, data entered with it, step afterwards).
Move = tuple[str, str, Mapping[str, Any] | None, str]


def berlin(wall_clock: str) -> datetime:
    """A Berlin wall-clock time such as ``"2026-03-10 09:30"`` as the UTC instant the engine uses."""
    return datetime.fromisoformat(wall_clock).replace(tzinfo=BERLIN).astimezone(UTC)


def utc(text: str) -> datetime:
    """An instant written in UTC, e.g. ``"2026-03-16 23:00"``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Desk:
    """A caseworker's desk: engine operations, each checked by a round trip through a fresh engine."""

    def __init__(self, engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock) -> None:
        self.engine = engine
        self.clock = clock
        self._cases: set[int] = set()
        # The fresh engines of the round trips share one connection pool of their own (a new
        # PostgreSQL connection per operation would dominate the run time); an Engine keeps no
        # case state in memory, so each one still reads everything from the database.
        self._reader = engine_factory().store

    # ------------------------------------------------------------------ time

    def on(self, wall_clock: str) -> None:
        """Move the clock to a Berlin wall-clock time (never backwards)."""
        self.at(berlin(wall_clock))

    def at(self, instant: datetime) -> None:
        assert instant >= self.clock.now(), f"a scenario does not go back in time ({instant} < {self.clock.now()})"
        self.clock.set(instant)

    # ------------------------------------------------------------------ operations

    def open(
        self, process_id: str, data: Mapping[str, Any] | None = None, *, actor: str = CM, assignee: str = CM
    ) -> Case:
        case = self.engine.open_case(process_id, actor=actor, data=data, assignee=assignee)
        self.round_trip(case)
        return case

    def fire(self, case: Case, action: str, data: Mapping[str, Any] | None = None, *, actor: str = CM) -> Case:
        result = self.engine.fire(case.id, action, actor=actor, data=data)
        self.round_trip(result)
        return result

    def walk(self, case: Case, moves: Sequence[Move], *, actor: str = CM) -> Case:
        """Fire the moves one after another, each at its time, checking the step after each."""
        for when, action, data, step in moves:
            self.on(when)
            case = self.fire(case, action, data, actor=actor)
            assert case.step == step, f"'{action}' led to '{case.step}', expected '{step}'"
        return case

    def consent(
        self, case: Case, recipient: str, categories: Sequence[str], purpose: str, *, valid_until: str | None = None
    ) -> Consent:
        consent = self.engine.record_consent(
            case.id,
            recipient=recipient,
            purpose=purpose,
            categories=categories,
            valid_until=valid_until,
            actor=CM,
        )
        self.round_trip()
        return consent

    def revoke(self, case: Case, consent: Consent) -> Case:
        result = self.engine.revoke_consent(case.id, consent.id, actor=CM)
        self.round_trip(result)
        return result

    def pause(self, case: Case, reason: str, note: str) -> Case:
        result = self.engine.pause(case.id, reason=reason, note=note, actor=CM)
        self.round_trip(result)
        return result

    def resume(self, case: Case) -> Case:
        result = self.engine.resume(case.id, actor=CM)
        self.round_trip(result)
        return result

    def wait_on(self, case: Case, party: str, reason: str, note: str) -> Case:
        result = self.engine.wait_on(case.id, party, reason=reason, note=note, actor=CM)
        self.round_trip(result)
        return result

    def tick_at(self, instant: datetime) -> int:
        """Run the timers at ``instant``; returns how many fired (none may be skipped in these scenarios)."""
        self.at(instant)
        result = self.engine.tick()
        assert result.skipped == 0
        self.round_trip()
        return result.fired

    # ------------------------------------------------------------------ reading

    def case(self, case: Case) -> Case:
        return self.engine.get_case(case.id)

    def children(self, case: Case) -> list[Case]:
        children = self.engine.children(case.id)
        self._cases.update(child.id for child in children)
        return children

    def options(self, case: Case) -> dict[str, ActionOption]:
        """The buttons of the case's step."""
        return {option.name: option for option in self.engine.available_actions(case.id)}

    def available(self, case: Case) -> set[str]:
        return {name for name, option in self.options(case).items() if option.available}

    def why_not(self, case: Case, action: str) -> list[str]:
        """The German reasons shown on a greyed-out button."""
        option = self.options(case)[action]
        assert not option.available
        return [reason.message for reason in option.reasons]

    def refused(self, case: Case, action: str, data: Mapping[str, Any] | None = None) -> list[str]:
        """Fire an unavailable action; returns the German reasons and checks that nothing changed."""
        before = self.engine.get_case(case.id)
        with pytest.raises(ActionUnavailable) as refusal:
            self.engine.fire(case.id, action, actor=CM, data=data)
        assert self.engine.get_case(case.id) == before
        return [reason.message for reason in refusal.value.reasons]

    def visits(self, case: Case, step: str) -> list[StepVisit]:
        return [visit for visit in self.engine.visits(case.id) if visit.step == step]

    def history(self, case: Case) -> list[CaseEvent]:
        return self.engine.history(case.id)

    def system_actions(self, case: Case) -> list[str]:
        """The actions fired automatically (timers, child cases), oldest first."""
        return [event.action for event in self.history(case) if event.actor == "system" and event.action]

    # ------------------------------------------------------------------ checks

    def round_trip(self, case: Case | None = None) -> None:
        """A fresh engine on the same database reads the in-memory result, and every case seen so far, alike."""
        if case is not None:
            self._cases.add(case.id)
        fresh = Engine(store=self._reader, clock=self.clock)
        if case is not None:
            assert fresh.get_case(case.id) == case
        for case_id in sorted(self._cases):
            assert fresh.get_case(case_id) == self.engine.get_case(case_id)

    def assert_history_replays(self, case: Case) -> None:
        """The events alone rebuild the stored case and its step visits."""
        stored = self.engine.get_case(case.id)
        events = self.engine.history(case.id)
        replayed = replay(events)
        assert (replayed.step, replayed.status, replayed.data, replayed.outcome, replayed.version) == (
            stored.step,
            stored.status,
            stored.data,
            stored.outcome,
            stored.version,
        )
        definition = self.engine.process(stored.process_id, stored.process_version)
        finals = {step.id: step.outcome for step in definition.steps.values() if step.final}
        assert rebuild_visits(events, final_steps=finals) == [
            (visit.step, visit.entered_at, visit.left_at) for visit in self.engine.visits(case.id)
        ]


@pytest.fixture
def desk(engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock) -> Desk:
    """The shipped processes deployed; the clock stands at Monday 2026-03-02 09:00 Berlin."""
    engine.deploy([ROOT / "processes"], actor=KO)
    return Desk(engine, engine_factory, clock)


def handoff_of(event: CaseEvent) -> dict[str, Any]:
    return event.detail["handoff"]


# ====================================================================== chancen_uebergang


def test_a_25b_transition_goes_on_once_the_jobcenter_cooperation_plan_stands_and_ends_with_the_25b_permit(
    desk: Desk,
) -> None:
    # A father of two, § 104c permit from 3 Nov 2025 to 2 May 2027 (a Sunday).
    case = desk.open(
        "chancen_uebergang",
        {"permit_granted": "2025-11-03", "permit_expires": "2027-05-02", "birth_year": 1988},
    )
    assert case.step == "zielpfad_festlegen"
    assert case.due_at == utc("2026-03-30 22:00")  # 20 Arbeitstage from Mon 03-02; summer time from 03-29
    assert desk.why_not(case, "zielpfad_festgelegt") == [
        "Es fehlt: Zielpfad, Schulpflichtige Kinder im Haushalt (Anzahl)"
    ]

    case = desk.walk(
        case,
        [
            (
                "2026-03-10 10:00",
                "zielpfad_festgelegt",
                {"zielpfad": "25b", "schulpflichtige_kinder": 2},
                "identitaet_klaeren",
            ),
        ],
    )
    assert case.due_at == utc("2026-09-10 22:00")  # 6 Monate from 03-10
    assert desk.why_not(case, "weiter_schulnachweis") == [
        "Es fehlt: Identitätsnachweis",
        "Bedingung nicht erfüllt: Zielpfad ist „§ 25a AufenthG (gut integrierte Jugendliche und junge Volljährige)“",
    ]

    case = desk.walk(
        case,
        [
            ("2026-05-04 11:00", "weiter_sprachnachweis", {"identitaet_nachweis": "pass"}, "sprachnachweis_a2"),
            ("2026-06-15 09:30", "a2_nachgewiesen", {"sprachniveau": "a2"}, "leben_in_deutschland"),
        ],
    )
    # The knowledge is proven only by a passed test: the result is required, and it must be "ja".
    assert desk.why_not(case, "lid_nachgewiesen") == [
        "Es fehlt: Test „Leben in Deutschland“ bestanden",
        "Bedingung nicht erfüllt: Test „Leben in Deutschland“ bestanden ist ja",
    ]
    desk.on("2026-07-06 14:00")
    assert desk.refused(case, "lid_nachgewiesen", {"lid_bestanden": False}) == [
        "Bedingung nicht erfüllt: Test „Leben in Deutschland“ bestanden ist ja"
    ]
    case = desk.walk(
        case, [("2026-07-06 14:05", "lid_nachgewiesen", {"lid_bestanden": True}, "lebensunterhalt_pruefen")]
    )
    assert case.due_at == utc("2026-08-03 22:00")  # 4 Wochen from 07-06
    assert desk.visits(case, "sprachnachweis_a2")[0].due_at == utc("2026-11-04 23:00")  # 6 Monate from 05-04, winter

    # Livelihood not secured: record first, then only the Jobcenter branch is open.
    desk.on("2026-07-08 10:00")
    case = desk.fire(case, "lebensunterhalt_erfassen", {"lebensunterhalt": "nicht_gesichert"})
    assert case.step == "lebensunterhalt_pruefen"
    assert {"lebensunterhalt_erfassen", "jobcenter_einschalten", "antrag_vorziehen"} == desk.available(case)
    assert desk.why_not(case, "weiter_zum_antrag") == [
        "Bedingung nicht erfüllt: Lebensunterhalt ist „Vollständig gesichert“ oder „Überwiegend gesichert“"
        " oder „Sicherung zu erwarten (Prognose, z. B. Arbeitsaufnahme laut Kooperationsplan des Jobcenters)“"
        " oder „Ausnahme nach § 25b Abs. 3 (Krankheit, Behinderung, Alter)“"
        " und Schulpflichtige Kinder im Haushalt (Anzahl) ist 0"
    ]
    case = desk.fire(case, "jobcenter_einschalten")
    assert (case.step, case.waiting_on) == ("jobcenter_begleitung", "JC")
    # The parent waits for the first meeting and the cooperation plan, not for the whole referral:
    # 4 Monate from 07-08 = Sun 11-08, rolled to Monday; at risk after 2 Monate (Tue 09-08).
    assert case.due_at == utc("2026-11-09 23:00")
    assert desk.visits(case, "jobcenter_begleitung")[0].warn_at == utc("2026-09-08 22:00")
    (child,) = desk.children(case)
    assert (child.process_id, child.child_name, child.parent_id, child.assignee) == (
        "jobcenter_ueberleitung",
        "jobcenter",
        case.id,
        CM,
    )
    assert child.data == {"permit_expires": "2027-05-02", "sprachniveau": "a2"}
    assert desk.history(case)[-1].detail["child"] == {
        "name": "jobcenter",
        "case_id": child.id,
        "process": "jobcenter_ueberleitung@1",
    }

    # The child is a case of its own: the parent's consents do not cover it.
    child = desk.walk(
        child,
        [
            (
                "2026-07-09 09:00",
                "rechtskreis_erfassen",
                {"aufenthaltsstatus": "ae_104c", "rechtskreis": "sgb2"},
                "zustaendigkeit_klaeren",
            ),
            ("2026-07-09 09:05", "jobcenter_zustaendig", None, "einwilligung_einholen"),
        ],
    )
    desk.on("2026-07-13 10:00")
    desk.consent(child, "JC", ["identity", "residence", "education", "family"], "Warme Übergabe an das Jobcenter")
    child = desk.walk(
        child,
        [
            ("2026-07-13 10:10", "einwilligung_dokumentiert", None, "antrag_buergergeld"),
            ("2026-07-20 11:00", "antrag_gestellt", {"antrag_datum": "2026-07-20"}, "warme_uebergabe"),
            (
                "2026-07-27 14:00",
                "uebergabe_bestaetigt",
                {"jc_kundennummer": "36201BG0047110", "jc_team": "Team 21 – U25/Neuzugewanderte"},
                "erstgespraech",
            ),
        ],
    )
    child = desk.walk(
        child,
        [
            ("2026-08-24 10:00", "erstgespraech_gefuehrt", None, "kooperationsplan"),
            ("2026-09-07 10:00", "kooperationsplan_vereinbart", None, "sprachfoerderung"),
        ],
        actor=JC,
    )

    # The cooperation plan stands: the case manager moves the parent on by hand; the child runs on.
    desk.on("2026-09-08 09:00")
    assert desk.available(case) == {"kooperationsplan_steht", "lebensunterhalt_neu_pruefen", "antrag_vorziehen"}
    assert desk.why_not(case, "jobcenter_abgeschlossen") == ["Wird automatisch ausgelöst"]
    case = desk.walk(case, [("2026-09-08 10:00", "kooperationsplan_steht", None, "lebensunterhalt_pruefen")])
    (accompanied,) = desk.visits(case, "jobcenter_begleitung")
    assert accompanied.overran is False
    assert case.due_at == utc("2026-10-06 22:00")  # 4 Wochen from 09-08
    assert (desk.case(child).step, desk.case(child).status) == ("sprachfoerderung", "open")

    # The plan foresees a job from October: livelihood is expected to be secured (§ 25b Abs. 1 S. 2 Nr. 3).
    case = desk.walk(
        case,
        [
            (
                "2026-09-08 10:05",
                "lebensunterhalt_erfassen",
                {"lebensunterhalt": "zu_erwarten"},
                "lebensunterhalt_pruefen",
            ),
            ("2026-09-08 10:10", "weiter_zum_schulnachweis", None, "schulbesuch_kinder"),
        ],
    )
    assert case.due_at == utc("2026-09-22 22:00")  # 2 Wochen from 09-08
    case = desk.walk(case, [("2026-09-21 09:00", "schulbescheinigungen_liegen_vor", None, "antrag_stellen")])
    assert case.due_at == utc("2026-10-19 22:00")  # 20 Arbeitstage from 09-21 (03 Oct is a Saturday)
    child = desk.walk(child, [("2026-09-21 10:00", "sprachfoerderung_veranlasst", None, "qualifizierung")], actor=JC)

    # Filing hands data to the ABH: no consent, then a consent without residence data, then the right one.
    desk.on("2026-10-12 09:00")
    filing = {"antrag_datum": "2026-10-12"}
    assert desk.refused(case, "antrag_gestellt", filing) == ["Es fehlt: Einwilligung gegenüber Ausländerbehörde"]
    desk.consent(case, "ABH", ["identity"], "Antrag § 25b bei der Ausländerbehörde")
    assert desk.refused(case, "antrag_gestellt", filing) == [
        "Die Einwilligung gegenüber Ausländerbehörde deckt nicht ab: Aufenthaltsstatus"
    ]
    desk.consent(case, "ABH", ["residence"], "Antrag § 25b bei der Ausländerbehörde")
    case = desk.fire(case, "antrag_gestellt", filing)
    assert case.step == "fiktionsbescheinigung"
    assert handoff_of(desk.history(case)[-1]) == {
        "from": "KIM-CM",
        "to": "ABH",
        "shares": ["zielpfad", "permit_expires", "antrag_datum"],
    }
    assert case.due_at == utc("2026-10-26 23:00")  # 10 Arbeitstage from 10-12, winter time from 10-25

    # The certificate's validity is required: without it the extension reminder could never be armed.
    assert desk.why_not(case, "fiktion_erhalten") == ["Es fehlt: Fiktionsbescheinigung gültig bis"]
    case = desk.walk(
        case, [("2026-10-19 10:00", "fiktion_erhalten", {"fiktion_bis": "2027-01-18"}, "entscheidung")], actor=ABH
    )
    assert case.due_at == utc("2027-01-19 23:00")  # 3 Monate from 10-19
    assert desk.why_not(case, "erteilt_25a") == [
        "Es fehlt: Entscheidung der ABH am",
        "Bedingung nicht erfüllt: Zielpfad ist „§ 25a AufenthG (gut integrierte Jugendliche und junge Volljährige)“",
    ]

    # Meanwhile the Jobcenter reaches monitoring; every feedback begins a new visit and re-arms the reminder.
    child = desk.walk(child, [("2026-10-19 10:30", "weiter_zum_monitoring", None, "monitoring")], actor=JC)
    desk.on("2026-10-26 09:00")
    desk.consent(child, "KIM-CM", ["employment"], "Monatliche Rückmeldung des Jobcenters an das KIM-Case Management")
    child = desk.walk(
        child,
        [("2026-11-09 09:00", "rueckmeldung_erhalten", {"integrationsstand": "beschaeftigung"}, "monitoring")],
        actor=JC,
    )
    # The first visit's reminder (end of Mon 16 Nov) went with that visit; the new one is due at the end of 07 Dec.
    assert desk.tick_at(utc("2026-11-16 23:00")) == 0
    assert desk.tick_at(utc("2026-12-07 22:59:59")) == 0
    assert desk.tick_at(utc("2026-12-07 23:00")) == 1
    assert desk.system_actions(child) == ["rueckmeldung_anfordern"]
    child = desk.walk(
        child,
        [
            ("2026-12-10 11:00", "rueckmeldung_erhalten", {"integrationsstand": "beschaeftigung"}, "monitoring"),
            (
                "2026-12-17 15:00",
                "ueberleitung_abgeschlossen",
                {"integrationsstand": "beschaeftigung"},
                "uebergeleitet",
            ),
        ],
        actor=JC,
    )
    assert (child.status, child.outcome) == ("completed", "uebergeleitet")
    assert [(visit.due_at, visit.overran) for visit in desk.visits(child, "monitoring")] == [
        (utc("2026-11-30 23:00"), False),  # 6 Wochen from 10-19
        (utc("2026-12-21 23:00"), False),  # 6 Wochen from 11-09
        (utc("2027-01-21 23:00"), False),  # 6 Wochen from 12-10
    ]
    # The parent left the waiting step long ago: the child's end changes nothing there.
    case = desk.case(case)
    assert case.step == "entscheidung"
    assert "jobcenter_abgeschlossen" not in desk.system_actions(case)

    # 2 weeks before the certificate expires (Mon 04 Jan); 3 months after filing (Tue 12 Jan), 00:00 Berlin.
    assert desk.tick_at(utc("2027-01-03 22:59:59")) == 0
    assert desk.tick_at(utc("2027-01-03 23:00")) == 1
    assert desk.tick_at(utc("2027-01-11 22:59:59")) == 0
    assert desk.tick_at(utc("2027-01-11 23:00")) == 1
    assert desk.system_actions(case) == ["fiktion_verlaengern", "untaetigkeitsklage_hinweis"]

    # A decision is recorded with its date.
    desk.on("2027-02-01 10:00")
    assert desk.refused(case, "erteilt_25b") == ["Es fehlt: Entscheidung der ABH am"]
    case = desk.walk(
        case,
        [("2027-02-01 10:05", "erteilt_25b", {"entscheidung_datum": "2027-02-01"}, "titel_25b_erteilt")],
        actor=ABH,
    )
    assert (case.status, case.outcome) == ("completed", "ae_25b_erteilt")
    (decision,) = desk.visits(case, "entscheidung")
    assert (decision.overran, decision.excess_office_days) == (True, 9)  # 01-20 … 02-01
    desk.assert_history_replays(case)
    desk.assert_history_replays(child)


def test_the_permit_timers_remind_escalate_pull_the_filing_forward_and_fall_back_when_it_is_missed(
    desk: Desk,
) -> None:
    # A young woman (§ 25a possible), § 104c permit until Wed 30 Sep 2026; her passport is the bottleneck.
    case = desk.open(
        "chancen_uebergang",
        {"permit_granted": "2025-04-01", "permit_expires": "2026-09-30", "birth_year": 2003},
    )
    case = desk.walk(
        case,
        [
            (
                "2026-03-04 10:00",
                "zielpfad_festgelegt",
                {"zielpfad": "25a", "schulpflichtige_kinder": 0},
                "identitaet_klaeren",
            )
        ],
    )
    assert case.due_at == utc("2026-09-04 22:00")  # 6 Monate from 03-04
    (identity,) = desk.visits(case, "identitaet_klaeren")
    assert identity.warn_at == utc("2026-06-05 22:00")  # 3 Monate = Thu 06-04, Corpus Christi, rolled to Friday

    # 6 months before expiry: Mon 30 Mar, 00:00 Berlin — the first night of summer time.
    assert desk.tick_at(utc("2026-03-29 21:59:59")) == 0
    assert desk.tick_at(utc("2026-03-29 22:00")) == 1
    assert desk.case(case).step == "identitaet_klaeren"
    assert desk.history(case)[-1].action == "frist_hinweis_6m"

    # The embassy wants a birth certificate first: waiting on the client stops the step's clock.
    desk.on("2026-04-01 10:00")
    case = desk.wait_on(case, "KLIENT", "W-DOC", "Botschaft verlangt Geburtsurkunde")
    desk.on("2026-04-10 10:00")
    case = desk.wait_on(case, "BOT", "W-EMB", "Passantrag bei der Botschaft gestellt")
    assert case.due_at == utc("2026-09-11 22:00")  # 5 office days lost (04-02, 04-07 … 04-10) → 09-04 + 5
    assert desk.visits(case, "identitaet_klaeren")[0].reason_code == "W-EMB"

    # 3 months before: Tue 30 Jun.
    assert desk.tick_at(utc("2026-06-29 22:00")) == 1
    assert desk.history(case)[-1].action == "frist_eskalation_3m"

    # 6 weeks before: Wed 19 Aug. The case moves to filing; that step's own "6 weeks" hint is due at once.
    assert desk.tick_at(utc("2026-08-18 21:59:59")) == 0
    assert desk.tick_at(utc("2026-08-18 22:00")) == 2
    case = desk.case(case)
    assert case.step == "antrag_stellen"
    assert case.due_at == utc("2026-09-16 22:00")  # 20 Arbeitstage from 08-19
    (identity,) = desk.visits(case, "identitaet_klaeren")
    assert (identity.overran, identity.paused_seconds) == (False, 9 * DAY)
    assert desk.why_not(case, "antrag_gestellt") == [
        "Es fehlt: Antrag § 25a/§ 25b gestellt am",
        "Es fehlt: Einwilligung gegenüber Ausländerbehörde",
    ]
    assert desk.why_not(case, "frist_versaeumt") == ["Wird automatisch ausgelöst"]
    with pytest.raises(ActionNotAllowed, match="fired automatically"):
        desk.engine.fire(case.id, "frist_versaeumt", actor=CM)

    # 2 weeks before: Wed 16 Sep. Then the permit expires without an application.
    assert desk.tick_at(utc("2026-09-15 22:00")) == 1
    assert desk.tick_at(utc("2026-09-30 21:59:59")) == 0
    assert desk.tick_at(utc("2026-09-30 22:00")) == 1  # Thu 01 Oct, 00:00 Berlin
    case = desk.case(case)
    assert case.step == "rueckfall"
    assert case.due_at == utc("2026-10-29 23:00")  # 4 Wochen from 10-01, winter time from 10-25
    (filing,) = desk.visits(case, "antrag_stellen")
    assert (filing.overran, filing.excess_office_days) == (True, 11)  # 09-17 … 10-01
    assert desk.system_actions(case) == [
        "frist_hinweis_6m",
        "frist_eskalation_3m",
        "antrag_vorziehen",
        "frist_hinweis_6w",
        "frist_eskalation_2w",
        "frist_versaeumt",
    ]

    # The ABH had not explained § 25a properly: discretionary toleration.
    case = desk.walk(
        case, [("2026-10-20 11:00", "ermessensduldung_erteilt", {"hinweispflicht_verletzt": True}, "ermessensduldung")]
    )
    assert (case.status, case.outcome) == ("completed", "ermessensduldung")
    desk.assert_history_replays(case)


def test_a_jobcenter_child_ending_early_returns_the_transition_and_the_filing_deadline_does_not_wait_for_the_jobcenter(
    desk: Desk,
) -> None:
    # A man whose papers are in order but who lost his job; § 104c permit until Wed 30 Sep 2026.
    case = desk.open(
        "chancen_uebergang",
        {"permit_granted": "2025-04-01", "permit_expires": "2026-09-30", "birth_year": 1979},
    )
    case = desk.walk(
        case,
        [
            (
                "2026-03-02 10:00",
                "zielpfad_festgelegt",
                {"zielpfad": "25b", "schulpflichtige_kinder": 0},
                "identitaet_klaeren",
            ),
            ("2026-03-03 10:00", "weiter_sprachnachweis", {"identitaet_nachweis": "pass"}, "sprachnachweis_a2"),
            ("2026-03-03 10:05", "a2_nachgewiesen", {"sprachniveau": "b1"}, "leben_in_deutschland"),
            ("2026-03-03 10:10", "lid_nachgewiesen", {"lid_bestanden": True}, "lebensunterhalt_pruefen"),
            (
                "2026-03-03 10:15",
                "lebensunterhalt_erfassen",
                {"lebensunterhalt": "nicht_gesichert"},
                "lebensunterhalt_pruefen",
            ),
            ("2026-03-03 10:20", "jobcenter_einschalten", None, "jobcenter_begleitung"),
        ],
    )
    assert case.due_at == utc("2026-07-03 22:00")  # 4 Monate from 03-03

    # The client does not want his data passed on yet: the child ends early and the parent comes back by itself.
    (first,) = desk.children(case)
    first = desk.walk(
        first,
        [
            (
                "2026-03-04 09:00",
                "rechtskreis_erfassen",
                {"aufenthaltsstatus": "ae_104c", "rechtskreis": "sgb2"},
                "zustaendigkeit_klaeren",
            ),
            ("2026-03-04 09:05", "jobcenter_zustaendig", None, "einwilligung_einholen"),
            ("2026-03-06 11:00", "einwilligung_verweigert", None, "ohne_einwilligung"),
        ],
    )
    assert (first.status, first.outcome) == ("completed", "keine_einwilligung")
    case = desk.case(case)
    assert case.step == "lebensunterhalt_pruefen"
    last = desk.history(case)[-1]
    assert (last.actor, last.action, last.detail["child_case_id"], last.detail["child_outcome"]) == (
        "system",
        "jobcenter_abgeschlossen",
        first.id,
        "keine_einwilligung",
    )
    assert desk.visits(case, "jobcenter_begleitung")[0].overran is False
    assert case.due_at == utc("2026-04-07 22:00")  # 4 Wochen from 03-06 = Good Friday, Easter Monday next: Tuesday

    # Two weeks later he agrees after all: a second referral (the livelihood is still not secured).
    desk.on("2026-03-19 10:00")
    assert desk.available(case) == {"lebensunterhalt_erfassen", "jobcenter_einschalten", "antrag_vorziehen"}
    case = desk.fire(case, "jobcenter_einschalten")
    assert case.step == "jobcenter_begleitung"
    assert case.due_at == utc("2026-07-20 22:00")  # 4 Monate from 03-19 = Sun 07-19, rolled to Monday
    (second,) = [child for child in desk.children(case) if child.status == "open"]
    second = desk.walk(
        second,
        [
            (
                "2026-03-19 10:30",
                "rechtskreis_erfassen",
                {"aufenthaltsstatus": "ae_104c", "rechtskreis": "sgb2"},
                "zustaendigkeit_klaeren",
            ),
            ("2026-03-19 10:35", "jobcenter_zustaendig", None, "einwilligung_einholen"),
        ],
    )
    desk.consent(second, "JC", ["identity", "residence", "education", "family"], "Warme Übergabe an das Jobcenter")
    second = desk.walk(
        second,
        [
            ("2026-03-19 10:45", "einwilligung_dokumentiert", None, "antrag_buergergeld"),
            ("2026-03-24 11:00", "antrag_gestellt", {"antrag_datum": "2026-03-24"}, "warme_uebergabe"),
        ],
    )
    # The permit timers run in the waiting step: 6 months before expiry is Mon 30 Mar, 00:00 Berlin.
    assert desk.tick_at(utc("2026-03-29 22:00")) == 1
    handover = {"jc_kundennummer": "36201BG0052201", "jc_team": "Team 12 – Arbeitsvermittlung"}
    second = desk.walk(second, [("2026-04-14 14:00", "uebergabe_bestaetigt", handover, "erstgespraech")])
    assert second.due_at == utc("2026-05-26 22:00")  # 6 Wochen from 04-14
    # 3 months before: Tue 30 Jun.
    assert desk.tick_at(utc("2026-06-29 22:00")) == 1
    # The Jobcenter has no appointment before autumn. 6 weeks before expiry (Wed 19 Aug) the filing is pulled
    # forward; the parent does not wait for the child any longer.
    assert desk.tick_at(utc("2026-08-18 21:59:59")) == 0
    assert desk.tick_at(utc("2026-08-18 22:00")) == 2
    case = desk.case(case)
    assert case.step == "antrag_stellen"
    assert case.due_at == utc("2026-09-16 22:00")  # 20 Arbeitstage from 08-19
    waited = desk.visits(case, "jobcenter_begleitung")[1]
    assert (waited.overran, waited.excess_office_days) == (True, 22)  # 07-21 … 08-19
    assert desk.system_actions(case) == [
        "jobcenter_abgeschlossen",
        "frist_hinweis_6m",
        "frist_eskalation_3m",
        "antrag_vorziehen",
        "frist_hinweis_6w",
    ]
    second = desk.case(second)
    assert (second.step, second.status) == ("erstgespraech", "open")

    # The Jobcenter's first meeting comes now; the transition is not moved by it, the filing goes ahead.
    second = desk.walk(second, [("2026-08-24 09:00", "erstgespraech_gefuehrt", None, "kooperationsplan")], actor=JC)
    assert desk.case(case).step == "antrag_stellen"
    desk.on("2026-08-24 11:00")
    desk.consent(case, "ABH", ["residence"], "Antrag § 25b bei der Ausländerbehörde")
    case = desk.walk(
        case, [("2026-08-24 11:10", "antrag_gestellt", {"antrag_datum": "2026-08-24"}, "fiktionsbescheinigung")]
    )
    desk.assert_history_replays(case)
    desk.assert_history_replays(first)
    desk.assert_history_replays(second)


# ====================================================================== chancen_antrag


def test_a_pending_chancen_application_is_granted_and_starts_the_transition_as_a_child_case(desk: Desk) -> None:
    case = desk.open("chancen_antrag")
    assert case.due_at == utc("2026-03-09 23:00")  # 5 Arbeitstage from 03-02
    assert desk.available(case) == set()  # first the status, then one of the branches
    assert desk.why_not(case, "antrag_liegt_vor") == [
        "Es fehlt: Antrag § 104c gestellt am",
        "Bedingung nicht erfüllt: Antrag vor dem Stichtag 31.12.2025 gestellt ist ja",
    ]
    # Filed in time, but the receipt with the date is at home: the intake cannot go on without the date.
    case = desk.walk(
        case,
        [
            (
                "2026-03-03 10:00",
                "antragsstand_erfassen",
                {"filed_before_cutoff": True, "antragsrolle": "hauptantrag"},
                "fallaufnahme",
            ),
        ],
    )
    assert desk.available(case) == {"antragsstand_erfassen"}
    assert desk.why_not(case, "antrag_liegt_vor") == ["Es fehlt: Antrag § 104c gestellt am"]
    assert desk.why_not(case, "altfall_nacherfassen") == [
        "Bedingung nicht erfüllt: Antrag vor dem Stichtag 31.12.2025 gestellt ist nein"
    ]
    # The date is entered with the branch; a date after the cut-off is not "in time".
    desk.on("2026-03-05 10:00")
    assert desk.refused(case, "antrag_liegt_vor", {"antrag_datum": "2026-01-12"}) == [
        "Bedingung nicht erfüllt: nicht (Antrag § 104c gestellt am ist größer als 31.12.2025)"
    ]
    case = desk.walk(
        case, [("2026-03-05 10:05", "antrag_liegt_vor", {"antrag_datum": "2025-11-20"}, "bekenntnis_fdgo")]
    )
    assert (desk.visits(case, "fallaufnahme")[0].overran, case.data["antrag_datum"]) == (False, "2025-11-20")
    assert case.due_at == utc("2026-03-19 23:00")  # 10 Arbeitstage from 03-05
    case = desk.walk(case, [("2026-03-12 10:00", "bekenntnis_abgegeben", None, "entscheidung")], actor=ABH)
    assert case.due_at == utc("2026-06-12 22:00")  # 3 Monate from 03-12

    # Three months since filing (20 Nov 2025) have passed already: the hint comes at the next timer run.
    assert desk.tick_at(berlin("2026-03-12 10:30")) == 1
    assert desk.history(case)[-1].action == "untaetigkeitsklage_hinweis"
    # Six months since filing: Wed 20 May, 00:00 Berlin.
    assert desk.tick_at(utc("2026-05-19 21:59:59")) == 0
    assert desk.tick_at(utc("2026-05-19 22:00")) == 1
    assert desk.history(case)[-1].action == "eskalation_lange_dauer"

    assert desk.why_not(case, "ae_104c_erteilt") == ["Es fehlt: Erteilung der AE § 104c, Ablauf der AE § 104c"]
    permit = {"permit_granted": "2026-06-24", "permit_expires": "2027-12-23"}
    case = desk.walk(case, [("2026-06-24 10:00", "ae_104c_erteilt", permit, "hinweis_25ab")], actor=ABH)
    (decision,) = desk.visits(case, "entscheidung")
    assert (decision.overran, decision.excess_office_days) == (True, 8)  # 06-15 … 06-24
    assert case.due_at == utc("2026-07-08 22:00")  # 10 Arbeitstage from 06-24
    # The ABH is reminded of its duty to inform after 5 Arbeitstage: end of Wed 01 Jul.
    assert desk.tick_at(utc("2026-07-01 21:59:59")) == 0
    assert desk.tick_at(utc("2026-07-01 22:00")) == 1
    assert desk.history(case)[-1].action == "hinweis_anmahnen"

    desk.on("2026-07-06 10:00")
    assert desk.why_not(case, "uebergang_starten") == [
        "Es fehlt: Hinweis der ABH nach § 104c Abs. 4 fehlte oder war unzureichend"
    ]
    case = desk.fire(case, "uebergang_starten", {"hinweispflicht_verletzt": False})
    assert (case.step, case.status, case.outcome) == ("erteilt", "completed", "ae_104c_erteilt")
    (child,) = desk.children(case)
    assert (child.process_id, child.child_name, child.parent_id, child.step, child.status) == (
        "chancen_uebergang",
        "uebergang",
        case.id,
        "zielpfad_festlegen",
        "open",
    )
    assert child.data == {**permit, "hinweispflicht_verletzt": False}
    assert child.due_at == utc("2026-08-03 22:00")  # 20 Arbeitstage from 07-06
    # The copied expiry armed the child's deadline timers when it opened: 6 months before = Wed 23 Jun 2027.
    assert desk.tick_at(utc("2027-06-22 21:59:59")) == 0
    assert desk.tick_at(utc("2027-06-22 22:00")) == 1
    assert desk.system_actions(child) == ["frist_hinweis_6m"]
    desk.assert_history_replays(case)
    desk.assert_history_replays(child)


def test_a_legacy_chancen_case_hands_the_filing_to_the_abh_only_with_a_consent_covering_family_data(
    desk: Desk,
) -> None:
    # A spouse whose application of Dec 2025 is recorded afterwards, from the pre-check on.
    case = desk.open("chancen_antrag")
    case = desk.walk(
        case,
        [
            (
                "2026-03-02 10:00",
                "antragsstand_erfassen",
                {"filed_before_cutoff": False, "antragsrolle": "familienangehoerig"},
                "fallaufnahme",
            ),
        ],
    )
    assert desk.available(case) == {"antragsstand_erfassen", "altfall_nacherfassen"}
    case = desk.walk(case, [("2026-03-02 10:05", "altfall_nacherfassen", None, "vorpruefung")])
    assert case.due_at == utc("2026-03-16 23:00")  # 10 Arbeitstage from 03-02
    case = desk.walk(
        case, [("2026-03-05 11:00", "voraufenthalt_erfassen", {"voraufenthalt_seit": "2019-02-11"}, "vorpruefung")]
    )
    # Family members need no five years of their own.
    assert desk.why_not(case, "stichtag_nicht_erfuellt") == [
        "Bedingung nicht erfüllt: Antragsrolle ist „Hauptantragsteller:in (5 Jahre Voraufenthalt am 31.10.2022)“"
    ]
    case = desk.walk(case, [("2026-03-05 11:05", "stichtag_erfuellt", None, "ausschlussgruende")])
    assert case.due_at == utc("2026-03-26 23:00")  # 3 Wochen from 03-05
    case = desk.walk(
        case,
        [
            ("2026-03-19 14:00", "keine_ausschlussgruende", None, "antrag_stellen"),
            (
                "2026-03-20 09:00",
                "antragsdatum_erfassen",
                {"antrag_datum": "2025-12-18", "filed_before_cutoff": True},
                "antrag_stellen",
            ),
        ],
    )
    assert case.due_at == utc("2026-03-26 23:00")  # 5 Arbeitstage from 03-19
    assert desk.why_not(case, "stichtag_verpasst") == [
        "Bedingung nicht erfüllt: (Antrag § 104c gestellt am ist leer"
        " oder Antrag § 104c gestellt am ist größer als 31.12.2025)"
    ]
    assert desk.why_not(case, "antrag_gestellt") == ["Es fehlt: Einwilligung gegenüber Ausländerbehörde"]

    desk.on("2026-03-23 09:00")
    desk.consent(case, "ABH", ["residence"], "Nacherfassung des Antrags § 104c")
    assert desk.why_not(case, "antrag_gestellt") == [
        "Die Einwilligung gegenüber Ausländerbehörde deckt nicht ab: Familie und Haushalt"
    ]
    desk.consent(case, "ABH", ["residence", "family"], "Nacherfassung des Antrags § 104c")
    case = desk.fire(case, "antrag_gestellt")
    assert case.step == "bekenntnis_fdgo"
    assert handoff_of(desk.history(case)[-1]) == {
        "from": "KIM-CM",
        "to": "ABH",
        "shares": ["antrag_datum", "antragsrolle"],
    }
    assert case.due_at == utc("2026-04-08 22:00")  # 10 Arbeitstage from 03-23, without Easter

    case = desk.walk(case, [("2026-04-16 10:00", "bekenntnis_abgegeben", None, "entscheidung")], actor=ABH)
    (declaration,) = desk.visits(case, "bekenntnis_fdgo")
    assert (declaration.overran, declaration.excess_office_days) == (True, 6)  # 04-09 … 04-16
    assert case.due_at == utc("2026-07-16 22:00")  # 3 Monate from 04-16
    # 3 months after filing (18 Mar) are past: at the next run; 6 months: Thu 18 Jun, 00:00 Berlin.
    assert desk.tick_at(berlin("2026-04-16 10:30")) == 1
    assert desk.tick_at(utc("2026-06-17 21:59:59")) == 0
    assert desk.tick_at(utc("2026-06-17 22:00")) == 1
    assert desk.system_actions(case) == ["untaetigkeitsklage_hinweis", "eskalation_lange_dauer"]

    case = desk.walk(case, [("2026-07-02 10:00", "antrag_abgelehnt", None, "abgelehnt")], actor=ABH)
    assert (case.status, case.outcome) == ("completed", "abgelehnt")
    desk.assert_history_replays(case)


def test_an_application_dated_after_the_cut_off_ends_at_intake_as_missed(desk: Desk) -> None:
    # The client believed he had filed in time; the receipt says Tue 12 Jan 2026.
    case = desk.open("chancen_antrag")
    status = {"filed_before_cutoff": True, "antrag_datum": "2026-01-12", "antragsrolle": "hauptantrag"}
    case = desk.walk(case, [("2026-03-02 10:00", "antragsstand_erfassen", status, "fallaufnahme")])
    # Exactly one way on: neither "in time" nor the pre-check, but the missed cut-off.
    assert desk.available(case) == {"antragsstand_erfassen", "antrag_nach_stichtag"}
    assert desk.why_not(case, "antrag_liegt_vor") == [
        "Bedingung nicht erfüllt: nicht (Antrag § 104c gestellt am ist größer als 31.12.2025)"
    ]
    case = desk.walk(case, [("2026-03-02 10:05", "antrag_nach_stichtag", None, "frist_verpasst")])
    assert (case.status, case.outcome) == ("completed", "stichtag_verpasst")
    desk.assert_history_replays(case)


# ====================================================================== jobcenter_ueberleitung


def test_a_jobcenter_referral_hands_over_with_consent_and_ends_after_the_monitoring(desk: Desk) -> None:
    # A refugee with protection status moves from the Sozialamt (AsylbLG) to the Jobcenter.
    case = desk.open("jobcenter_ueberleitung")
    assert case.due_at == utc("2026-03-05 23:00")  # 3 Arbeitstage from 03-02
    assert desk.why_not(case, "rechtskreis_erfassen") == ["Es fehlt: Aufenthaltsstatus, Zuständiger Rechtskreis"]
    assert desk.why_not(case, "jobcenter_zustaendig") == [
        "Bedingung nicht erfüllt: Zuständiger Rechtskreis ist „SGB II (Jobcenter)“"
    ]
    status = {
        "aufenthaltsstatus": "ae_schutz",
        "permit_expires": "2028-08-31",
        "sprachniveau": "a2",
        "rechtskreis": "sgb2",
    }
    case = desk.walk(
        case,
        [
            ("2026-03-03 10:00", "rechtskreis_erfassen", status, "zustaendigkeit_klaeren"),
            ("2026-03-03 10:05", "jobcenter_zustaendig", None, "einwilligung_einholen"),
        ],
    )
    assert case.due_at == utc("2026-03-10 23:00")  # 5 Arbeitstage from 03-03

    # The consent is recorded on the case, not with this step's button; the handoff checks it later.
    option = desk.options(case)["einwilligung_dokumentiert"]
    assert (option.available, option.title) == (
        True,
        "Einwilligung unterschrieben und im Fall erfasst – weiter zum Antrag",
    )
    # The consent form signed at the first appointment leaves out the family data.
    desk.on("2026-03-09 10:00")
    narrow = desk.consent(case, "JC", ["identity", "residence", "education"], "Warme Übergabe an das Jobcenter")
    case = desk.walk(
        case,
        [
            ("2026-03-09 10:10", "einwilligung_dokumentiert", None, "antrag_buergergeld"),
            (
                "2026-03-16 11:00",
                "antrag_gestellt",
                {"antrag_datum": "2026-03-16", "jc_kundennummer": "36201BG0012345"},
                "warme_uebergabe",
            ),
        ],
    )
    assert desk.visits(case, "antrag_buergergeld")[0].due_at == utc("2026-03-23 23:00")  # 10 Arbeitstage from 03-09
    assert case.due_at == utc("2026-03-30 22:00")  # 10 Arbeitstage from 03-16, summer time
    assert desk.why_not(case, "uebergabe_bestaetigt") == [
        "Es fehlt: Zuständiges Team / Ansprechperson im Jobcenter (Funktion)",
        "Die Einwilligung gegenüber Jobcenter (SGB II) deckt nicht ab: Familie und Haushalt",
    ]
    desk.on("2026-04-08 09:00")
    handover = {"jc_team": "Team 34 – Neuzugewanderte", "kinderbetreuungsbedarf": True, "berufsabschluss_ausland": True}
    assert desk.refused(case, "uebergabe_bestaetigt", handover) == [
        "Die Einwilligung gegenüber Jobcenter (SGB II) deckt nicht ab: Familie und Haushalt"
    ]
    desk.revoke(case, narrow)
    desk.consent(
        case,
        "JC",
        ["identity", "residence", "education", "family"],
        "Warme Übergabe an das Jobcenter",
        valid_until="2027-04-07",
    )
    case = desk.fire(case, "uebergabe_bestaetigt", handover)
    assert case.step == "erstgespraech"
    assert handoff_of(desk.history(case)[-1]) == {
        "from": "KIM-CM",
        "to": "JC",
        "shares": [
            "jc_kundennummer",
            "aufenthaltsstatus",
            "permit_expires",
            "sprachniveau",
            "kinderbetreuungsbedarf",
            "berufsabschluss_ausland",
        ],
    }
    (handed,) = desk.visits(case, "warme_uebergabe")
    assert (handed.overran, handed.excess_office_days) == (True, 5)  # 03-31, 04-01, 04-02, 04-07, 04-08
    assert case.due_at == utc("2026-05-20 22:00")  # 6 Wochen from 04-08

    case = desk.walk(case, [("2026-05-07 10:00", "erstgespraech_gefuehrt", None, "kooperationsplan")], actor=JC)
    assert case.due_at == utc("2026-06-05 22:00")  # 4 Wochen from 05-07 = Corpus Christi, rolled to Friday
    case = desk.walk(
        case,
        [
            ("2026-05-28 10:00", "keine_einigung", None, "schlichtung"),
            ("2026-06-18 10:00", "schlichtung_abgeschlossen", None, "kooperationsplan"),
            ("2026-06-25 10:00", "kooperationsplan_vereinbart", None, "sprachfoerderung"),
            ("2026-07-09 10:00", "sprachfoerderung_veranlasst", None, "qualifizierung"),
        ],
        actor=JC,
    )
    assert [visit.due_at for visit in desk.visits(case, "kooperationsplan")] == [
        utc("2026-06-05 22:00"),
        utc("2026-07-16 22:00"),  # 4 Wochen from 06-18
    ]
    assert case.due_at == utc("2026-10-09 22:00")  # 3 Monate from 07-09
    assert desk.why_not(case, "beschaeftigungserlaubnis_noetig") == [
        "Bedingung nicht erfüllt: Aufenthaltsstatus ist „Duldung“ oder „Aufenthaltsgestattung“"
    ]
    case = desk.walk(case, [("2026-09-14 10:00", "weiter_zum_monitoring", None, "monitoring")], actor=JC)
    assert case.due_at == utc("2026-10-26 23:00")  # 6 Wochen from 09-14, winter time from 10-25

    # The Jobcenter's feedback to KIM is a handoff the other way round, with a consent of its own,
    # and it has to say where the client stands.
    desk.on("2026-10-05 09:00")
    assert desk.why_not(case, "rueckmeldung_erhalten") == [
        "Es fehlt: Stand der Arbeitsmarktintegration",
        "Es fehlt: Einwilligung gegenüber KIM-Case Management",
    ]
    feedback = {"integrationsstand": "qualifizierung"}
    assert desk.refused(case, "rueckmeldung_erhalten", feedback) == [
        "Es fehlt: Einwilligung gegenüber KIM-Case Management"
    ]
    back = desk.consent(case, "KIM-CM", ["employment"], "Rückmeldung des Jobcenters zum Integrationsverlauf")
    assert desk.refused(case, "rueckmeldung_erhalten") == ["Es fehlt: Stand der Arbeitsmarktintegration"]
    case = desk.fire(case, "rueckmeldung_erhalten", feedback, actor=JC)
    assert case.step == "monitoring"
    assert handoff_of(desk.history(case)[-1]) == {"from": "JC", "to": "KIM-CM", "shares": ["integrationsstand"]}
    # Each feedback begins a new visit: deadline and reminder count from the feedback.
    assert case.due_at == utc("2026-11-16 23:00")  # 6 Wochen from 10-05
    # The first visit's reminder (end of Mon 12 Oct) went with it; the next one comes 4 Wochen after
    # the feedback: end of Mon 02 Nov.
    assert desk.tick_at(utc("2026-10-12 22:00")) == 0
    # The client revokes the feedback consent: the button is greyed out again, and the feedback stops.
    desk.on("2026-10-20 09:00")
    desk.revoke(case, back)
    assert desk.why_not(case, "rueckmeldung_erhalten") == ["Es fehlt: Einwilligung gegenüber KIM-Case Management"]
    assert desk.tick_at(utc("2026-11-02 22:59:59")) == 0
    assert desk.tick_at(utc("2026-11-02 23:00")) == 1
    assert desk.system_actions(case) == ["rueckmeldung_anfordern"]

    closing = {"integrationsstand": "beschaeftigung"}
    case = desk.walk(case, [("2026-11-23 10:00", "ueberleitung_abgeschlossen", closing, "uebergeleitet")], actor=JC)
    assert (case.status, case.outcome) == ("completed", "uebergeleitet")
    assert [
        (visit.entered_at, visit.due_at, visit.overran, visit.excess_office_days)
        for visit in desk.visits(case, "monitoring")
    ] == [
        (berlin("2026-09-14 10:00"), utc("2026-10-26 23:00"), False, 0),
        (berlin("2026-10-05 09:00"), utc("2026-11-16 23:00"), True, 5),  # 11-17 … 11-20, 11-23
    ]
    desk.assert_history_replays(case)


# ====================================================================== integrationskurs


def test_an_admission_case_waits_out_the_bamf_stop_and_ends_with_an_alternative_offer(desk: Desk) -> None:
    case = desk.open("integrationskurs")
    assert case.due_at == utc("2026-03-04 23:00")  # 2 Arbeitstage from 03-02
    case = desk.walk(
        case,
        [
            (
                "2026-03-02 11:00",
                "status_erfassen",
                {"teilnahmestatus": "zulassung", "leistungsbezug": False},
                "status_klaeren",
            )
        ],
    )
    assert desk.why_not(case, "verpflichtung_liegt_vor") == [
        "Es fehlt: Verpflichtende Stelle",
        "Bedingung nicht erfüllt: Teilnahmestatus ist „Verpflichtung (§ 44a AufenthG)“",
    ]
    case = desk.walk(case, [("2026-03-02 11:05", "zulassung_beantragen", None, "zulassung_bamf")])
    assert (case.due_at, case.waiting_on) == (utc("2026-04-27 22:00"), "BAMF")  # 8 Wochen from 03-02

    # The BAMF admits nobody under § 44 (4) in 2026: the wait is tagged W-FUND and keeps counting.
    desk.on("2026-03-16 09:00")
    case = desk.wait_on(case, "BAMF", "W-FUND", "Zulassungsstopp § 44 Abs. 4, Trägerrundschreiben vom 09.02.2026")
    assert case.due_at == utc("2026-04-27 22:00")
    assert desk.visits(case, "zulassung_bamf")[0].reason_code == "W-FUND"

    # 3 Monate in the step: end of Tue 02 Jun; 6 Monate: end of Wed 02 Sep.
    assert desk.tick_at(utc("2026-06-02 21:59:59")) == 0
    assert desk.tick_at(utc("2026-06-02 22:00")) == 1
    assert desk.tick_at(utc("2026-09-02 22:00")) == 1
    assert desk.system_actions(case) == ["alternativen_pruefen", "an_koordination_melden"]
    assert desk.case(case).step == "zulassung_bamf"

    case = desk.walk(case, [("2026-09-07 10:00", "alternativangebot_vermittelt", None, "alternativangebot")])
    assert (case.status, case.outcome) == ("completed", "alternativangebot")
    (stop,) = desk.visits(case, "zulassung_bamf")
    # 04-28 … 09-07: 3 + 18 (May) + 21 (June) + 23 (July) + 21 (August) + 5 office days.
    assert (stop.overran, stop.excess_office_days, stop.reason_code) == (True, 91, "W-FUND")
    desk.assert_history_replays(case)


def test_an_obliged_participant_completes_the_course_and_the_proof_goes_to_the_jobcenter_with_consent(
    desk: Desk,
) -> None:
    case = desk.open("integrationskurs")
    status = {"teilnahmestatus": "verpflichtung", "verpflichtende_stelle": "jc", "leistungsbezug": True}
    case = desk.walk(
        case,
        [
            ("2026-03-03 09:00", "status_erfassen", status, "status_klaeren"),
            ("2026-03-03 09:05", "verpflichtung_liegt_vor", None, "kostenbefreiung"),
        ],
    )
    assert case.due_at == utc("2026-03-31 22:00")  # 4 Wochen from 03-03
    case = desk.walk(case, [("2026-03-24 10:00", "kostenbefreiung_bewilligt", None, "einstufung_anmeldung")])
    assert case.due_at == utc("2026-04-21 22:00")  # 4 Wochen from 03-24
    assert desk.why_not(case, "angemeldet") == ["Es fehlt: Kursart"]
    case = desk.walk(
        case,
        [
            ("2026-04-14 10:00", "angemeldet", {"kursart": "allgemein"}, "kurs_wartezeit"),
            ("2026-06-01 08:30", "kurs_begonnen", {"kursbeginn": "2026-06-01"}, "kursteilnahme"),
        ],
    )
    assert desk.visits(case, "kurs_wartezeit")[0].due_at == utc("2026-07-14 22:00")  # 3 Monate from 04-14
    assert case.due_at == utc("2027-03-01 23:00")  # 9 Monate from 06-01
    case = desk.walk(
        case,
        [
            ("2027-02-19 12:00", "kurs_beendet", None, "pruefungen"),
            ("2027-03-12 10:00", "ergebnis_erfassen", {"dtz_ergebnis": "b1", "lid_bestanden": True}, "pruefungen"),
        ],
    )
    assert case.due_at == utc("2027-04-19 22:00")  # 2 Monate from 02-19
    assert desk.why_not(case, "wiederholung") == [
        "Bedingung nicht erfüllt: Ergebnis Deutsch-Test für Zuwanderer (DTZ) ist „A2“ oder „Unter A2“"
    ]
    case = desk.walk(case, [("2027-03-12 10:05", "weiter_zum_nachweis", None, "nachweis")])
    # 2 Wochen from 03-12 = Good Friday 2027, Easter Monday next: rolled to Tue 03-30.
    assert case.due_at == utc("2027-03-30 22:00")

    # Never to the ABH here: that button is off (wrong obliging agency) and has no consent anyway.
    assert desk.why_not(case, "nachweis_an_abh") == [
        "Es fehlt: Einwilligung gegenüber Ausländerbehörde",
        "Bedingung nicht erfüllt: Verpflichtende Stelle ist „Ausländerbehörde“",
    ]
    desk.on("2027-03-22 10:00")
    desk.consent(case, "JC", ["identity"], "Nachweis der Kursteilnahme an das Jobcenter")
    assert desk.refused(case, "nachweis_an_jc") == [
        "Die Einwilligung gegenüber Jobcenter (SGB II) deckt nicht ab: Bildung und Sprache"
    ]
    desk.consent(case, "JC", ["education"], "Nachweis der Kursteilnahme an das Jobcenter")
    case = desk.fire(case, "nachweis_an_jc")
    assert (case.step, case.status, case.outcome) == ("abgeschlossen", "completed", "kurs_abgeschlossen")
    assert handoff_of(desk.history(case)[-1]) == {
        "from": "KIM-CM",
        "to": "JC",
        "shares": ["kursart", "dtz_ergebnis", "lid_bestanden"],
    }
    assert [(visit.step, visit.overran) for visit in desk.engine.visits(case.id)] == [
        ("status_klaeren", False),
        ("kostenbefreiung", False),
        ("einstufung_anmeldung", False),
        ("kurs_wartezeit", False),
        ("kursteilnahme", False),
        ("pruefungen", False),
        ("nachweis", False),
        ("abgeschlossen", None),  # a final step has no deadline
    ]
    desk.assert_history_replays(case)


# ====================================================================== anerkennung


def test_a_nurse_with_partial_equivalence_is_fully_recognised_after_the_knowledge_test(desk: Desk) -> None:
    case = desk.open("anerkennung")
    assert (case.step, case.due_at) == ("erstberatung", utc("2026-04-13 22:00"))  # 6 Wochen from 03-02
    case = desk.walk(
        case,
        [
            (
                "2026-03-18 10:00",
                "referenzberuf_bestimmt",
                {"referenzberuf": "Pflegefachfrau", "reglementiert": True},
                "unterlagen",
            ),
        ],
        actor="iq.berater",
    )
    assert case.due_at == utc("2026-06-18 22:00")  # 3 Monate from 03-18
    case = desk.walk(
        case,
        [
            ("2026-05-20 10:00", "unterlagen_beisammen", None, "kostenuebernahme"),
            ("2026-06-03 10:00", "kosten_geklaert", {"kostentraeger": "jc"}, "antrag"),
        ],
    )
    assert desk.visits(case, "kostenuebernahme")[0].due_at == utc("2026-07-01 22:00")  # 6 Wochen from 05-20
    assert case.due_at == utc("2026-06-11 22:00")  # 5 Arbeitstage from 06-03, without Corpus Christi

    desk.on("2026-06-10 10:00")
    application = {"antrag_datum": "2026-06-10"}
    assert desk.refused(case, "antrag_eingereicht", application) == [
        "Es fehlt: Einwilligung gegenüber Anerkennungsstelle (Kammer, Bezirksregierung, …)"
    ]
    desk.consent(case, "ANST", ["identity", "residence"], "Antrag auf Anerkennung als Pflegefachfrau")
    assert desk.refused(case, "antrag_eingereicht", application) == [
        "Die Einwilligung gegenüber Anerkennungsstelle (Kammer, Bezirksregierung, …)"
        " deckt nicht ab: Bildung und Sprache"
    ]
    desk.consent(case, "ANST", ["identity", "education"], "Antrag auf Anerkennung als Pflegefachfrau")
    case = desk.fire(case, "antrag_eingereicht", application)
    assert case.step == "eingangsbestaetigung"
    assert handoff_of(desk.history(case)[-1])["shares"] == ["referenzberuf", "antrag_datum"]
    assert case.due_at == utc("2026-07-10 22:00")  # 1 Monat from 06-10

    # No acknowledgement after a month in the step: reminder at the end of Fri 10 Jul.
    assert desk.tick_at(utc("2026-07-10 21:59:59")) == 0
    assert desk.tick_at(utc("2026-07-10 22:00")) == 1
    assert desk.history(case)[-1].action == "eingang_anmahnen"
    case = desk.walk(case, [("2026-07-15 09:00", "unterlagen_nachgefordert", None, "nachreichen")], actor="anst.weber")
    (first_receipt,) = desk.visits(case, "eingangsbestaetigung")
    assert (first_receipt.overran, first_receipt.excess_office_days) == (True, 3)  # 07-13, 07-14, 07-15
    assert case.due_at == utc("2026-08-12 22:00")  # 4 Wochen from 07-15
    case = desk.walk(case, [("2026-08-05 10:00", "unterlagen_nachgereicht", None, "eingangsbestaetigung")])
    assert case.due_at == utc("2026-09-07 22:00")  # 1 Monat from 08-05 = Sat 09-05, rolled to Monday

    case = desk.walk(
        case,
        [("2026-08-19 10:00", "akte_vollstaendig", {"akte_vollstaendig_am": "2026-08-17"}, "bescheid")],
        actor="anst.weber",
    )
    assert case.due_at == utc("2026-11-19 23:00")  # 3 Monate from 08-19, winter time
    assert desk.why_not(case, "teilweise_ohne_ausgleich") == [
        "Bedingung nicht erfüllt: Reglementierter Beruf (Anerkennung ist Voraussetzung für die Berufsausübung) ist nein"
    ]
    # The statutory three months run from the complete file (17 Aug): Tue 17 Nov, 00:00 Berlin.
    assert desk.tick_at(utc("2026-11-16 22:59:59")) == 0
    assert desk.tick_at(utc("2026-11-16 23:00")) == 1
    assert desk.history(case)[-1].action == "bescheidfrist_abgelaufen"

    # Partial equivalence: a knowledge test as compensation measure.
    case = desk.walk(
        case,
        [
            (
                "2026-11-30 10:00",
                "teilweise_mit_ausgleich",
                {"ausgleichsmassnahme": "kenntnispruefung"},
                "ausgleichsmassnahme",
            )
        ],
        actor="anst.weber",
    )
    (decision,) = desk.visits(case, "bescheid")
    assert (decision.overran, decision.excess_office_days) == (True, 7)  # 11-20, 11-23 … 11-27, 11-30
    assert (case.due_at, case.waiting_on) == (utc("2027-11-30 23:00"), "BT")  # 12 Monate from 11-30
    case = desk.walk(case, [("2027-06-15 10:00", "massnahme_bestanden", None, "abschlussbescheid")])
    assert case.due_at == utc("2027-07-15 22:00")  # 1 Monat from 06-15
    case = desk.walk(case, [("2027-07-06 10:00", "anerkennung_erteilt", None, "anerkannt")], actor="anst.weber")
    assert (case.status, case.outcome) == ("completed", "anerkannt")
    assert [visit.step for visit in desk.engine.visits(case.id)] == [
        "erstberatung",
        "unterlagen",
        "kostenuebernahme",
        "antrag",
        "eingangsbestaetigung",
        "nachreichen",
        "eingangsbestaetigung",
        "bescheid",
        "ausgleichsmassnahme",
        "abschlussbescheid",
        "anerkannt",
    ]
    desk.assert_history_replays(case)


# ====================================================================== einbuergerung


def test_a_naturalisation_gets_the_untaetigkeitsklage_hint_three_months_after_filing(desk: Desk) -> None:
    case = desk.open("einbuergerung")
    assert case.due_at == utc("2026-03-09 23:00")  # 5 Arbeitstage from 03-02
    assert desk.why_not(case, "eckdaten_erfassen") == [
        "Es fehlt: Jahre rechtmäßigen gewöhnlichen Aufenthalts, Sprachnachweis Deutsch,"
        " Einbürgerungstest bestanden (oder gleichwertiger Nachweis)"
    ]
    key_data = {"aufenthaltsjahre": 6, "sprachnachweis": "b1", "einbuergerungstest": False, "leistungsbezug": False}
    case = desk.walk(case, [("2026-03-04 10:00", "eckdaten_erfassen", key_data, "quick_check")])
    assert desk.available(case) == {"eckdaten_erfassen", "nachweise_fehlen"}
    # Only the part of the rule that fails is shown.
    assert desk.why_not(case, "voraussetzungen_erfuellt") == [
        "Bedingung nicht erfüllt: Einbürgerungstest bestanden (oder gleichwertiger Nachweis) ist ja"
    ]
    case = desk.walk(
        case,
        [
            ("2026-03-04 10:05", "nachweise_fehlen", None, "sprache_test"),
            ("2026-04-22 10:00", "nachweise_erbracht", {"sprachnachweis": "b1", "einbuergerungstest": True}, "antrag"),
        ],
    )
    assert desk.visits(case, "sprache_test")[0].due_at == utc("2026-09-04 22:00")  # 6 Monate from 03-04
    assert case.due_at == utc("2026-08-24 22:00")  # 4 Monate from 04-22 = Sat 08-22, rolled to Monday

    # Filed online on Monday 15 June, recorded the next day.
    case = desk.walk(
        case, [("2026-06-16 09:00", "antrag_gestellt", {"antrag_datum": "2026-06-15"}, "behoerdenbeteiligung")]
    )
    assert (case.due_at, case.waiting_on) == (utc("2026-12-16 23:00"), "SICH")  # 6 Monate from 06-16
    # Three months after filing: Tue 15 Sep, 00:00 Berlin.
    assert desk.tick_at(utc("2026-09-14 21:59:59")) == 0
    assert desk.tick_at(utc("2026-09-14 22:00")) == 1
    hint = desk.history(case)[-1]
    assert (hint.actor, hint.action, hint.from_step, hint.to_step) == (
        "system",
        "untaetigkeitsklage_hinweis",
        "behoerdenbeteiligung",
        "behoerdenbeteiligung",
    )

    case = desk.walk(
        case, [("2027-01-20 10:00", "beteiligung_abgeschlossen", None, "entscheidung")], actor="ebh.sommer"
    )
    (checks,) = desk.visits(case, "behoerdenbeteiligung")
    assert (checks.overran, checks.excess_office_days) == (True, 23)  # 12-17 … 01-20 without 12-25 and 01-01
    assert case.due_at == utc("2027-07-20 22:00")  # 6 Monate from 01-20
    # The decision step carries the same hint, and its moment is past: it comes again at the next run.
    assert desk.tick_at(berlin("2027-01-20 10:30")) == 1
    assert desk.system_actions(case) == ["untaetigkeitsklage_hinweis", "untaetigkeitsklage_hinweis"]

    case = desk.walk(
        case,
        [
            ("2027-04-14 10:00", "einbuergerung_bewilligt", None, "urkunde"),
        ],
        actor="ebh.sommer",
    )
    assert case.due_at == utc("2027-05-26 22:00")  # 6 Wochen from 04-14
    case = desk.walk(case, [("2027-05-12 11:00", "urkunde_ausgehaendigt", None, "eingebuergert")], actor="ebh.sommer")
    assert (case.status, case.outcome) == ("completed", "eingebuergert")
    # 18 months after filing (Wed 15 Dec 2027) never comes: the step's timers ended with it.
    assert desk.tick_at(utc("2027-12-14 23:00")) == 0
    desk.assert_history_replays(case)


# ====================================================================== kita_platz


def test_a_kita_need_notified_on_the_last_day_of_the_notice_period_ends_with_a_place(desk: Desk) -> None:
    # The child turns one in January 2027; the parents want care from Mon 1 Feb 2027.
    case = desk.open("kita_platz")
    assert (case.step, case.waiting_on, case.due_at) == ("bedarf_klaeren", "KLIENT", utc("2026-03-16 23:00"))
    assert desk.why_not(case, "bedarf_geklaert") == [
        "Es fehlt: Gewünschter Betreuungsbeginn, Altersgruppe des Kindes bei Betreuungsbeginn,"
        " Betreuungsumfang (Wochenstunden)"
    ]
    need = {"betreuungsbeginn": "2027-02-01", "altersgruppe": "u3", "betreuungsumfang": "35"}
    case = desk.walk(case, [("2026-03-19 10:00", "bedarf_geklaert", need, "bedarf_anmelden")])
    (clarified,) = desk.visits(case, "bedarf_klaeren")
    assert (clarified.overran, clarified.excess_office_days) == (True, 3)  # 03-17, 03-18, 03-19
    assert case.due_at == utc("2026-04-02 22:00")  # 10 Arbeitstage from 03-19, before Good Friday
    assert desk.why_not(case, "bedarf_angemeldet") == [
        "Es fehlt: Bedarf beim Jugendamt angemeldet am",
        "Es fehlt: Einwilligung gegenüber Jugendamt (Kita-Platzvergabe)",
    ]

    # 7 months before the start (Wed 1 Jul): the reminder; the family still hesitates.
    assert desk.tick_at(utc("2026-06-30 21:59:59")) == 0
    assert desk.tick_at(utc("2026-06-30 22:00")) == 1
    assert desk.history(case)[-1].action == "anmeldefrist_erinnerung"
    # Notice 6 months ahead is in time up to Sat 1 Aug. The last reminder comes on the last office day
    # of the period (Fri 31 Jul, 00:00 Berlin), while notifying is still in time — not after it.
    assert desk.tick_at(utc("2026-07-30 21:59:59")) == 0
    assert desk.tick_at(utc("2026-07-30 22:00")) == 1
    last = desk.history(case)[-1]
    assert (last.action, desk.options(case)["anmeldefrist_endet"].title) == (
        "anmeldefrist_endet",
        "Letzter Arbeitstag der Anmeldefrist (6 Monate vor Beginn): Bedarf heute anmelden –"
        " ist die Frist schon verstrichen, Betreuungsbeginn ggf. verschieben",
    )

    desk.on("2026-07-31 10:00")
    notice = {"bedarf_angemeldet_am": "2026-07-31"}
    desk.consent(case, "JA", ["identity"], "Anmeldung des Betreuungsbedarfs im Kita-Portal")
    assert desk.refused(case, "bedarf_angemeldet", notice) == [
        "Die Einwilligung gegenüber Jugendamt (Kita-Platzvergabe) deckt nicht ab: Familie und Haushalt"
    ]
    desk.consent(case, "JA", ["family"], "Anmeldung des Betreuungsbedarfs im Kita-Portal", valid_until="2027-07-31")
    case = desk.fire(case, "bedarf_angemeldet", notice)
    assert case.step == "platzvermittlung"
    assert handoff_of(desk.history(case)[-1]) == {
        "from": "KIM-CM",
        "to": "JA",
        "shares": ["betreuungsbeginn", "altersgruppe", "betreuungsumfang", "bedarf_angemeldet_am"],
    }
    (notified,) = desk.visits(case, "bedarf_anmelden")
    # 04-03 … 07-31: 18 (April, without Easter) + 18 (May) + 21 (June) + 23 (July) office days.
    assert (notified.overran, notified.excess_office_days) == (True, 80)
    assert case.due_at == utc("2027-02-01 23:00")  # 6 Monate from 07-31 = Sun 01-31, rolled to Monday

    # The family is abroad for three weeks (a funeral): the Jugendamt's deadline moves by the lost office days.
    desk.on("2026-08-03 10:00")
    case = desk.pause(case, "W-CLIENT", "Familie vorübergehend im Herkunftsland")
    assert desk.why_not(case, "platz_angeboten") == ["Der Fall ist pausiert (W-CLIENT)"]
    desk.on("2026-08-24 10:00")
    case = desk.resume(case)
    assert case.due_at == utc("2027-02-22 23:00")  # 15 office days lost (08-04 … 08-24): 02-01 + 15

    # No place by the desired start: the day after (Tue 2 Feb 2027, 00:00 Berlin) the legal claim is raised.
    assert desk.tick_at(utc("2027-02-01 22:59:59")) == 0
    assert desk.tick_at(utc("2027-02-01 23:00")) == 1
    assert desk.history(case)[-1].action == "rechtsanspruch_hinweis"
    case = desk.walk(
        case,
        [
            ("2027-02-08 10:00", "widerspruch_eingelegt", {"widerspruch_am": "2027-02-08"}, "platzvermittlung"),
            ("2027-03-01 10:00", "platz_angeboten", None, "betreuungsvertrag"),
        ],
    )
    (placement,) = desk.visits(case, "platzvermittlung")
    # 02-23 … 02-26, 03-01
    assert (placement.overran, placement.excess_office_days, placement.paused_seconds) == (True, 5, 21 * DAY)
    assert case.due_at == utc("2027-03-30 22:00")  # 4 Wochen from 03-01 = Easter Monday, rolled to Tuesday
    case = desk.walk(case, [("2027-03-15 15:00", "vertrag_geschlossen", None, "platz_erhalten")])
    assert (case.status, case.outcome) == ("completed", "platz_erhalten")
    desk.assert_history_replays(case)


def test_pausing_a_case_in_a_step_that_waits_on_the_client_moves_its_deadline(
    engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock
) -> None:
    engine.deploy([ROOT / "processes" / "kita_platz.yaml"], actor=KO)
    desk = Desk(engine, engine_factory, clock)
    case = desk.open("kita_platz")  # bedarf_klaeren: waiting_on KLIENT, client_wait_stops_clock
    desk.on("2026-03-05 10:00")
    case = desk.pause(case, "W-CLIENT", "Kind im Krankenhaus")
    desk.on("2026-03-12 10:00")
    case = desk.resume(case)
    assert case.due_at == utc("2026-03-23 23:00")  # 5 office days lost (03-06, 03-09 … 03-12): 03-16 + 5


def test_a_family_arriving_too_late_for_the_six_month_notice_gets_both_reminders_at_once(desk: Desk) -> None:
    case = desk.open("kita_platz")
    need = {"betreuungsbeginn": "2026-08-03", "altersgruppe": "ue3", "betreuungsumfang": "45"}
    case = desk.walk(case, [("2026-03-04 10:00", "bedarf_geklaert", need, "bedarf_anmelden")])
    # 7 months before Mon 3 Aug is Sat 3 Jan (rolled back to Fri 2 Jan), 6 months Tue 3 Feb: both are past
    # and come at once; the second one's text covers the period having passed already.
    assert desk.tick_at(berlin("2026-03-04 10:05")) == 2
    assert desk.system_actions(case) == ["anmeldefrist_erinnerung", "anmeldefrist_endet"]
    assert desk.case(case).step == "bedarf_anmelden"

    desk.on("2026-03-05 09:00")
    desk.consent(case, "JA", ["family"], "Anmeldung des Betreuungsbedarfs")
    case = desk.walk(
        case, [("2026-03-05 09:10", "bedarf_angemeldet", {"bedarf_angemeldet_am": "2026-03-05"}, "platzvermittlung")]
    )
    assert case.due_at == utc("2026-09-07 22:00")  # 6 Monate from 03-05 = Sat 09-05, rolled to Monday
    # The desired start passes without a place: Tue 4 Aug, 00:00 Berlin.
    assert desk.tick_at(utc("2026-08-03 21:59:59")) == 0
    assert desk.tick_at(utc("2026-08-03 22:00")) == 1
    # A place in Kindertagespflege is found privately.
    case = desk.walk(case, [("2026-08-20 10:00", "kein_bedarf_mehr", None, "zurueckgezogen")])
    assert (case.status, case.outcome) == ("completed", "zurueckgezogen")
    assert desk.system_actions(case) == [
        "anmeldefrist_erinnerung",
        "anmeldefrist_endet",
        "rechtsanspruch_hinweis",
    ]
    desk.assert_history_replays(case)


# ====================================================================== strukturhinweis


def test_a_structural_finding_is_sent_back_and_each_new_round_starts_as_a_child_case_with_fresh_input(
    desk: Desk,
) -> None:
    case = desk.open("strukturhinweis", actor=KO, assignee=KO)
    assert case.due_at == utc("2026-03-16 23:00")  # 10 Arbeitstage from 03-02
    assert desk.why_not(case, "muster_erfassen") == [
        "Es fehlt: Betroffener Prozess (ID), Betroffener Schritt (ID), Stockungsursache,"
        " Anzahl betroffener Fälle im Zeitraum"
    ]
    assert desk.why_not(case, "an_ag_weitergeben") == [
        "Bedingung nicht erfüllt: Anzahl betroffener Fälle im Zeitraum ist mindestens 5"
    ]
    pattern = {
        "prozess_id": "chancen_uebergang",
        "prozess_version": 1,
        "schritt_id": "identitaet_klaeren",
        "stelle": "BOT",
        "ursache": "W-EMB",
        "zeitraum_von": "2025-07-01",
        "zeitraum_bis": "2025-12-31",
        "fallzahl": 14,
        "median_arbeitstage": 96,
        "p90_arbeitstage": 171.5,
    }
    case = desk.walk(case, [("2026-03-05 10:00", "muster_erfassen", pattern, "hinweis_erfasst")], actor=KO)
    assert desk.why_not(case, "zurueckstellen") == [
        "Bedingung nicht erfüllt: Anzahl betroffener Fälle im Zeitraum ist kleiner als 5"
    ]
    # Only anonymised figures go to the working group: no consent, a legal basis instead.
    case = desk.walk(case, [("2026-03-06 09:00", "an_ag_weitergeben", None, "ag_analyse")], actor=KO)
    assert handoff_of(desk.history(case)[-1]) == {"from": "KIM-KO", "to": "ARBG", "shares": list(pattern)}
    assert case.due_at == utc("2026-06-08 22:00")  # 3 Monate from 03-06 = Sat 06-06, rolled to Monday

    case = desk.walk(
        case,
        [
            ("2026-04-22 16:00", "projektgruppe_beauftragen", None, "pg_loesung"),
            (
                "2026-07-08 16:00",
                "loesungsvorschlag_vorgelegt",
                {"massnahmenart": "terminkontingent"},
                "lg_entscheidung",
            ),
        ],
        actor=KO,
    )
    assert desk.visits(case, "pg_loesung")[0].due_at == utc("2026-07-22 22:00")  # 3 Monate from 04-22
    assert case.due_at == utc("2027-01-08 23:00")  # 6 Monate from 07-08

    # The steering group sends it back. That is a decision with its reference, and it ends this round:
    # the next round is a child case that carries over the pattern and its figures, nothing else.
    desk.on("2026-11-18 12:00")
    assert desk.refused(case, "zurueckverwiesen") == ["Es fehlt: Beschluss der Lenkungsgruppe"]
    sent_back = {"beschluss_ref": "Lenkungsgruppe 2026-11-18, TOP 3"}
    case = desk.walk(case, [("2026-11-18 12:05", "zurueckverwiesen", sent_back, "an_ag_zurueckverwiesen")], actor=KO)
    assert (case.status, case.outcome) == ("completed", "zurueckverwiesen")
    (second,) = desk.children(case)
    assert (second.process_id, second.child_name, second.step, second.assignee) == (
        "strukturhinweis",
        "ueberarbeitung",
        "hinweis_erfasst",
        KO,
    )
    assert second.data == pattern
    assert second.due_at == utc("2026-12-02 23:00")  # 10 Arbeitstage from 11-18
    assert desk.available(second) == {"muster_erfassen", "an_ag_weitergeben"}
    second = desk.walk(second, [("2026-11-19 09:00", "an_ag_weitergeben", None, "ag_analyse")], actor=KO)
    assert second.due_at == utc("2027-02-19 23:00")  # 3 Monate from 11-19
    # The measure of the first round does not count: the working group proposes anew.
    assert desk.why_not(second, "direkt_zur_entscheidung") == ["Es fehlt: Art der vorgeschlagenen Maßnahme"]
    second = desk.walk(
        second,
        [("2027-01-27 16:00", "direkt_zur_entscheidung", {"massnahmenart": "uebergaberegel"}, "lg_entscheidung")],
        actor=KO,
    )
    assert second.due_at == utc("2027-07-27 22:00")  # 6 Monate from 01-27
    assert desk.why_not(second, "beschlossen") == ["Es fehlt: Beschluss der Lenkungsgruppe"]
    decision = {"beschluss_ref": "Lenkungsgruppe 2027-05-12, TOP 4"}
    second = desk.walk(second, [("2027-05-12 12:00", "beschlossen", decision, "umsetzung")], actor=KO)
    assert second.due_at == utc("2027-08-12 22:00")  # 3 Monate from 05-12

    implemented = {"umgesetzt_am": "2027-08-31", "neue_prozessversion": 2}
    second = desk.walk(second, [("2027-09-01 10:00", "umgesetzt", implemented, "wirkung_beobachten")], actor=KO)
    (implementation,) = desk.visits(second, "umsetzung")
    assert (implementation.overran, implementation.excess_office_days) == (True, 14)  # 08-13 … 09-01
    assert second.due_at == utc("2028-05-02 22:00")  # 8 Monate from 09-01 = Labour Day 2028, rolled to Tuesday
    # 6 months after 31 Aug 2027 is the last day of February: Tue 29 Feb 2028, 00:00 Berlin.
    assert desk.tick_at(utc("2028-02-28 22:59:59")) == 0
    assert desk.tick_at(utc("2028-02-28 23:00")) == 1
    assert desk.history(second)[-1].action == "bewertung_faellig"

    # Only partly effective: the only way on is a new round (closing needs "wirksam").
    assessment = {"wirkung": "teilweise_wirksam", "median_arbeitstage_nachher": 72}
    second = desk.walk(second, [("2028-03-08 10:00", "bewertung_erfassen", assessment, "wirkung_beobachten")], actor=KO)
    assert desk.available(second) == {"bewertung_erfassen", "erneut_analysieren"}
    assert desk.why_not(second, "abschliessen") == [
        "Bedingung nicht erfüllt: Bewertete Wirkung ist „Wirksam (Wartezeit deutlich gesunken)“"
    ]
    second = desk.walk(
        second, [("2028-03-08 10:05", "erneut_analysieren", None, "nicht_ausreichend_wirksam")], actor=KO
    )
    assert (second.status, second.outcome) == ("completed", "nicht_ausreichend_wirksam")

    # The third round keeps what the finding is about; the figures are measured again, after the change.
    (third,) = desk.children(second)
    assert (third.child_name, third.step) == ("neuer_durchlauf", "hinweis_erfasst")
    assert third.data == {
        "prozess_id": "chancen_uebergang",
        "schritt_id": "identitaet_klaeren",
        "stelle": "BOT",
        "ursache": "W-EMB",
    }
    assert third.due_at == utc("2028-03-22 23:00")  # 10 Arbeitstage from 03-08
    assert desk.why_not(third, "muster_erfassen") == ["Es fehlt: Anzahl betroffener Fälle im Zeitraum"]
    figures = {
        "prozess_version": 2,
        "zeitraum_von": "2027-09-01",
        "zeitraum_bis": "2028-02-29",
        "fallzahl": 9,
        "median_arbeitstage": 58,
        "p90_arbeitstage": 97,
    }
    third = desk.walk(
        third,
        [
            ("2028-03-20 10:00", "muster_erfassen", figures, "hinweis_erfasst"),
            ("2028-03-21 09:00", "an_ag_weitergeben", None, "ag_analyse"),
        ],
        actor=KO,
    )
    assert third.due_at == utc("2028-06-21 22:00")  # 3 Monate from 03-21
    # The working group accepts the remaining wait (embassy practice, outside local reach).
    third = desk.walk(third, [("2028-05-10 16:00", "kein_handlungsbedarf", None, "ohne_handlungsbedarf")], actor=KO)
    assert (third.status, third.outcome) == ("completed", "kein_handlungsbedarf")

    assert [visit.step for visit in desk.engine.visits(case.id)] == [
        "hinweis_erfasst",
        "ag_analyse",
        "pg_loesung",
        "lg_entscheidung",
        "an_ag_zurueckverwiesen",
    ]
    assert [visit.step for visit in desk.engine.visits(second.id)] == [
        "hinweis_erfasst",
        "ag_analyse",
        "lg_entscheidung",
        "umsetzung",
        "wirkung_beobachten",
        "nicht_ausreichend_wirksam",
    ]
    desk.assert_history_replays(case)
    desk.assert_history_replays(second)
    desk.assert_history_replays(third)


def test_an_effective_measure_closes_the_finding_and_cannot_start_another_round(desk: Desk) -> None:
    case = desk.open("strukturhinweis", actor=KO, assignee=KO)
    pattern = {"prozess_id": "kita_platz", "schritt_id": "bedarf_anmelden", "ursache": "W-CONS", "fallzahl": 11}
    case = desk.walk(
        case,
        [
            ("2026-03-02 10:00", "muster_erfassen", pattern, "hinweis_erfasst"),
            ("2026-03-03 09:00", "an_ag_weitergeben", None, "ag_analyse"),
            (
                "2026-04-15 16:00",
                "direkt_zur_entscheidung",
                {"massnahmenart": "gemeinsames_formular"},
                "lg_entscheidung",
            ),
            ("2026-05-20 12:00", "beschlossen", {"beschluss_ref": "Lenkungsgruppe 2026-05-20, TOP 2"}, "umsetzung"),
            ("2026-07-01 10:00", "umgesetzt", {"umgesetzt_am": "2026-06-30"}, "wirkung_beobachten"),
        ],
        actor=KO,
    )
    assert case.due_at == utc("2027-03-01 23:00")  # 8 Monate from 07-01
    # 6 months after 30 Jun: Wed 30 Dec, 00:00 Berlin.
    assert desk.tick_at(utc("2026-12-29 22:59:59")) == 0
    assert desk.tick_at(utc("2026-12-29 23:00")) == 1
    assessment = {"wirkung": "wirksam", "median_arbeitstage_nachher": 4}
    case = desk.walk(case, [("2027-01-11 10:00", "bewertung_erfassen", assessment, "wirkung_beobachten")], actor=KO)
    assert desk.available(case) == {"bewertung_erfassen", "abschliessen"}
    assert desk.why_not(case, "erneut_analysieren") == [
        "Bedingung nicht erfüllt: Bewertete Wirkung ist „Teilweise wirksam“ oder „Nicht wirksam“"
    ]
    case = desk.walk(case, [("2027-01-11 10:05", "abschliessen", None, "wirkung_bewertet")], actor=KO)
    assert (case.status, case.outcome) == ("completed", "wirksam")
    assert desk.children(case) == []
    desk.assert_history_replays(case)
