"""A fresh process (every CLI call, every new API worker) starts with no compiled definitions.

Loading a definition inside a case transaction must use that transaction's connection:
on SQLite a second connection would wait for the write lock its own caller holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine import Engine

PARENT = """\
schema_version: 1
id: parent_proc
version: 1
title: Elternprozess
agencies: {KIM-CM: KIM-Case-Management, JC: Jobcenter}
data:
  jahr: {type: integer, label: Jahr}
steps:
  start:
    title: Start
    agency: KIM-CM
    expected: 5 Arbeitstage
    actions:
      teilfall_starten:
        title: Teilfall starten
        next: warten
        start_child: {process: child_proc, as: kind, copy: [jahr]}
  warten:
    title: Warten auf den Teilfall
    agency: KIM-CM
    waiting_on: JC
    expected: 20 Arbeitstage
    wait_for_child: kind
    on_child_done: teilfall_fertig
    actions:
      teilfall_fertig: {title: Teilfall fertig, next: ende, system_only: true}
  ende: {title: Ende, final: true, outcome: erledigt}
"""
CHILD = """\
schema_version: 1
id: child_proc
version: 1
title: Teilprozess
agencies: {JC: Jobcenter}
data:
  jahr: {type: integer, label: Jahr}
steps:
  pruefen:
    title: Prüfen
    agency: JC
    expected: 10 Arbeitstage
    actions:
      geprueft: {title: Geprüft, next: fertig}
  fertig: {title: Fertig, final: true, outcome: geprueft}
"""


def test_a_fresh_engine_fires_child_starting_actions_and_completes_the_parent(
    engine: Engine, engine_factory: Callable[..., Engine], tmp_path: Path
) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (tmp_path / "child.yaml").write_text(CHILD, encoding="utf-8")
    engine.deploy([tmp_path / "child.yaml", tmp_path / "parent.yaml"], actor="koordination")
    case_id = engine.open_case("parent_proc", actor="cm01", data={"jahr": 1990}).id

    fresh = engine_factory()  # no definitions compiled yet
    parent = fresh.fire(case_id, "teilfall_starten", actor="cm01")
    (child,) = fresh.children(case_id)
    assert parent.step == "warten"
    assert (child.process_ref, child.data) == ("child_proc@1", {"jahr": 1990})

    other = engine_factory()
    other.fire(child.id, "geprueft", actor="jc01")
    assert other.get_case(case_id).status == "completed"
    assert [e.kind for e in other.history(case_id)][-1] == "fired"
    assert other.history(case_id)[-1].actor == "system"
