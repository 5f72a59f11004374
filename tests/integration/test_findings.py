"""Structural findings: only on stalled visits, only with a taxonomy code, never quoting the case's own data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import Engine, FindingNotAllowed, FixedClock, InvalidCaseData

PROCESS = """\
schema_version: 1
id: termin
version: 1
title: Terminvergabe
agencies: {KIM-CM: KIM-Case-Management, ABH: Ausländerbehörde}
data:
  nachname: {type: string, label: Nachname, category: identity}
  status: {type: enum, label: Status, values: {zulassung: Zulassung, anspruch: Anspruch}}
steps:
  termin:
    title: Termin bei der ABH
    agency: ABH
    expected: 5 Arbeitstage
    warn_after: 3 Arbeitstage
    actions:
      termin_erhalten: {title: Termin erhalten, next: ende}
  ende: {title: Ende, final: true, outcome: erledigt}
"""


@pytest.fixture
def case_id(engine: Engine) -> int:
    engine.deploy_text(PROCESS, actor="ko", file="termin.yaml")
    return engine.open_case("termin", actor="cm01", data={"nachname": "Okonkwo", "status": "zulassung"}).id


def test_a_visit_on_time_takes_no_finding(engine: Engine, case_id: int) -> None:
    with pytest.raises(FindingNotAllowed):
        engine.add_finding(case_id, code="W-APPT", text="Keine freien Termine bei der ABH", actor="cm01")


def test_a_stalled_visit_takes_a_finding_that_names_enum_values_but_not_personal_text(
    engine: Engine, clock: FixedClock, case_id: int
) -> None:
    clock.advance(timedelta(days=10))  # past the 5 office days
    finding = engine.add_finding(
        case_id, code="W-APPT", text="Zulassung: keine freien Termine bei der ABH", actor="cm01"
    )
    assert finding > 0
    with pytest.raises(InvalidCaseData) as quoted:
        engine.add_finding(case_id, code="W-APPT", text="Frau Okonkwo wartet seit Wochen", actor="cm01")
    assert "nachname" in quoted.value.problems["text"]
    with pytest.raises(InvalidCaseData) as unknown:
        engine.add_finding(case_id, code="TERMINE", text="Keine freien Termine", actor="cm01")
    assert "unknown reason code" in unknown.value.problems["reason"]
