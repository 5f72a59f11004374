"""The Strukturansatz loop: a stall-report candidate becomes a case of the shipped strukturhinweis process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engine import Engine, FixedClock, stall_report
from engine.structural import open_structural_case

ROOT = Path(__file__).resolve().parents[2]
SLOW = """\
schema_version: 1
id: langsam
version: 1
title: Langsamer Prozess
agencies: {ABH: Ausländerbehörde}
steps:
  pruefen:
    title: Prüfen
    agency: ABH
    expected: 5 Arbeitstage
    actions:
      fertig: {title: Fertig, next: ende}
  ende: {title: Ende, final: true, outcome: erledigt}
"""


def test_the_top_candidate_opens_a_structural_case_with_anonymous_figures_only(
    engine: Engine, clock: FixedClock
) -> None:
    engine.deploy([ROOT / "processes" / "strukturhinweis.yaml"], actor="ko")
    engine.deploy_text(SLOW, actor="ko", file="langsam.yaml")
    for _ in range(12):
        case = engine.open_case("langsam", actor="cm01")
        engine.wait_on(case.id, "ABH", reason="W-AUTH", actor="cm01")
        clock.advance(timedelta(days=21))
        engine.fire(case.id, "fertig", actor="cm01")

    report = stall_report(engine, now=clock.now())
    structural = open_structural_case(engine, report, 1, actor="pg01")

    assert structural.process_id == "strukturhinweis"
    assert structural.data["prozess_id"] == "langsam"
    assert structural.data["schritt_id"] == "pruefen"
    assert structural.data["stelle"] == "ABH"
    assert structural.data["ursache"] == "W-AUTH"
    assert structural.data["fallzahl"] == 12
    assert "cm01" not in str(structural.data)
