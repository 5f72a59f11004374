"""Run kimflow's benchmarks and print their details and a summary table.

Usage::

    python bench/run.py                 # everything (about 10 minutes on a 2-core machine)
    python bench/run.py --quick         # small counts, a smoke run (< 60 s)
    python bench/run.py --only advance  # or: load, memory (repeatable)

Every figure is a ratio against a baseline measured in the same run (see
bench/README.md). The exit code is 0 whether or not a target is met: these are
measurements, not tests; a benchmark that crashes exits 1.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_advance  # noqa: E402
import bench_load  # noqa: E402
import bench_memory  # noqa: E402

BENCHES = ("advance", "load", "memory")


def machine() -> str:
    import os
    import sqlite3

    import sqlalchemy

    return (
        f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"SQLite {sqlite3.sqlite_version} · SQLAlchemy {sqlalchemy.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run kimflow's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run (< 60 s)")
    parser.add_argument("--only", action="append", choices=BENCHES, help="run only this benchmark (repeatable)")
    parser.add_argument("--memory-budget", type=float, help="seconds for the memory run before extrapolating (0: none)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run of Engine.fire")
    args = parser.parse_args(argv)
    selected = args.only or list(BENCHES)
    mode = "quick" if args.quick else "full"
    print(f"kimflow benchmarks ({mode}) — {machine()}")
    print()
    summary: list[str] = []
    failed = False
    started = time.perf_counter()
    for name in BENCHES:
        if name not in selected:
            continue
        t0 = time.perf_counter()
        try:
            if name == "advance":
                result = bench_advance.run(args.quick, profile=not args.no_profile)
                details, lines = bench_advance.detail_text(result), bench_advance.summary_lines(result)
            elif name == "load":
                result = bench_load.run(args.quick)
                details, lines = bench_load.detail_text(result), bench_load.summary_lines(result)
            else:
                result = bench_memory.run(args.quick, budget=args.memory_budget)
                details, lines = bench_memory.detail_text(result), bench_memory.summary_lines(result)
        except Exception:
            failed = True
            details = traceback.format_exc()
            lines = [f"{name:<16} ERROR (see above)"]
        print(details)
        print(f"  ({name}: {time.perf_counter() - t0:.0f} s)")
        print(flush=True)
        summary.extend(lines)
    print("=" * 100)
    print("\n".join(summary))
    print(f"(total {time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
