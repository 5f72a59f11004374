"""Importing a real XES event log: ``import_xes`` against a raw ``iterparse`` of the same file.

``import`` (the figure of the target, 50,000 events/s)
    ``engine.xes.import_xes(engine, receipt.xes, ...)`` into a fresh, migrated SQLite
    file (WAL, ``synchronous=FULL``): parsing, the generated definition (validated and
    deployed like any other), and writing 1,434 cases, 8,577 events and visits with
    their deadline figures in one committed transaction.

``iterparse`` (the baseline)
    ``for _ in xml.etree.ElementTree.iterparse(path): pass`` over the same file: the
    cost of merely reading the XML with the standard library, nothing kept.

``read_log`` (for diagnosis)
    Only the parsing step of the import (expat handlers, timestamps to UTC, arrays).

Each round times all three, interleaved, on the same file; medians over the rounds
are reported, as wall time and as CPU time of this process (SQLite runs in-process,
so that includes the database work but not waiting for fsync; on a shared, loaded
machine it is the steadier figure). The first import in a process also pays one-time costs (compiling the
JSON Schema validator of the definition loader, loading the holiday tables), so one
warm-up import runs first and is reported on its own as ``cold``.

``--export-scale N`` additionally builds a database of about N events (a synthetic
log of 10-event cases, imported) and exports it to a file in a child process,
reporting time and the child's peak memory, also for N/10 events: the export streams,
so the peak must not grow with N.

Data: receipt.xes – J.C.A.M. Buijs, 4TU.ResearchData,
doi:10.4121/uuid:a07386a5-7be3-4367-9535-70bc9e77dbe6 (from ../shared/data/eventlogs/).

Run: ``python bench/bench_xes.py [--quick] [--rounds N] [--export-scale 1000000] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import Engine  # noqa: E402
from engine.xes import import_xes, read_log  # noqa: E402

RECEIPT = ROOT.parent / "shared" / "data" / "eventlogs" / "receipt.xes"
TARGET = 50_000  # events per second


def fresh_engine(directory: Path, name: str) -> Engine:
    engine = Engine(f"sqlite:///{directory / name}.db")
    engine.upgrade_schema()
    return engine


def time_import(directory: Path, path: Path, n: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, events) of one import into a fresh database."""
    engine = fresh_engine(directory, f"import{n}")
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        summary = import_xes(engine, path, process_id=f"receipt_{n}", actor="bench")
        return time.perf_counter() - wall, time.process_time() - cpu, summary.events
    finally:
        engine.store.dispose()


def time_iterparse(path: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in ET.iterparse(path):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def time_read_log(path: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    read_log(path)
    return time.perf_counter() - wall, time.process_time() - cpu


def run(path: Path, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kf-bench-xes-") as tmp:
        directory = Path(tmp)
        cold, _, events = time_import(directory, path, 0)
        imports, parses, reads = [], [], []
        for n in range(1, rounds + 1):
            imports.append(time_import(directory, path, n)[:2])
            parses.append(time_iterparse(path))
            reads.append(time_read_log(path))
    median_import = statistics.median(w for w, _ in imports)
    median_parse = statistics.median(w for w, _ in parses)
    cpu_import = statistics.median(c for _, c in imports)
    cpu_parse = statistics.median(c for _, c in parses)
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "events": events,
        "rounds": rounds,
        "cold_import_s": cold,
        "import_s": median_import,
        "iterparse_s": median_parse,
        "read_log_s": statistics.median(w for w, _ in reads),
        "import_cpu_s": cpu_import,
        "iterparse_cpu_s": cpu_parse,
        "read_log_cpu_s": statistics.median(c for _, c in reads),
        "import_events_per_cpu_s": events / cpu_import,
        "import_over_iterparse_cpu": cpu_import / cpu_parse,
        "import_events_per_s": events / median_import,
        "cold_import_events_per_s": events / cold,
        "iterparse_events_per_s": events / median_parse,
        "import_over_iterparse": median_import / median_parse,
        "target_events_per_s": TARGET,
        "meets_target": events / median_import >= TARGET,
    }


# --------------------------------------------------------------------------- export at scale


def synthetic_log(path: Path, events: int, per_case: int = 10) -> None:
    """A XES log of ``events`` events: cases of ``per_case`` activities an hour to a few days apart."""
    start = datetime(2025, 1, 6, 8, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1849-2016">\n')
        for case in range(events // per_case):
            out.write(f'<trace><string key="concept:name" value="fall-{case}"/>')
            at = start + timedelta(minutes=case)
            for step in range(per_case):
                at += timedelta(hours=1 + (case * 7 + step * 13) % 97)
                out.write(
                    f'<event><string key="concept:name" value="Schritt {(step + case % 3) % per_case}"/>'
                    f'<string key="org:resource" value="cm{case % 40}"/>'
                    f'<date key="time:timestamp" value="{at.isoformat()}"/>'
                    '<string key="lifecycle:transition" value="complete"/></event>'
                )
            out.write("</trace>\n")
        out.write("</log>\n")


_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from engine import Engine
from engine.xes import export_xes
engine = Engine(sys.argv[2])
started = time.perf_counter()
summary = export_xes(engine, sys.argv[3])
elapsed = time.perf_counter() - started
print(summary.events, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def export_at_scale(events: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="kf-bench-xes-export-") as tmp:
        directory = Path(tmp)
        for size in (events // 10, events):
            log = directory / f"synthetic-{size}.xes"
            synthetic_log(log, size)
            engine = fresh_engine(directory, f"scale{size}")
            started = time.perf_counter()
            import_xes(engine, log, process_id="synthetisch", actor="bench")
            imported = time.perf_counter() - started
            url = str(engine.store.engine.url)
            engine.store.dispose()
            output = subprocess.run(
                [sys.executable, "-c", _CHILD, str(ROOT), url, str(directory / "out.xes")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            exported, seconds, peak_kib = int(output[0]), float(output[1]), int(output[2])
            results.append(
                {
                    "events": exported,
                    "import_s": imported,
                    "import_events_per_s": exported / imported,
                    "export_s": seconds,
                    "export_events_per_s": exported / seconds,
                    "export_peak_rss_mib": peak_kib / 1024,
                    "xes_mib": (directory / "out.xes").stat().st_size / 2**20,
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--file", type=Path, default=RECEIPT)
    parser.add_argument("--export-scale", type=int, default=0, metavar="EVENTS")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.file.exists():
        print(f"event log not found: {args.file}", file=sys.stderr)
        return 2
    result = run(args.file, args.rounds or (3 if args.quick else 7))
    scale = export_at_scale(args.export_scale) if args.export_scale else []
    if args.json:
        print(json.dumps({"import": result, "export_scale": scale}, indent=2))
        return 0
    r = result
    print(f"{r['file']} ({r['bytes']:,} bytes, {r['events']:,} events), SQLite, median of {r['rounds']} rounds")
    print(f"  import_xes   {r['import_s'] * 1000:8.1f} ms  {r['import_events_per_s']:>9,.0f} events/s")
    print(f"  (cold, 1st)  {r['cold_import_s'] * 1000:8.1f} ms  {r['cold_import_events_per_s']:>9,.0f} events/s")
    baseline = f"{r['iterparse_s'] * 1000:8.1f} ms  {r['iterparse_events_per_s']:>9,.0f} events/s"
    print(f"  iterparse    {baseline}  (baseline)")
    print(f"  read_log     {r['read_log_s'] * 1000:8.1f} ms  (the import's parsing step alone)")
    print(f"  import / iterparse = {r['import_over_iterparse']:.2f}")
    print(
        f"  CPU time: import {r['import_cpu_s'] * 1000:.1f} ms ({r['import_events_per_cpu_s']:,.0f} events/s), "
        f"iterparse {r['iterparse_cpu_s'] * 1000:.1f} ms, read_log {r['read_log_cpu_s'] * 1000:.1f} ms, "
        f"ratio {r['import_over_iterparse_cpu']:.2f}"
    )
    verdict = "meets" if r["meets_target"] else "MISSES"
    print(f"  target {TARGET:,} events/s: {verdict} ({r['import_events_per_s'] / TARGET:.0%} of target)")
    for s in scale:
        print(
            f"export of {s['events']:,} events: {s['export_s']:.1f} s ({s['export_events_per_s']:,.0f} events/s), "
            f"peak RSS {s['export_peak_rss_mib']:.0f} MiB, {s['xes_mib']:.0f} MiB XES; "
            f"import {s['import_s']:.1f} s ({s['import_events_per_s']:,.0f} events/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
