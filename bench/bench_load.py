"""Loading and validating 200 definition files: kimflow against plain PyYAML + jsonschema.

``kimflow``
    ``engine.definition.check_files([...])`` on the 200 files: reading, the
    position-keeping hostile-input-safe YAML parse, the JSON Schema, the
    semantic checks, building the frozen model, and the cross-file reference
    check.

``baseline``
    Per file: read the text, ``yaml.load(text, Loader=yaml.CSafeLoader)``, and
    ``validator.validate(data)`` with one ``jsonschema.Draft202012Validator``
    for ``schemas/process.schema.json`` compiled once before timing.

The 200 files are copies of the shipped ``processes/*.yaml`` (those that are
valid), each with its own ``version`` and a varied title; if no shipped file is
valid, synthetic definitions (10 steps, typed fields, conditions, a handoff
with consent, timers on a date field) are generated from a template instead.
Both sides are warmed up once, then timed interleaved; the median of 5 runs is
reported.

Run: ``python bench/bench_load.py [--quick] [--files N] [--synthetic]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = ROOT / "schemas" / "process.schema.json"
PROCESSES = ROOT / "processes"
TARGET = 1.50


# --------------------------------------------------------------------------- the files


def synthetic_definition(index: int) -> str:
    """A realistic ~10-step definition: fields, conditions, a handoff with consent, timers."""
    steps = []
    n = 10
    for s in range(n):
        nxt = f"schritt_{s + 1:02d}" if s + 1 < n else "abgeschlossen"
        steps.append(
            f"""\
  schritt_{s:02d}:
    title: Schritt {s} – Unterlagen prüfen und Termin vereinbaren ({index})
    title_en: Step {s} – check documents and arrange an appointment
    description: >-
      Prüfung der eingereichten Unterlagen, Rückfragen an die Klientin / den Klienten,
      Dokumentation im Fall. Variante {index}.
    agency: KIM-CM
    waiting_on: {"JC" if s % 3 == 0 else "ABH" if s % 3 == 1 else "KLIENT"}
    expected: {5 + s} Arbeitstage
    warn_after: {2 + s // 2} Arbeitstage
    client_wait_stops_clock: true
    legal_refs: [§ 16a SGB II, § 81 AufenthG]
    stall_causes: [W-DOC, W-CLIENT, W-APPT]
    actions:
      erledigt_{s:02d}:
        title: Schritt {s} erledigt
        title_en: Step {s} done
        records: [notiz, anzahl_kinder]
        requires: [notiz]
        when:
          all:
            - {{field: status_pruefung, in: [vollstaendig, nachgereicht]}}
            - {{field: anzahl_kinder, greater_than: -1}}
        next: {nxt}
      nachweis_fehlt_{s:02d}:
        title: Nachweis fehlt – erinnern
        title_en: Evidence missing – remind
        records: [status_pruefung]
      uebergabe_{s:02d}:
        title: An das Jobcenter übergeben
        title_en: Hand over to the Jobcenter
        when: {{field: leistungsbezug, equals: true}}
        handoff:
          to: JC
          shares: [notiz, termin, anzahl_kinder]
          consent_required: true
        next: {nxt}
      frist_erinnerung_{s:02d}:
        title: 'Erinnerung: Termin in 2 Wochen'
        system_only: true
      abbrechen_{s:02d}:
        title: Ohne Ergebnis beenden
        title_en: End without result
        next: ohne_ergebnis
    timers:
      - {{before: 2 Wochen, field: termin, action: frist_erinnerung_{s:02d}}}
      - {{after: 30 Kalendertage, action: frist_erinnerung_{s:02d}}}
"""
        )
    return f"""\
schema_version: 1
id: synth_prozess_{index:03d}
version: 1
title: Synthetischer Prozess {index} (Benchmark)
title_en: Synthetic process {index} (benchmark)
description: Erzeugt von bench/bench_load.py für Lade- und Prüfzeiten.
owner: KIM-Koordination (Benchmark)
legal_refs: [§ 104c AufenthG, § 16a SGB II]
agencies:
  KIM-CM: KIM-Case Management
  KLIENT: Klientin / Klient
  JC: Jobcenter
  ABH: Ausländerbehörde
data:
  notiz:
    type: text
    label: Notiz
    label_en: Note
    category: process
  termin:
    type: date
    label: Termin
    label_en: Appointment
    category: process
  anzahl_kinder:
    type: integer
    label: Kinder im Haushalt
    minimum: 0
    maximum: 20
    category: family
  leistungsbezug:
    type: boolean
    label: Leistungsbezug SGB II
    category: benefits
  status_pruefung:
    type: enum
    label: Stand der Prüfung
    values:
      offen: Offen
      vollstaendig: Vollständig
      nachgereicht: Nachgereicht
    category: process
start: schritt_00
steps:
{"".join(steps)}  abgeschlossen:
    title: Abgeschlossen
    title_en: Completed
    final: true
    outcome: abgeschlossen
  ohne_ergebnis:
    title: Ohne Ergebnis beendet
    final: true
    outcome: ohne_ergebnis
"""


def shipped_sources() -> list[str]:
    """The shipped definitions that are valid on their own and together (texts)."""
    from engine.definition import check_files

    files = sorted(PROCESSES.glob("*.yaml")) + sorted(PROCESSES.glob("*.yml"))
    if not files:
        return []
    definitions, diagnostics = check_files(files)
    bad = {d.file for d in diagnostics}
    return [Path(d.file).read_text(encoding="utf-8") for d in definitions if d.file not in bad]


_VERSION = re.compile(r"^version:\s*\d+\s*$", re.MULTILINE)
_TITLE = re.compile(r"^title:\s*(.+)$", re.MULTILINE)


def vary(text: str, version: int, index: int) -> str:
    """A copy of a shipped definition as another version, with a varied title."""
    text = _VERSION.sub(f"version: {version}", text, count=1)
    return _TITLE.sub(lambda m: f"title: {m.group(1).strip()} – Variante {index}", text, count=1)


def write_files(directory: Path, count: int, synthetic: bool = False) -> tuple[list[Path], str]:
    """Write ``count`` definition files; returns them and where they came from."""
    sources = [] if synthetic else shipped_sources()
    paths = []
    for i in range(count):
        text = vary(sources[i % len(sources)], i // len(sources) + 1, i) if sources else synthetic_definition(i)
        path = directory / f"def_{i:03d}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    if sources:
        origin = f"{len(sources)} shipped processes/*.yaml, each copied as further versions"
    else:
        origin = "synthetic 10-step definitions from the template"
    return paths, origin


# --------------------------------------------------------------------------- timing


def baseline_loader() -> Any:
    import jsonschema
    import yaml

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    loader = yaml.CSafeLoader

    def load(paths: list[Path]) -> None:
        for path in paths:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
            validator.validate(data)

    return load


def kimflow_loader() -> Any:
    from engine.definition import check_files

    def load(paths: list[Path]) -> None:
        definitions, diagnostics = check_files(paths)
        if diagnostics or len(definitions) != len(paths):
            raise RuntimeError(f"kimflow found problems in the generated files: {diagnostics[:3]}")

    return load


def stage_breakdown(paths: list[Path]) -> list[tuple[str, float]]:
    """Where kimflow's time goes, per file in ms: cProfile's cumulative time of the stages."""
    from engine.definition import check_files

    profiler = cProfile.Profile()
    profiler.enable()
    check_files(paths)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    wanted = {
        ("source.py", "parse_source"): "YAML parse with positions (parse_source, all calls)",
        ("definition.py", "_schema_diagnostics"): "JSON Schema (_schema_diagnostics)",
        ("definition.py", "run"): "semantic checks (_SemanticChecker.run)",
        ("definition.py", "build"): "building the model (_SemanticChecker.build)",
        ("definition.py", "check_references"): "cross-file references (check_references)",
        ("definition.py", "_relocator"): "  of which re-parsing for locations (_relocator)",
    }
    found: dict[str, float] = {}
    total = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "check_files":
            total = ct
        key = (os.path.basename(file), name)
        if key in wanted and f"{os.sep}engine{os.sep}" in file:
            found[wanted[key]] = found.get(wanted[key], 0.0) + ct
    n = len(paths)
    rows = [("check_files total (under the profiler)", total / n * 1000)]
    rows += [(label, found[label] / n * 1000) for label in wanted.values() if label in found]
    return rows


def run(quick: bool = False, files: int | None = None, runs: int | None = None, synthetic: bool = False) -> dict:
    count = files or (10 if quick else 200)
    runs = runs or (3 if quick else 5)
    with tempfile.TemporaryDirectory(prefix="kf_bench_defs_") as tmp:
        paths, origin = write_files(Path(tmp), count, synthetic)
        size = sum(p.stat().st_size for p in paths)
        kimflow, baseline = kimflow_loader(), baseline_loader()
        kimflow(paths)  # warm-up: imports, the cached validator, the holiday calendars
        baseline(paths)
        times: dict[str, list[float]] = {"kimflow": [], "baseline": []}
        for _ in range(runs):
            for name, fn in (("kimflow", kimflow), ("baseline", baseline)):
                start = time.perf_counter()
                fn(paths)
                times[name].append(time.perf_counter() - start)
        stages = stage_breakdown(paths)
    k, b = statistics.median(times["kimflow"]), statistics.median(times["baseline"])
    return {
        "files": count,
        "bytes": size,
        "origin": origin,
        "runs": runs,
        "times": times,
        "kimflow": k,
        "baseline": b,
        "ratio": k / b,
        "stages": stages,
    }


def summary_lines(r: dict[str, Any]) -> list[str]:
    verdict = "PASS" if r["ratio"] <= TARGET else "FAIL"
    return [
        f"load {r['files']} files   kimflow {r['kimflow']:.2f} s   baseline {r['baseline']:.2f} s "
        f"ratio {r['ratio']:.2f}  (target <= {TARGET:.2f})  {verdict}"
    ]


def detail_text(r: dict[str, Any]) -> str:
    out = [
        f"[load] {r['files']} files, {r['bytes'] / 1024:.0f} KiB ({r['origin']}); median of {r['runs']} runs",
        f"  kimflow  {r['kimflow']:.3f} s  {r['kimflow'] / r['files'] * 1000:6.2f} ms/file   runs: "
        + ", ".join(f"{t:.3f}" for t in r["times"]["kimflow"]),
        f"  baseline {r['baseline']:.3f} s  {r['baseline'] / r['files'] * 1000:6.2f} ms/file   runs: "
        + ", ".join(f"{t:.3f}" for t in r["times"]["baseline"]),
        "  kimflow stages (cProfile cumulative, ms/file):",
    ]
    out += [f"    {label:<50} {ms:7.2f}" for label, ms in r["stages"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 files, 3 runs")
    parser.add_argument("--files", type=int, help="number of files (default 200)")
    parser.add_argument("--runs", type=int, help="timed runs (default 5)")
    parser.add_argument("--synthetic", action="store_true", help="use the template, not processes/*.yaml")
    args = parser.parse_args(argv)
    result = run(args.quick, args.files, args.runs, args.synthetic)
    print(detail_text(result))
    print()
    print("\n".join(summary_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
