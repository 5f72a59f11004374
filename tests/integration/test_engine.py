"""The engine facade end to end, on SQLite and PostgreSQL (see ``database_url`` in conftest).

Every change must be one transaction: the case row, one new event, the step visits and
the timers move together or not at all. Most tests end by replaying the history and
comparing it with the stored case (``assert_history_explains_case``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import (
    SYSTEM_ACTOR,
    ActionNotAllowed,
    ActionUnavailable,
    CaseClosed,
    CaseNotFound,
    ConcurrentUpdate,
    ConsentNotFound,
    DefinitionConflict,
    DefinitionError,
    DefinitionNotFound,
    Engine,
    FixedClock,
    InvalidCaseData,
    TickResult,
)
from engine.history import rebuild_visits, replay
from tests.factories import FIELDS, STEPS, assert_history_explains_case, process_yaml

# intake --forward (requires name)-----------> review --approve--> approved (final)
#        --fast_track (when age < 27)-------->        --reject---> rejected (final)
#        --hand_over (handoff to JC, consent)->       --remind_expiry (system, timer before permit_expires)
#        --escalate (system, timer after 1 week)
FULL_STEPS: dict[str, Any] = copy.deepcopy(STEPS)
FULL_STEPS["intake"]["actions"].update(
    {
        "capture": {"title": "Daten erfassen", "records": ["name", "age", "path", "permit_expires", "urgent"]},
        "fast_track": {"title": "Schnellverfahren", "when": {"field": "age", "less_than": 27}, "next": "review"},
        "hand_over": {
            "title": "An das Jobcenter übergeben",
            "handoff": {"to": "JC", "shares": ["name", "age"]},
            "next": "review",
        },
        "escalate": {"title": "Eskalieren", "system_only": True},
    }
)
FULL_STEPS["intake"]["timers"] = [{"after": "1 Woche", "action": "escalate"}]
FULL_STEPS["review"]["actions"]["remind_expiry"] = {"title": "An Ablauf erinnern", "system_only": True}
FULL_STEPS["review"]["timers"] = [{"before": "6 Wochen", "field": "permit_expires", "action": "remind_expiry"}]
INTAKE_ACTIONS = ("capture", "forward", "fast_track", "hand_over", "escalate")

FULL = process_yaml(steps=FULL_STEPS)
ACTOR = "anna.schmidt"

# A parent that starts a child case and waits for it.
CHILD = process_yaml(
    id="sprachpruefung",
    title="Sprachprüfung",
    data={"name": FIELDS["name"], "age": FIELDS["age"]},
    steps={
        "testing": {
            "title": "Prüfung",
            "agency": "JC",
            "expected": "2 Wochen",
            "actions": {"passed": {"title": "Bestanden", "next": "done"}},
        },
        "done": {"title": "Erledigt", "final": True, "outcome": "bestanden"},
    },
)
PARENT_STEPS: dict[str, Any] = {
    "intake": {
        "title": "Erfassung",
        "agency": "KIM-CM",
        "expected": "3 Arbeitstage",
        "actions": {
            "order_test": {
                "title": "Sprachprüfung beauftragen",
                "start_child": {"process": "sprachpruefung", "as": "pruefung", "copy": ["name", "age"]},
                "next": "waiting",
            }
        },
    },
    "waiting": {
        "title": "Warten auf die Prüfung",
        "agency": "KIM-CM",
        "expected": "4 Wochen",
        "wait_for_child": "pruefung",
        "on_child_done": "test_done",
        "actions": {"test_done": {"title": "Prüfung abgeschlossen", "system_only": True, "next": "done"}},
    },
    "done": {"title": "Abgeschlossen", "final": True, "outcome": "abgeschlossen"},
}
PARENT = process_yaml(id="begleitung", title="Begleitung", steps=PARENT_STEPS)


def deployed(engine: Engine, *texts: str) -> Engine:
    for text in texts:
        engine.deploy_text(text, actor="koordination")
    return engine


def at(day: int, hour: int = 8, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


# --------------------------------------------------------------------------- deploying


def test_redeploying_the_same_content_is_a_no_op(engine: Engine) -> None:
    first = engine.deploy_text(FULL, actor="koordination")
    again = engine.deploy_text(FULL, actor="someone.else")

    assert (first.ref, first.created) == ("intake@1", True)
    assert (again.ref, again.created, again.deployed_by) == ("intake@1", False, "koordination")
    assert [d.ref for d in engine.registry.list()] == ["intake@1"]


def test_a_version_deployed_with_other_content_is_a_conflict_at_the_version_line(engine: Engine) -> None:
    engine.deploy_text(FULL, actor="koordination")
    changed = FULL.replace("title: Aufnahme", "title: Aufnahme (geändert)", 1)

    with pytest.raises(DefinitionConflict) as caught:
        engine.deploy_text(changed, actor="koordination", file="processes/intake.yaml")

    (diagnostic,) = caught.value.diagnostics
    version_line = changed.splitlines().index("version: 1") + 1
    assert (diagnostic.file, diagnostic.line, diagnostic.code) == (
        "processes/intake.yaml",
        version_line,
        "version-exists",
    )
    assert diagnostic.hint == "deploy the change as version 2"
    assert engine.process("intake").title == "Aufnahme"


def test_an_invalid_definition_deploys_nothing(engine: Engine, tmp_path: Any) -> None:
    (tmp_path / "a_valid.yaml").write_text(FULL, encoding="utf-8")
    (tmp_path / "b_broken.yaml").write_text(FULL.replace("next: review", "next: nowhere"), encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        engine.deploy([tmp_path], actor="koordination")

    assert {d.code for d in caught.value.diagnostics} >= {"unknown-step"}
    assert all(d.file.endswith("b_broken.yaml") for d in caught.value.diagnostics)
    assert engine.registry.list() == []


def test_cases_stay_on_the_version_they_were_opened_with(engine: Engine) -> None:
    deployed(engine, FULL)
    old = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    v2_steps = copy.deepcopy(FULL_STEPS)
    v2_steps["review"]["title"] = "Prüfung durch das Jobcenter"
    v2_steps["review"]["actions"]["send_back"] = {"title": "Zurückgeben", "next": "intake"}
    deployed(engine, process_yaml(version=2, steps=v2_steps))

    new = engine.open_case("intake", actor=ACTOR, data={"name": "Bilal"})
    engine.fire(old.id, "forward", actor=ACTOR)
    engine.fire(new.id, "forward", actor=ACTOR)

    assert (engine.get_case(old.id).process_version, engine.get_case(new.id).process_version) == (1, 2)
    assert [a.name for a in engine.available_actions(old.id)] == ["approve", "reject", "remind_expiry"]
    assert [a.name for a in engine.available_actions(new.id)] == ["approve", "reject", "remind_expiry", "send_back"]
    with pytest.raises(ActionNotAllowed):
        engine.fire(old.id, "send_back", actor=ACTOR)
    assert engine.process("intake").version == 2
    assert engine.process("intake", 1).steps["review"].title == "Prüfung"


def test_an_unknown_process_is_not_found(engine: Engine) -> None:
    with pytest.raises(DefinitionNotFound) as caught:
        engine.open_case("gibt_es_nicht", actor=ACTOR)
    assert (caught.value.process_id, caught.value.version) == ("gibt_es_nicht", None)


# --------------------------------------------------------------------------- opening


def test_opening_a_case_records_the_start(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    clock.set(at(2, 9))

    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal", "age": 31}, assignee="anna")

    assert (case.id, case.step, case.status, case.version) == (case.id, "intake", "open", 1)
    assert (case.data, case.assignee, case.waiting_on) == ({"name": "Amal", "age": 31}, "anna", "KIM-CM")
    assert case.due_at == at(5, 23)  # Mon 09:00 UTC + 3 Arbeitstage: until the end of Thursday, Berlin time
    (event,) = engine.history(case.id)
    assert (event.kind, event.actor, event.from_step, event.to_step) == ("opened", ACTOR, None, "intake")
    assert event.changes == {"name": [None, "Amal"], "age": [None, 31]}
    assert event.detail["process"] == "intake@1"
    (visit,) = engine.visits(case.id)
    assert (visit.step, visit.entered_at, visit.left_at, visit.due_at) == ("intake", at(2, 9), None, at(5, 23))
    assert visit.warn_at == at(4, 23)
    assert_history_explains_case(engine, case.id)


def test_opening_with_invalid_data_names_each_bad_field_and_writes_nothing(engine: Engine) -> None:
    deployed(engine, FULL)

    with pytest.raises(InvalidCaseData) as caught:
        engine.open_case(
            "intake",
            actor=ACTOR,
            data={"name": "x" * 41, "age": "einunddreißig", "shoe_size": 42, "path": "p99", "urgent": True},
        )

    problems = caught.value.problems
    assert set(problems) == {"name", "age", "shoe_size", "path"}
    assert problems["name"] == "longer than 40 characters"
    assert problems["age"] == "expected a whole number"
    assert problems["shoe_size"] == "unknown field for intake@1"
    assert "'p99' is not one of" in problems["path"]
    assert engine.list_cases() == []


def test_field_types_are_enforced(engine: Engine) -> None:
    deployed(engine, FULL)
    bad = {
        "age": (-1, "less than the minimum 0"),
        "income": ("viel", "expected a number"),
        "urgent": ("ja", "expected true or false"),
        "permit_expires": ("30.06.2026", "'30.06.2026' is not a date YYYY-MM-DD"),
        "note": (7, "expected text"),
    }
    more = {"age": [(131, "greater than the maximum 130"), (True, "expected a whole number")]}

    with pytest.raises(InvalidCaseData) as caught:
        engine.open_case("intake", actor=ACTOR, data={name: value for name, (value, _) in bad.items()})
    assert caught.value.problems == {name: problem for name, (_, problem) in bad.items()}
    for name, cases in more.items():
        for value, problem in cases:
            with pytest.raises(InvalidCaseData) as again:
                engine.open_case("intake", actor=ACTOR, data={name: value})
            assert again.value.problems == {name: problem}


def test_a_missing_case_is_not_found(engine: Engine) -> None:
    with pytest.raises(CaseNotFound) as caught:
        engine.get_case(999)
    assert caught.value.case_id == 999


# --------------------------------------------------------------------------- available actions


def _reasons(engine: Engine, case_id: int) -> dict[str, list[str]]:
    return {a.name: [r.code for r in a.reasons] for a in engine.available_actions(case_id)}


def test_available_actions_say_why_not(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"age": 40})

    options = {a.name: a for a in engine.available_actions(case.id)}

    assert list(options) == list(INTAKE_ACTIONS)
    assert options["capture"].available and options["capture"].reasons == ()
    assert options["capture"].asks_for == ("name", "age", "path", "permit_expires", "urgent")
    forward = options["forward"].reasons
    assert [(r.code, r.fields) for r in forward] == [("missing-data", ("name",))]
    assert (forward[0].message, forward[0].message_en) == ("Es fehlt: Name", "missing: Name")
    (condition,) = options["fast_track"].reasons
    assert condition.code == "condition"
    assert condition.message == "Bedingung nicht erfüllt: Alter ist kleiner als 27"
    assert condition.message_en == "condition not met: Age is less than 27"
    (consent,) = options["hand_over"].reasons
    assert (consent.code, consent.agency) == ("missing-consent", "JC")
    assert consent.message == "Es fehlt: Einwilligung gegenüber Jobcenter"
    assert [r.code for r in options["escalate"].reasons] == ["system-only"]
    assert [name for name, option in options.items() if option.available] == ["capture"]


def test_a_paused_case_offers_no_action(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.pause(case.id, reason="W-DOC", actor=ACTOR)

    reasons = _reasons(engine, case.id)

    assert all("paused" in codes for codes in reasons.values())
    assert not any(a.available for a in engine.available_actions(case.id))


# --------------------------------------------------------------------------- firing


def test_firing_moves_the_case_and_records_everything(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    clock.set(at(2, 9))
    case = engine.open_case("intake", actor=ACTOR)
    clock.set(at(3, 10))

    captured = engine.fire(case.id, "capture", actor=ACTOR, data={"name": "Amal", "age": 31}, expected_version=1)
    clock.set(at(4, 11))
    moved = engine.fire(case.id, "forward", actor=ACTOR, expected_version=2)

    assert (captured.step, captured.version, captured.data) == ("intake", 2, {"name": "Amal", "age": 31})
    stored = engine.get_case(case.id)
    assert (stored.step, stored.version, stored.status, stored.waiting_on) == ("review", 3, "open", "JC")
    assert moved.step == stored.step and moved.version == stored.version
    assert stored.due_at == at(18, 23)  # 2 Wochen from Wed 4 March: until the end of Wed 18 March
    _, capture, forward = engine.history(case.id)
    assert (capture.kind, capture.action, capture.from_step, capture.to_step) == (
        "fired",
        "capture",
        "intake",
        "intake",
    )
    assert capture.changes == {"name": [None, "Amal"], "age": [None, 31]}
    assert (forward.action, forward.from_step, forward.to_step, forward.changes) == ("forward", "intake", "review", {})
    assert (forward.at, forward.actor, forward.seq) == (at(4, 11), ACTOR, 3)
    first, second = engine.visits(case.id)
    assert (first.step, first.entered_at, first.left_at, first.overran) == ("intake", at(2, 9), at(4, 11), False)
    assert (second.step, second.entered_at, second.left_at, second.due_at) == ("review", at(4, 11), None, at(18, 23))
    assert_history_explains_case(engine, case.id)


def test_leaving_a_step_after_its_deadline_marks_the_visit_overrun(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    clock.set(at(5, 23, second=1))

    engine.fire(case.id, "forward", actor=ACTOR)

    assert engine.visits(case.id)[0].overran is True


def test_data_entered_with_an_action_is_checked_against_what_it_records(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})

    with pytest.raises(InvalidCaseData) as caught:
        engine.fire(case.id, "forward", actor=ACTOR, data={"name": "Bilal", "age": 3})

    assert caught.value.problems == {"age": "this action does not record this field"}
    assert len(engine.history(case.id)) == 1
    assert engine.get_case(case.id).data == {"name": "Amal"}


def test_required_data_can_come_with_the_action(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)

    moved = engine.fire(case.id, "forward", actor=ACTOR, data={"name": "Amal"})

    assert (moved.step, moved.data) == ("review", {"name": "Amal"})
    assert_history_explains_case(engine, case.id)


def test_an_unknown_action_is_not_allowed_and_lists_the_allowed_ones(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)

    with pytest.raises(ActionNotAllowed, match="possible actions: capture, forward") as caught:
        engine.fire(case.id, "approve", actor=ACTOR)

    assert (caught.value.action, caught.value.step, caught.value.allowed) == ("approve", "intake", INTAKE_ACTIONS)
    assert len(engine.history(case.id)) == 1


def test_a_system_only_action_is_refused_for_people(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)

    with pytest.raises(ActionNotAllowed, match="fired automatically") as caught:
        engine.fire(case.id, "escalate", actor=ACTOR)

    assert caught.value.action == "escalate"
    assert len(engine.history(case.id)) == 1


def test_a_failing_condition_makes_the_action_unavailable_and_writes_nothing(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"age": 40})

    with pytest.raises(ActionUnavailable, match="condition not met: Age is less than 27") as caught:
        engine.fire(case.id, "fast_track", actor=ACTOR)

    assert [r.code for r in caught.value.reasons] == ["condition"]
    assert engine.get_case(case.id).version == 1


def test_a_condition_sees_the_data_entered_with_the_action(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"age": 20})

    moved = engine.fire(case.id, "fast_track", actor=ACTOR)

    assert moved.step == "review"


def test_a_stale_expected_version_is_refused_and_nothing_is_written(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    engine.fire(case.id, "capture", actor=ACTOR, data={"name": "Amal"}, expected_version=1)

    with pytest.raises(ConcurrentUpdate) as caught:
        engine.fire(case.id, "capture", actor="bob", data={"name": "Bilal"}, expected_version=1)

    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert len(engine.history(case.id)) == 2
    assert engine.get_case(case.id).data == {"name": "Amal"}
    for operation in (
        lambda: engine.pause(case.id, reason="W-DOC", actor="bob", expected_version=1),
        lambda: engine.assign(case.id, "bob", actor="bob", expected_version=1),
        lambda: engine.close(case.id, outcome="x", reason="y", actor="bob", expected_version=1),
        lambda: engine.record_consent(
            case.id, recipient="JC", purpose="p", categories=["identity"], actor="bob", expected_version=1
        ),
    ):
        with pytest.raises(ConcurrentUpdate):
            operation()
    assert len(engine.history(case.id)) == 2


# --------------------------------------------------------------------------- consent


def test_a_handoff_needs_a_consent_and_a_revoked_consent_blocks_it_again(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})

    consent = engine.record_consent(
        case.id, recipient="JC", purpose="Übergabe an das Jobcenter", categories=["identity"], actor=ACTOR
    )
    assert _reasons(engine, case.id)["hand_over"] == []
    engine.revoke_consent(case.id, consent.id, actor=ACTOR)

    assert _reasons(engine, case.id)["hand_over"] == ["missing-consent"]
    with pytest.raises(ActionUnavailable) as caught:
        engine.fire(case.id, "hand_over", actor=ACTOR)
    assert [(r.code, r.agency) for r in caught.value.reasons] == [("missing-consent", "JC")]
    (stored,) = engine.consents(case.id)
    assert (stored.recipient, stored.categories, stored.revoked_by) == ("JC", ("identity",), ACTOR)
    kinds = [e.kind for e in engine.history(case.id)]
    assert kinds == ["opened", "consent_recorded", "consent_revoked"]
    assert_history_explains_case(engine, case.id)


def test_a_handoff_with_consent_records_what_was_shared(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.record_consent(case.id, recipient="JC", purpose="Übergabe", categories=["identity"], actor=ACTOR)

    engine.fire(case.id, "hand_over", actor=ACTOR)

    last = engine.history(case.id)[-1]
    assert last.detail["handoff"] == {"from": "KIM-CM", "to": "JC", "shares": ["name", "age"]}
    assert last.to_step == "review"


def test_a_consent_must_name_every_data_category_the_handoff_shares(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.record_consent(case.id, recipient="JC", purpose="Übergabe", categories=["residence"], actor=ACTOR)

    (option,) = [a for a in engine.available_actions(case.id) if a.name == "hand_over"]

    (reason,) = option.reasons
    assert (reason.code, reason.agency, reason.fields) == ("missing-consent", "JC", ("identity",))
    assert reason.message == "Die Einwilligung gegenüber Jobcenter deckt nicht ab: Identität"
    with pytest.raises(ActionUnavailable):
        engine.fire(case.id, "hand_over", actor=ACTOR)


def test_a_consent_for_another_agency_or_an_expired_one_does_not_cover_the_handoff(
    engine: Engine, clock: FixedClock
) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    engine.record_consent(case.id, recipient="ABH", purpose="Übergabe", categories=["identity"], actor=ACTOR)
    engine.record_consent(
        case.id, recipient="JC", purpose="Übergabe", categories=["identity"], valid_until="2026-03-01", actor=ACTOR
    )

    assert _reasons(engine, case.id)["hand_over"] == ["missing-consent"]


def test_consent_input_is_validated(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)

    with pytest.raises(InvalidCaseData) as caught:
        engine.record_consent(
            case.id, recipient="XYZ", purpose=" ", categories=["gossip"], valid_until="morgen", actor=ACTOR
        )

    assert set(caught.value.problems) == {"recipient", "purpose", "categories", "valid_until"}
    with pytest.raises(InvalidCaseData) as no_categories:
        engine.record_consent(case.id, recipient="JC", purpose="Übergabe", categories=[], actor=ACTOR)
    assert set(no_categories.value.problems) == {"categories"}
    with pytest.raises(ConsentNotFound) as missing:
        engine.revoke_consent(case.id, 4711, actor=ACTOR)
    assert missing.value.consent_id == 4711
    assert len(engine.history(case.id)) == 1


def test_a_consent_cannot_be_revoked_twice(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    consent = engine.record_consent(case.id, recipient="JC", purpose="Übergabe", categories=["identity"], actor=ACTOR)
    engine.revoke_consent(case.id, consent.id, actor=ACTOR)

    with pytest.raises(ConsentNotFound):
        engine.revoke_consent(case.id, consent.id, actor=ACTOR)


def test_a_consent_can_still_be_revoked_after_the_case_ended(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    consent = engine.record_consent(case.id, recipient="JC", purpose="Übergabe", categories=["identity"], actor=ACTOR)
    engine.close(case.id, outcome="verzogen", reason="Klient verzogen", actor=ACTOR)

    engine.revoke_consent(case.id, consent.id, actor=ACTOR)

    assert engine.consents(case.id)[0].revoked_at is not None
    assert_history_explains_case(engine, case.id)


# --------------------------------------------------------------------------- pause, resume, assign


def test_pausing_extends_the_deadline_by_the_office_days_lost(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    clock.set(at(2, 9))
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})  # due end of Thu 5 March
    clock.set(at(3, 9))

    engine.pause(case.id, reason="W-DOC", note="Pass fehlt", actor=ACTOR)
    clock.set(at(5, 9))
    first = engine.resume(case.id, actor=ACTOR)  # Wed 4 and Thu 5 lost: due end of Mon 9 March
    clock.set(at(6, 9))
    engine.pause(case.id, reason="W-CLIENT", actor=ACTOR)
    clock.set(at(6, 10))
    second = engine.resume(case.id, actor=ACTOR)  # within one day: no office day lost

    assert (first.due_at, second.due_at) == (at(9, 23), at(9, 23))
    (visit,) = engine.visits(case.id)
    assert (visit.paused_seconds, visit.paused_since) == (2 * 86400 + 3600, None)
    assert (visit.due_at, visit.warn_at) == (at(9, 23), at(6, 23))
    kinds = [(e.kind, e.detail.get("reason"), e.detail.get("paused_seconds")) for e in engine.history(case.id)]
    assert kinds[1:] == [
        ("paused", "W-DOC", None),
        ("resumed", None, 2 * 86400),
        ("paused", "W-CLIENT", None),
        ("resumed", None, 3600),
    ]
    assert_history_explains_case(engine, case.id)


def test_a_pause_needs_a_known_reason_code(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)

    with pytest.raises(InvalidCaseData) as caught:
        engine.pause(case.id, reason="Urlaub", actor=ACTOR)

    assert "unknown reason code 'Urlaub'" in caught.value.problems["reason"]
    assert len(engine.history(case.id)) == 1


def test_a_paused_case_cannot_be_moved_paused_again_or_resumed_twice(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})

    with pytest.raises(ActionUnavailable, match="not paused"):
        engine.resume(case.id, actor=ACTOR)
    paused = engine.pause(case.id, reason="W-DOC", actor=ACTOR)
    with pytest.raises(ActionUnavailable, match="already paused"):
        engine.pause(case.id, reason="W-DOC", actor=ACTOR)
    with pytest.raises(ActionUnavailable) as caught:
        engine.fire(case.id, "forward", actor=ACTOR)

    assert (paused.paused, paused.pause_reason) == (True, "W-DOC")
    assert [r.code for r in caught.value.reasons] == ["paused"]
    assert len(engine.history(case.id)) == 2


def test_assigning_records_who_was_responsible_before(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, assignee="anna")

    engine.assign(case.id, "bernd", actor="teamleitung")
    unassigned = engine.assign(case.id, None, actor="teamleitung")

    assert unassigned.assignee is None
    details = [e.detail for e in engine.history(case.id) if e.kind == "assigned"]
    assert details == [{"assignee": "bernd", "previous": "anna"}, {"assignee": None, "previous": "bernd"}]
    engine.assign(case.id, "carla", actor="teamleitung")
    assert [c.id for c in engine.list_cases(assignee="carla")] == [case.id]
    assert_history_explains_case(engine, case.id)


# --------------------------------------------------------------------------- ending


def test_reaching_a_final_step_completes_the_case_with_its_outcome(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)
    clock.set(at(9, 12))

    done = engine.fire(case.id, "approve", actor="jc.mitarbeiter")

    assert (done.step, done.status, done.outcome, done.closed_at) == ("approved", "completed", "bewilligt", at(9, 12))
    assert (done.due_at, done.waiting_on, done.is_open) == (None, None, False)
    final_visit = engine.visits(case.id)[-1]
    assert (final_visit.step, final_visit.entered_at, final_visit.left_at) == ("approved", at(9, 12), at(9, 12))
    with pytest.raises(CaseClosed) as caught:
        engine.fire(case.id, "reject", actor=ACTOR)
    assert caught.value.status == "completed"
    assert engine.list_cases(status="completed")[0].id == case.id
    assert_history_explains_case(engine, case.id)


@pytest.mark.parametrize(
    ("end", "status", "outcome"),
    [("close", "closed", "verzogen"), ("cancel", "cancelled", "storniert")],
)
def test_closing_or_cancelling_ends_the_case(
    engine: Engine, clock: FixedClock, end: str, status: str, outcome: str
) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.pause(case.id, reason="W-CLIENT", actor=ACTOR)
    clock.set(at(3))

    if end == "close":
        ended = engine.close(case.id, outcome="verzogen", reason="Klient verzogen", actor=ACTOR)
    else:
        ended = engine.cancel(case.id, reason="irrtümlich angelegt", actor=ACTOR)

    assert (ended.status, ended.outcome, ended.closed_at, ended.paused) == (status, outcome, at(3), False)
    assert engine.visits(case.id)[-1].left_at == at(3)
    assert engine.history(case.id)[-1].kind == status
    for operation in (
        lambda: engine.fire(case.id, "forward", actor=ACTOR),
        lambda: engine.resume(case.id, actor=ACTOR),
        lambda: engine.assign(case.id, "bob", actor=ACTOR),
        lambda: engine.close(case.id, outcome="x", reason="y", actor=ACTOR),
        lambda: engine.cancel(case.id, reason="y", actor=ACTOR),
    ):
        with pytest.raises(CaseClosed):
            operation()
    clock.set(at(20))
    assert engine.tick().fired == 0  # the step's timer went with the case
    assert_history_explains_case(engine, case.id)


# --------------------------------------------------------------------------- timers


def test_an_after_timer_fires_once_when_due(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    due = at(9, 23)  # 1 Woche from Mon 2 March: until the end of Mon 9 March, Berlin time

    clock.set(due - timedelta(seconds=1))
    early = engine.tick()
    clock.set(due)
    first = engine.tick()
    second = engine.tick()

    assert (early.fired, first.fired, first.skipped, second.fired, second.skipped) == (0, 1, 0, 0, 0)
    last = engine.history(case.id)[-1]
    assert (last.kind, last.action, last.actor, last.at) == ("fired", "escalate", SYSTEM_ACTOR, due)
    assert isinstance(last.detail["timer_id"], int)
    assert_history_explains_case(engine, case.id)


def test_a_timer_relative_to_a_date_field_is_armed_at_the_right_instant(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "capture", actor=ACTOR, data={"permit_expires": "2026-06-30"})
    engine.fire(case.id, "forward", actor=ACTOR)
    # 6 Wochen before Tue 30 June is Tue 19 May; 00:00 in Berlin (CEST) is 22:00 UTC the day before.
    due = at(18, 22, month=5)

    clock.set(due - timedelta(seconds=1))
    early = engine.tick()
    clock.set(due)
    fired = engine.tick()

    assert (early.fired, fired.fired) == (0, 1)
    assert engine.history(case.id)[-1].action == "remind_expiry"


def test_a_date_timer_without_its_date_is_not_armed(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)

    clock.set(datetime(2027, 1, 1, tzinfo=UTC))

    assert engine.tick() == TickResult(fired=0, skipped=0)


def test_leaving_a_step_cancels_its_timers(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)

    clock.set(at(30))
    result = engine.tick()

    assert (result.fired, result.skipped) == (0, 0)
    assert [e.action for e in engine.history(case.id)] == [None, "forward"]


def test_a_timer_whose_action_is_unavailable_is_skipped_once(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR)
    engine.pause(case.id, reason="W-DOC", actor=ACTOR)

    clock.set(at(30))
    first = engine.tick()
    second = engine.tick()

    assert (first.fired, first.skipped, second.fired, second.skipped) == (0, 1, 0, 0)
    assert [e.kind for e in engine.history(case.id)] == ["opened", "paused"]


# --------------------------------------------------------------------------- child cases


def test_a_child_case_gets_the_copied_fields_and_its_completion_advances_the_parent(
    engine: Engine, clock: FixedClock
) -> None:
    deployed(engine, CHILD, PARENT)
    parent = engine.open_case("begleitung", actor=ACTOR, data={"name": "Amal", "age": 31, "urgent": True})

    waiting = engine.fire(parent.id, "order_test", actor=ACTOR)
    (child,) = engine.children(parent.id)
    clock.set(at(4))
    engine.fire(child.id, "passed", actor="sprachschule")

    assert waiting.step == "waiting"
    assert (child.process_id, child.parent_id, child.child_name) == ("sprachpruefung", parent.id, "pruefung")
    assert child.data == {"name": "Amal", "age": 31}
    spawned = engine.history(parent.id)[1]
    assert spawned.detail["child"] == {"name": "pruefung", "case_id": child.id, "process": "sprachpruefung@1"}
    after = engine.get_case(parent.id)
    assert (after.step, after.status, after.outcome) == ("done", "completed", "abgeschlossen")
    last = engine.history(parent.id)[-1]
    assert (last.actor, last.action, last.at) == (SYSTEM_ACTOR, "test_done", at(4))
    assert (
        last.detail.items()
        >= {"child_case_id": child.id, "child_outcome": "bestanden", "child_status": "completed"}.items()
    )
    assert_history_explains_case(engine, parent.id)
    assert_history_explains_case(engine, child.id)


def test_a_parent_not_yet_waiting_is_not_advanced_by_its_child(engine: Engine) -> None:
    steps = copy.deepcopy(PARENT_STEPS)
    steps["intake"]["actions"]["order_test"]["next"] = "prepare"
    steps["prepare"] = {
        "title": "Vorbereiten",
        "agency": "KIM-CM",
        "expected": "1 Woche",
        "actions": {"ready": {"title": "Bereit", "next": "waiting"}},
    }
    deployed(engine, CHILD, process_yaml(id="begleitung", steps=steps))
    parent = engine.open_case("begleitung", actor=ACTOR, data={"name": "Amal"})
    engine.fire(parent.id, "order_test", actor=ACTOR)
    (child,) = engine.children(parent.id)

    engine.fire(child.id, "passed", actor="sprachschule")

    assert engine.get_case(parent.id).step == "prepare"
    assert engine.get_case(child.id).status == "completed"


def test_a_paused_parent_does_not_block_its_child_from_completing(engine: Engine) -> None:
    deployed(engine, CHILD, PARENT)
    parent = engine.open_case("begleitung", actor=ACTOR, data={"name": "Amal"})
    engine.fire(parent.id, "order_test", actor=ACTOR)
    (child,) = engine.children(parent.id)
    engine.pause(parent.id, reason="W-CLIENT", actor=ACTOR)

    done = engine.fire(child.id, "passed", actor="sprachschule")

    assert done.status == "completed"
    assert engine.get_case(parent.id).step == "waiting"
    assert_history_explains_case(engine, parent.id)
    resumed = engine.resume(parent.id, actor=ACTOR)  # and now the parent catches up with its child
    assert (resumed.step, resumed.status) == ("done", "completed")
    kinds = [(e.kind, e.actor) for e in engine.history(parent.id)]
    assert kinds[-3:] == [("paused", ACTOR), ("resumed", ACTOR), ("fired", SYSTEM_ACTOR)]
    assert_history_explains_case(engine, parent.id)


def test_a_parent_waiting_for_a_cancelled_child_is_advanced(engine: Engine) -> None:
    deployed(engine, CHILD, PARENT)
    parent = engine.open_case("begleitung", actor=ACTOR, data={"name": "Amal"})
    engine.fire(parent.id, "order_test", actor=ACTOR)
    (child,) = engine.children(parent.id)

    engine.cancel(child.id, reason="doppelt angelegt", actor=ACTOR)

    assert engine.get_case(parent.id).step == "done"
    last = engine.history(parent.id)[-1]
    assert (
        last.detail.items()
        >= {"child_case_id": child.id, "child_outcome": "storniert", "child_status": "cancelled"}.items()
    )
    assert_history_explains_case(engine, parent.id)
    assert_history_explains_case(engine, child.id)


def test_a_fresh_engine_can_read_the_actions_of_existing_cases(engine: Engine, engine_factory: Any) -> None:
    """A new process (CLI call, restarted server) has compiled nothing yet."""
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    fresh = engine_factory(busy_timeout_ms=500)

    options = fresh.available_actions(case.id)

    assert [o.name for o in options] == list(INTAKE_ACTIONS)


# --------------------------------------------------------------------------- history


def test_replay_with_the_final_steps_tells_a_completed_case(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)
    engine.fire(case.id, "approve", actor=ACTOR)
    finals = {"approved": "bewilligt", "rejected": "abgelehnt"}

    replayed = replay(engine.history(case.id), final_steps=finals)
    visits = rebuild_visits(engine.history(case.id), final_steps=finals)

    assert (replayed.step, replayed.status, replayed.outcome, replayed.version) == (
        "approved",
        "completed",
        "bewilligt",
        3,
    )
    assert [step for step, _, _ in visits] == ["intake", "review", "approved"]
    assert visits[-1][1] == visits[-1][2]


def test_the_history_alone_tells_that_a_case_completed(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)
    engine.fire(case.id, "approve", actor=ACTOR)

    replayed = replay(engine.history(case.id))

    assert (replayed.status, replayed.outcome) == ("completed", "bewilligt")


def test_an_action_back_into_its_own_step_is_a_new_visit_in_the_history(engine: Engine) -> None:
    steps = copy.deepcopy(FULL_STEPS)
    steps["review"]["actions"]["restart"] = {"title": "Prüfung neu beginnen", "next": "review"}
    deployed(engine, process_yaml(steps=steps))
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.fire(case.id, "forward", actor=ACTOR)

    engine.fire(case.id, "restart", actor=ACTOR)

    assert [v.step for v in engine.visits(case.id)] == ["intake", "review", "review"]
    assert_history_explains_case(engine, case.id)


def test_setting_a_field_to_nothing_is_in_the_history(engine: Engine) -> None:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})

    engine.fire(case.id, "capture", actor=ACTOR, data={"urgent": None})

    assert engine.history(case.id)[-1].changes == {"urgent": [None, None]}
    assert_history_explains_case(engine, case.id)


def test_case_data_must_be_storable(engine: Engine) -> None:
    """PostgreSQL's JSONB cannot hold NaN, Infinity or NUL: refused as data, not as a database error."""
    deployed(engine, FULL)
    with pytest.raises(InvalidCaseData) as caught:
        engine.open_case("intake", actor=ACTOR, data={"income": float("nan"), "note": "Am\x00al"})
    assert set(caught.value.problems) == {"income", "note"}
    with pytest.raises(InvalidCaseData):
        engine.open_case("intake", actor=ACTOR, data={"income": float("inf")})


def _history_of_a_busy_case(engine: Engine) -> list[Any]:
    deployed(engine, FULL)
    case = engine.open_case("intake", actor=ACTOR, data={"name": "Amal"})
    engine.assign(case.id, "bernd", actor=ACTOR)
    engine.fire(case.id, "forward", actor=ACTOR)
    return engine.history(case.id)


def test_replay_refuses_a_broken_history(engine: Engine) -> None:
    events = _history_of_a_busy_case(engine)
    broken = {
        "empty history": [],
        "starts with an 'opened' event": events[1:],
        "not contiguous": [events[0], events[2]],
        "unknown kind": [*events[:2], dataclasses.replace(events[2], kind="teleported")],
        "belongs to case 999": [*events[:2], dataclasses.replace(events[2], case_id=999)],
        "opened a second time": [*events[:2], dataclasses.replace(events[2], kind="opened")],
    }

    for message, history in broken.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            replay(history)
        with pytest.raises(ValueError, match=re.escape(message)):
            rebuild_visits(history)


def test_replay_refuses_a_change_that_is_not_old_and_new(engine: Engine) -> None:
    events = _history_of_a_busy_case(engine)
    broken = [*events[:2], dataclasses.replace(events[2], changes={"name": "Bilal"})]

    with pytest.raises(ValueError, match=re.escape("change of 'name' in event 3 is not [old, new]")):
        replay(broken)
