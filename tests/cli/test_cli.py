"""The ``kimflow`` command line, run in-process (typer's CliRunner) and as a real subprocess.

Every test uses a real SQLite file in ``tmp_path``. The checks are on what people and
scripts see: exit codes (0 done, 1 problems or refused, 2 usage), compiler-style
diagnostics, German one-line messages on stderr without tracebacks, and JSON output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app

REPO = Path(__file__).resolve().parents[2]
PROCESSES = REPO / "processes"
DIAGNOSTIC = re.compile(r"^(?P<file>\S+\.yaml):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>[a-z-]+)\]: .+$")
NOT_SET_UP = "Fehler: Datenbank nicht eingerichtet: kimflow db upgrade ausführen"

# A small process: a loop action, a branch, a consent-checked handoff, a timer, two ends.
WBS_YAML = """\
schema_version: 1
id: wbs_antrag
version: 1
title: Wohnberechtigungsschein beantragen
agencies:
  KIM-CM: KIM-Case Management
  KLIENT: Klientin / Klient
  WOA: Wohnungsamt
data:
  haushaltsgroesse: {type: integer, label: Personen im Haushalt, minimum: 1, maximum: 20, category: family}
  einkommen_unter_grenze: {type: boolean, label: Einkommen unter der Grenze, category: benefits}
  wohnform:
    type: enum
    label: Wohnform
    values: {miete: Mietwohnung, unterkunft: Gemeinschaftsunterkunft}
    category: family
  antrag_datum: {type: date, label: Antrag gestellt am, category: process}
start: haushalt_klaeren
steps:
  haushalt_klaeren:
    title: Haushalt und Einkommen klären
    agency: KIM-CM
    waiting_on: KLIENT
    expected: 10 Arbeitstage
    actions:
      daten_erfassen:
        title: Haushalt und Einkommen erfassen
        records: [haushaltsgroesse, einkommen_unter_grenze, wohnform]
        requires: [haushaltsgroesse, einkommen_unter_grenze]
      antrag_vorbereiten:
        title: Antrag vorbereiten
        when: {field: einkommen_unter_grenze, equals: true}
        next: antrag_stellen
      kein_anspruch:
        title: Einkommen über der Grenze
        when: {field: einkommen_unter_grenze, equals: false}
        next: nicht_berechtigt
  antrag_stellen:
    title: Antrag beim Wohnungsamt stellen
    agency: KIM-CM
    expected: 10 Arbeitstage
    actions:
      antrag_gestellt:
        title: Antrag gestellt
        records: [antrag_datum]
        requires: [antrag_datum]
        handoff: {to: WOA, shares: [haushaltsgroesse, einkommen_unter_grenze]}
        next: bescheid
  bescheid:
    title: Bescheid des Wohnungsamts
    agency: WOA
    expected: 6 Wochen
    actions:
      wbs_erteilt: {title: WBS erteilt, next: erteilt}
      abgelehnt: {title: Antrag abgelehnt, next: nicht_berechtigt}
      nachfragen: {title: 'Erinnerung: nachfragen', system_only: true}
    timers:
      - {after: 2 Wochen, action: nachfragen}
  erteilt: {title: WBS erteilt, final: true, outcome: bewilligt}
  nicht_berechtigt: {title: Kein WBS, final: true, outcome: abgelehnt}
"""

Kimflow = Callable[..., Result]


def _invoke(args: list[str], *, database: str | None) -> Result:
    prefix = ["--database", database] if database else []
    result = CliRunner().invoke(
        app,
        [*prefix, "--actor", "cm-test", *args],
        env={"KIMFLOW_DATABASE_URL": None, "KIMFLOW_ACTOR": None},
    )
    # A refusal is an exit code and a message, never an escaped exception.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "kimflow.db"


@pytest.fixture
def kimflow(database: Path) -> Kimflow:
    """Run ``kimflow --database sqlite:///<tmp>/kimflow.db ARGS…`` in-process."""

    def run(*args: Any) -> Result:
        return _invoke([str(a) for a in args], database=f"sqlite:///{database}")

    return run


@pytest.fixture
def wbs_file(tmp_path: Path) -> Path:
    directory = tmp_path / "processes"
    directory.mkdir()
    path = directory / "wbs_antrag.yaml"
    path.write_text(WBS_YAML, encoding="utf-8")
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    path = tmp_path / "wbs_kaputt.yaml"
    path.write_text(WBS_YAML.replace("requires: [antrag_datum]", "requires: [antrag_datun]"), encoding="utf-8")
    return path


@pytest.fixture
def ready(kimflow: Kimflow, wbs_file: Path) -> Kimflow:
    """A migrated database with the WBS process deployed."""
    assert kimflow("db", "upgrade").exit_code == 0
    assert kimflow("deploy", wbs_file).exit_code == 0
    return kimflow


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _open_case(kimflow: Kimflow, *data: str) -> int:
    args = [item for pair in (("--data", d) for d in data) for item in pair]
    return int(_json(kimflow("case", "open", "wbs_antrag", *args, "--format", "json"))["id"])


def _error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- validate


def test_validate_accepts_a_valid_file(kimflow: Kimflow, wbs_file: Path) -> None:
    result = kimflow("validate", wbs_file)
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines()[-1] == "1 Definition gültig"


def test_validate_prints_one_compiler_style_line_per_problem(kimflow: Kimflow, broken_file: Path) -> None:
    result = kimflow("validate", broken_file)
    assert result.exit_code == 1
    *problems, summary = result.stdout.strip().splitlines()
    assert summary == "1 Problem in 1 Datei"
    match = DIAGNOSTIC.match(problems[0])
    assert match is not None, problems
    assert match["file"].endswith("wbs_kaputt.yaml")
    assert match["code"] == "unknown-field"
    assert int(match["line"]) == WBS_YAML.splitlines().index("        requires: [antrag_datum]") + 1
    assert int(match["col"]) == len("        requires: [") + 1
    assert "antrag_datun" in problems[0] and "(did you mean 'antrag_datum'?)" in problems[0]


def test_validate_counts_problems_across_files(kimflow: Kimflow, broken_file: Path, wbs_file: Path) -> None:
    other = broken_file.with_name("noch_kaputter.yaml")
    other.write_text(WBS_YAML.replace("id: wbs_antrag", "id: wbs_zwei").replace("agency: WOA\n", "agency: WAO\n"))
    result = kimflow("validate", broken_file, other, wbs_file)
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "2 Probleme in 2 Dateien"


def test_validate_json_lists_diagnostics_as_dicts(kimflow: Kimflow, broken_file: Path, wbs_file: Path) -> None:
    result = kimflow("validate", broken_file, wbs_file, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["files"] == 2
    (diagnostic,) = report["diagnostics"]
    assert diagnostic["code"] == "unknown-field"
    assert diagnostic["file"].endswith("wbs_kaputt.yaml")
    assert {"line", "column", "severity", "message", "path", "hint"} <= diagnostic.keys()


def test_validate_json_of_valid_files(kimflow: Kimflow, wbs_file: Path) -> None:
    report = _json(kimflow("validate", wbs_file.parent, "--format", "json"))
    assert report == {"valid": True, "files": 1, "definitions": ["wbs_antrag@1"], "diagnostics": []}


def test_validate_a_missing_path_is_a_usage_error(kimflow: Kimflow, tmp_path: Path) -> None:
    result = kimflow("validate", tmp_path / "gibt-es-nicht")
    assert result.exit_code == 2
    assert "Pfad nicht gefunden" in _error_line(result)


def test_validate_an_empty_directory_finds_nothing_to_check(kimflow: Kimflow, tmp_path: Path) -> None:
    (tmp_path / "leer").mkdir()
    result = kimflow("validate", tmp_path / "leer")
    assert result.exit_code == 1
    assert "Keine Prozessdefinitionen" in result.stdout


def test_validate_defaults_to_the_processes_directory(
    wbs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke(["validate"], database=None)
    assert result.exit_code == 0
    assert result.stdout.strip() == "1 Definition gültig"


def test_the_shipped_processes_are_valid(kimflow: Kimflow) -> None:
    result = kimflow("validate", PROCESSES)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip().endswith("Definitionen gültig")


def test_an_unknown_option_is_a_usage_error(kimflow: Kimflow) -> None:
    assert kimflow("validate", "--gibt-es-nicht").exit_code == 2


# --------------------------------------------------------------------------- database


@pytest.mark.parametrize(
    "args",
    [
        ("case", "list"),
        ("case", "show", "1"),
        ("case", "open", "wbs_antrag"),
        ("processes", "list"),
        ("deploy", "."),
        ("tick",),
    ],
)
def test_a_fresh_database_asks_for_db_upgrade(kimflow: Kimflow, database: Path, args: tuple[str, ...]) -> None:
    result = kimflow(*args)
    assert result.exit_code == 1
    assert _error_line(result) == NOT_SET_UP
    assert not database.exists()  # asking does not leave an empty database behind


def test_an_empty_database_file_asks_for_db_upgrade(kimflow: Kimflow, database: Path) -> None:
    database.touch()
    result = kimflow("case", "list")
    assert result.exit_code == 1
    assert _error_line(result) == NOT_SET_UP


def test_db_current_compares_with_the_newest_revision(kimflow: Kimflow) -> None:
    before = kimflow("db", "current", "--format", "json")
    assert before.exit_code == 1
    assert json.loads(before.stdout)["current"] is None
    upgraded = kimflow("db", "upgrade")
    assert upgraded.exit_code == 0
    assert "Datenbankschema aktualisiert" in upgraded.stdout
    after = _json(kimflow("db", "current", "--format", "json"))
    assert after["up_to_date"] is True
    assert after["current"] == after["head"]
    again = kimflow("db", "upgrade")
    assert again.exit_code == 0
    assert "ist aktuell" in again.stdout


def test_an_unusable_database_url_is_one_line(kimflow: Kimflow, tmp_path: Path) -> None:
    result = _invoke(["db", "upgrade"], database=f"sqlite:///{tmp_path / 'fehlt' / 'x.db'}")
    assert result.exit_code == 1
    assert _error_line(result).startswith("Fehler: Datenbankfehler: ")


# --------------------------------------------------------------------------- deploy, processes, diagram


def test_deploy_twice_reports_new_then_unchanged(kimflow: Kimflow, wbs_file: Path) -> None:
    kimflow("db", "upgrade")
    first = kimflow("deploy", wbs_file.parent)
    assert first.exit_code == 0
    assert re.search(r"^wbs_antrag@1\s+neu\s+Wohnberechtigungsschein", first.stdout, re.MULTILINE)
    second = kimflow("deploy", wbs_file.parent)
    assert second.exit_code == 0
    assert re.search(r"^wbs_antrag@1\s+unverändert", second.stdout, re.MULTILINE)
    assert second.stdout.strip().endswith("0 neu, 1 unverändert")
    (deployment,) = _json(kimflow("deploy", wbs_file, "--format", "json"))
    assert deployment["ref"] == "wbs_antrag@1"
    assert deployment["created"] is False
    assert deployment["deployed_by"] == "cm-test"


def test_deploy_refuses_invalid_files_with_diagnostics(kimflow: Kimflow, broken_file: Path) -> None:
    kimflow("db", "upgrade")
    result = kimflow("deploy", broken_file)
    assert result.exit_code == 1
    first, *diagnostics = result.stderr.strip().splitlines()
    assert first == "Fehler: 1 Problem in 1 Datei"
    assert [DIAGNOSTIC.match(line)["code"] for line in diagnostics] == ["unknown-field"]  # type: ignore[index]
    assert "Traceback" not in result.output


def test_deploy_refuses_changed_content_under_a_deployed_version(ready: Kimflow, wbs_file: Path) -> None:
    wbs_file.write_text(WBS_YAML.replace("expected: 6 Wochen", "expected: 5 Wochen"), encoding="utf-8")
    result = ready("deploy", wbs_file)
    assert result.exit_code == 1
    assert "error[version-exists]" in result.stderr


def test_deploy_a_missing_path_is_a_usage_error(ready: Kimflow, tmp_path: Path) -> None:
    assert ready("deploy", tmp_path / "fehlt").exit_code == 2


def test_processes_list_and_show(ready: Kimflow, wbs_file: Path) -> None:
    assert _json(ready("processes", "list", "--format", "json")) == [
        {"id": "wbs_antrag", "versions": [1], "latest": 1, "title": "Wohnberechtigungsschein beantragen"}
    ]
    text = ready("processes", "show", "wbs_antrag")
    assert text.exit_code == 0
    assert "Stelle: KIM-CM · wartet auf: KLIENT · erwartet: 10 Arbeitstage" in text.stdout
    assert "antrag_stellen / antrag_gestellt: KIM-CM → WOA" in text.stdout
    summary = _json(ready("processes", "show", "wbs_antrag", "--version", "1", "--format", "json"))
    assert [s["id"] for s in summary["steps"]][:3] == ["haushalt_klaeren", "antrag_stellen", "bescheid"]
    assert summary["steps"][2]["expected"] == "6 Wochen"
    assert summary["handoffs"][0]["to"] == "WOA"
    source = ready("processes", "show", "wbs_antrag", "--source")
    assert source.stdout == wbs_file.read_text(encoding="utf-8")


def test_diagram_prints_mermaid(ready: Kimflow) -> None:
    result = ready("diagram", "wbs_antrag")
    assert result.exit_code == 0
    assert result.stdout.startswith("stateDiagram-v2\n")
    assert "haushalt_klaeren --> antrag_stellen: Antrag vorbereiten" in result.stdout


def test_an_unknown_process_is_one_line(ready: Kimflow) -> None:
    result = ready("diagram", "gibt_es_nicht")
    assert result.exit_code == 1
    assert _error_line(result) == "Fehler: Prozess 'gibt_es_nicht' ist nicht bereitgestellt (kimflow deploy ausführen)"


# --------------------------------------------------------------------------- cases


def test_open_fire_show_and_history(ready: Kimflow) -> None:
    opened = ready("case", "open", "wbs_antrag", "--data", "haushaltsgroesse=3", "--assignee", "cm01")
    assert opened.exit_code == 0
    assert opened.stdout.strip() == "Fall 1 geöffnet (wbs_antrag@1, Schritt „Haushalt und Einkommen klären“)"

    fired = ready("case", "fire", 1, "daten_erfassen", "-d", "einkommen_unter_grenze=ja", "-d", "wohnform=miete",
                  "--format", "json")  # fmt: skip
    case = _json(fired)
    assert case["data"] == {"haushaltsgroesse": 3, "einkommen_unter_grenze": True, "wohnform": "miete"}
    assert case["step"] == "haushalt_klaeren"
    assert case["version"] == 2

    moved = ready("case", "fire", 1, "antrag_vorbereiten", "--expected-version", 2)
    assert moved.exit_code == 0
    assert "Schritt „Antrag beim Wohnungsamt stellen“ (Version 3)" in moved.stdout

    shown = _json(ready("case", "show", 1, "--format", "json"))
    assert shown["step"] == "antrag_stellen"
    assert shown["step_title"] == "Antrag beim Wohnungsamt stellen"
    assert shown["assignee"] == "cm01"
    assert shown["status"] == "open"
    text = ready("case", "show", 1)
    assert "Wohnform (wohnform): Mietwohnung" in text.stdout
    assert "Einkommen unter der Grenze (einkommen_unter_grenze): ja" in text.stdout

    history = _json(ready("case", "history", 1, "--format", "json"))
    assert [(e["seq"], e["kind"], e["action"], e["actor"]) for e in history] == [
        (1, "opened", None, "cm-test"),
        (2, "fired", "daten_erfassen", "cm-test"),
        (3, "fired", "antrag_vorbereiten", "cm-test"),
    ]
    assert history[2]["from_step"] == "haushalt_klaeren" and history[2]["to_step"] == "antrag_stellen"
    assert "eröffnet" in ready("case", "history", 1).stdout


def test_actions_shows_available_and_unavailable_with_reasons(ready: Kimflow) -> None:
    case_id = _open_case(ready)
    text = ready("case", "actions", case_id)
    assert text.exit_code == 0
    assert "Nicht verfügbar:" in text.stdout
    assert "daten_erfassen: Haushalt und Einkommen erfassen – Es fehlt: Personen im Haushalt" in text.stdout
    options = {o["name"]: o for o in _json(ready("case", "actions", case_id, "--format", "json"))}
    assert set(options) == {"daten_erfassen", "antrag_vorbereiten", "kein_anspruch"}
    assert options["daten_erfassen"]["available"] is False
    assert options["daten_erfassen"]["reasons"][0]["code"] == "missing-data"
    assert options["antrag_vorbereiten"]["reasons"][0]["code"] == "condition"


def test_a_refused_action_names_the_german_reason(ready: Kimflow) -> None:
    case_id = _open_case(ready, "haushaltsgroesse=2", "einkommen_unter_grenze=ja")
    ready("case", "fire", case_id, "antrag_vorbereiten")
    result = ready("case", "fire", case_id, "antrag_gestellt", "--data", "antrag_datum=2026-03-02")
    assert result.exit_code == 1
    assert _error_line(result) == (
        f"Fehler: Fall {case_id}: Aktion 'antrag_gestellt' ist derzeit nicht möglich: "
        "Es fehlt: Einwilligung gegenüber Wohnungsamt"
    )
    assert _json(ready("case", "show", case_id, "--format", "json"))["version"] == 2  # nothing changed


def test_a_consent_unlocks_the_handoff_and_revoking_it_locks_it_again(ready: Kimflow) -> None:
    case_id = _open_case(ready, "haushaltsgroesse=2", "einkommen_unter_grenze=true")
    ready("case", "fire", case_id, "antrag_vorbereiten")
    consent = ready(
        "case", "consent", case_id, "--to", "WOA", "--purpose", "WBS-Antrag", "--category", "family",
        "--category", "benefits", "--valid-until", "2027-12-31", "--format", "json",
    )  # fmt: skip
    recorded = _json(consent)
    assert recorded["recipient"] == "WOA" and recorded["categories"] == ["benefits", "family"]
    revoked = ready("case", "revoke-consent", case_id, recorded["id"])
    assert revoked.exit_code == 0
    assert revoked.stdout.strip() == f"Einwilligung Nr. {recorded['id']} von Fall {case_id} widerrufen"
    refused = ready("case", "fire", case_id, "antrag_gestellt", "-d", "antrag_datum=2026-03-02")
    assert refused.exit_code == 1
    ready("case", "consent", case_id, "--to", "WOA", "--purpose", "WBS-Antrag", "--category", "family",
          "--category", "benefits")  # fmt: skip
    fired = ready("case", "fire", case_id, "antrag_gestellt", "-d", "antrag_datum=2026-03-02")
    assert fired.exit_code == 0
    assert "Schritt „Bescheid des Wohnungsamts“" in fired.stdout
    assert len(_json(ready("case", "show", case_id, "--format", "json"))["consents"]) == 2


def test_a_consent_without_categories_is_refused(ready: Kimflow) -> None:
    case_id = _open_case(ready)
    result = ready("case", "consent", case_id, "--to", "WOA", "--purpose", "WBS-Antrag")
    assert result.exit_code == 1
    assert "ungültige Daten" in _error_line(result)


def test_a_stale_expected_version_is_refused(ready: Kimflow) -> None:
    case_id = _open_case(ready, "haushaltsgroesse=2", "einkommen_unter_grenze=ja")
    ready("case", "assign", case_id, "cm02")
    result = ready("case", "fire", case_id, "antrag_vorbereiten", "--expected-version", 1)
    assert result.exit_code == 1
    assert _error_line(result) == (
        f"Fehler: Fall {case_id} wurde inzwischen geändert (erwartete Version 1, aktuelle Version 2) "
        "– neu laden und erneut versuchen"
    )


def test_an_action_of_another_step_lists_the_possible_ones(ready: Kimflow) -> None:
    case_id = _open_case(ready)
    result = ready("case", "fire", case_id, "wbs_erteilt")
    assert result.exit_code == 1
    assert _error_line(result) == (
        f"Fehler: Fall {case_id}: Aktion 'wbs_erteilt' gibt es im Schritt 'haushalt_klaeren' nicht "
        "(mögliche Aktionen: daten_erfassen, antrag_vorbereiten, kein_anspruch)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("haushaltsgroesse=drei", "haushaltsgroesse (Personen im Haushalt): 'drei' ist keine ganze Zahl"),
        ("einkommen_unter_grenze=vielleicht", "'vielleicht' ist weder ja noch nein"),
        ("wohnform=schloss", "'schloss' ist keiner der Werte miete, unterkunft"),
        ("haushaltsgrösse=3", "wbs_antrag@1 hat kein Feld 'haushaltsgrösse' (meinten Sie 'haushaltsgroesse'?)"),
        ("haushaltsgroesse", "--data erwartet feld=wert, nicht 'haushaltsgroesse'"),
        ("haushaltsgroesse=99", "ungültige Daten – haushaltsgroesse: greater than the maximum 20"),
    ],
)
def test_bad_data_is_refused_in_one_line(ready: Kimflow, data: str, message: str) -> None:
    case_id = _open_case(ready)
    result = ready("case", "fire", case_id, "daten_erfassen", "--data", data)
    assert result.exit_code == 1
    assert message in _error_line(result)


def test_pause_resume_assign_close(ready: Kimflow) -> None:
    case_id = _open_case(ready, "haushaltsgroesse=2", "einkommen_unter_grenze=nein")
    paused = ready("case", "pause", case_id, "--reason", "W-DOC", "--note", "Einkommensnachweis fehlt")
    assert paused.stdout.strip() == f"Fall {case_id} pausiert (W-DOC)"
    refused = ready("case", "fire", case_id, "kein_anspruch")
    assert refused.exit_code == 1
    assert "Der Fall ist pausiert (W-DOC)" in _error_line(refused)
    again = ready("case", "pause", case_id, "--reason", "W-DOC")
    assert "bereits pausiert" in _error_line(again)
    assert ready("case", "resume", case_id).exit_code == 0
    assert ready("case", "assign", case_id, "cm02").stdout.strip() == f"Fall {case_id} ist cm02 zugewiesen"
    listed = _json(ready("case", "list", "--assignee", "cm02", "--status", "open", "--format", "json"))
    assert [c["id"] for c in listed] == [case_id]
    closed = ready("case", "close", case_id, "--outcome", "verzogen", "--reason", "Umzug", "--format", "json")
    assert _json(closed)["status"] == "closed"
    after = ready("case", "fire", case_id, "kein_anspruch")
    assert _error_line(after) == f"Fehler: Fall {case_id} ist beendet und kann nicht mehr geändert werden"


def test_cancel_and_list(ready: Kimflow) -> None:
    first, second = _open_case(ready), _open_case(ready)
    assert ready("case", "cancel", first, "--reason", "doppelt angelegt").stdout.strip() == f"Fall {first} storniert"
    assert [c["id"] for c in _json(ready("case", "list", "--status", "open", "--format", "json"))] == [second]
    listed = ready("case", "list", "--process", "wbs_antrag")
    assert listed.exit_code == 0
    assert "storniert" in listed.stdout and "offen" in listed.stdout
    assert ready("case", "list", "--step", "bescheid").stdout.strip() == "Keine Fälle gefunden"


def test_completing_a_case_says_so(ready: Kimflow) -> None:
    case_id = _open_case(ready, "haushaltsgroesse=2", "einkommen_unter_grenze=nein")
    result = ready("case", "fire", case_id, "kein_anspruch")
    assert result.exit_code == 0
    assert f"Fall {case_id} abgeschlossen: abgelehnt" in result.stdout


def test_an_unknown_case_is_one_line(ready: Kimflow) -> None:
    result = ready("case", "show", 99)
    assert result.exit_code == 1
    assert _error_line(result) == "Fehler: Fall 99 gibt es nicht"


def test_tick_reports_fired_and_skipped(ready: Kimflow) -> None:
    assert _json(ready("tick", "--format", "json")) == {"fired": 0, "skipped": 0}
    assert ready("tick").stdout.strip() == "Zeitgeber: 0 ausgelöst, 0 übersprungen"


# --------------------------------------------------------------------------- simulate


def test_simulate_works_on_a_fresh_database_in_the_working_directory(
    wbs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke(["simulate", "--cases", "15", "--months", "3", "--seed", "2"], database=None)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "kimflow.db").exists()
    assert result.stdout.startswith("Simulation: 15 Fälle über 3 Monate (Seed 2)")
    assert re.search(r"^wbs_antrag\s+15\s", result.stdout, re.MULTILINE)
    assert re.search(r"^Summe\s+15\s", result.stdout, re.MULTILINE)
    assert "Dauer:" in result.stdout
    assert len(_json(_invoke(["case", "list", "--format", "json"], database=None))) == 15
    again = _invoke(["simulate", "--cases", "5", "--months", "1", "--format", "json"], database=None)
    summary = _json(again)
    assert summary["total"]["opened"] == 5
    assert summary["processes"]["wbs_antrag"]["opened"] == 5


def test_simulate_the_shipped_processes(kimflow: Kimflow) -> None:
    result = kimflow("simulate", "--cases", "16", "--months", "3", "--start", "2026-01-05", "--processes", PROCESSES)
    assert result.exit_code == 0, result.stderr
    assert "05.01.2026" in result.stdout.splitlines()[0]


def test_simulate_refuses_a_bad_start_date(kimflow: Kimflow, wbs_file: Path) -> None:
    result = kimflow("simulate", "--start", "gestern", "--processes", wbs_file.parent)
    assert result.exit_code == 1
    assert _error_line(result) == "Fehler: --start: 'gestern' ist kein Datum YYYY-MM-DD"


# --------------------------------------------------------------------------- as a real process


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIMFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_python_m_api_cli_validates_and_exits_1_on_problems(broken_file: Path, tmp_path: Path) -> None:
    result = _run_module("validate", str(broken_file), cwd=tmp_path)
    assert result.returncode == 1
    first, summary = result.stdout.strip().splitlines()
    assert DIAGNOSTIC.match(first)
    assert summary == "1 Problem in 1 Datei"


def test_python_m_api_cli_on_a_fresh_database_prints_one_line(tmp_path: Path) -> None:
    result = _run_module("case", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == NOT_SET_UP + "\n"
    assert result.stdout == ""
    assert not (tmp_path / "kimflow.db").exists()


def test_python_m_api_cli_usage_error_exits_2(tmp_path: Path) -> None:
    assert _run_module("case", "fire", cwd=tmp_path).returncode == 2


def test_waiting_on_someone_and_a_finding_on_a_case_that_did_not_stall(ready: Kimflow) -> None:
    case_id = _open_case(ready)
    waiting = ready("case", "wait", case_id, "KLIENT", "--reason", "W-DOC", "--format", "json")
    assert _json(waiting)["waiting_on"] == "KLIENT"
    unknown = ready("case", "wait", case_id, "XYZ", "--reason", "W-DOC")
    assert unknown.exit_code == 1
    assert "XYZ" in _error_line(unknown)
    refused = ready("case", "finding", case_id, "--code", "W-AUTH", "--text", "Wohnungsamt vergibt keine Termine")
    assert refused.exit_code == 1
    assert "nicht überfällig" in _error_line(refused)
