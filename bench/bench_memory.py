"""Peak memory with 100,000 cases: open them (and fire one action on each) through the Engine.

A fresh subprocess (so nothing else inflates its memory) creates an Engine on a
SQLite file in a temporary directory (WAL, ``synchronous=FULL``: the engine's
settings), deploys the benchmark cycle process and, case after case, calls
``Engine.open_case`` and then ``Engine.fire`` once on the new case. It reports
the peak resident set size in MiB (Linux ``VmHWM``; ``ru_maxrss`` is printed beside
it but inherits the launching process's peak across fork + exec), the RSS right
after start-up (imports, schema, deployment) for comparison, and the rates of
opens and fires.

Every case is a durable transaction, so 100,000 cases take minutes. With a time
budget (default 180 s; ``--budget 0``: none) the run stops when the budget is
spent and *extrapolates* the peak linearly to the target count from the RSS
samples of its second half; the summary then says so.

Run: ``python bench/bench_memory.py [--quick] [--cases N] [--budget SECONDS]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_MB = 200.0
SAMPLE_EVERY = 1000


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def current_rss_mb() -> float:
    """The current resident set size (VmRSS) in MiB."""
    return _status_mb("VmRSS:") or float("nan")


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_rss_mb() -> float:
    """Peak RSS of this process in MiB.

    ``ru_maxrss`` survives ``execve``: a subprocess started with fork/vfork + exec
    inherits the peak of the process that launched it (run.py has ~110 MiB after the
    other benchmarks). Linux's ``VmHWM`` is the peak of this process image alone, so
    it is used where available; ``ru_maxrss`` is reported beside it.
    """
    return _status_mb("VmHWM:") or ru_maxrss_mb()


def child(cases: int, budget: float) -> dict[str, Any]:
    """Runs in the subprocess: open and fire ``cases`` cases, or as many as the budget allows."""
    from bench_advance import ACTION_AB, ACTOR, CASE_DATA, DEFINITION, PROCESS

    from engine.cases import Engine

    with tempfile.TemporaryDirectory(prefix="kf_bench_mem_") as tmp:
        engine = Engine(f"sqlite:///{tmp}/memory.db")
        engine.upgrade_schema()
        engine.deploy_text(DEFINITION, actor=ACTOR, file="bench_zyklus.yaml")
        startup_rss, startup_peak = current_rss_mb(), peak_rss_mb()
        open_s = fire_s = 0.0
        samples: list[tuple[int, float]] = [(0, startup_rss)]
        done = 0
        start = time.perf_counter()
        for done in range(1, cases + 1):
            t0 = time.perf_counter()
            case = engine.open_case(PROCESS, actor=ACTOR, data=CASE_DATA)
            t1 = time.perf_counter()
            engine.fire(case.id, ACTION_AB, actor=ACTOR)
            t2 = time.perf_counter()
            open_s += t1 - t0
            fire_s += t2 - t1
            if done % SAMPLE_EVERY == 0:
                samples.append((done, current_rss_mb()))
                if budget and t2 - start > budget:
                    break
        elapsed = time.perf_counter() - start
        db_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1024 / 1024
        engine.store.dispose()
    return {
        "target": cases,
        "cases": done,
        "elapsed_s": elapsed,
        "opens_per_s": done / open_s,
        "fires_per_s": done / fire_s,
        "startup_rss_mb": startup_rss,
        "startup_peak_mb": startup_peak,
        "peak_rss_mb": peak_rss_mb(),
        "ru_maxrss_mb": ru_maxrss_mb(),
        "samples": samples,
        "db_mb": db_mb,
    }


def extrapolate(result: dict[str, Any]) -> dict[str, Any]:
    """Slope of RSS per case over the second half of the samples, and the peak it predicts at the target."""
    samples = result["samples"]
    half = [s for s in samples if s[0] >= result["cases"] / 2] or samples
    if len(half) >= 2:
        n = len(half)
        mx = sum(c for c, _ in half) / n
        my = sum(m for _, m in half) / n
        var = sum((c - mx) ** 2 for c, _ in half)
        slope = sum((c - mx) * (m - my) for c, m in half) / var if var else 0.0
    else:
        slope = 0.0
    remaining = result["target"] - result["cases"]
    return {
        "slope_kb_per_case": slope * 1024,
        "predicted_peak_mb": result["peak_rss_mb"] + max(slope, 0.0) * remaining,
        "predicted_s": result["elapsed_s"] * result["target"] / result["cases"],
    }


def run(quick: bool = False, cases: int | None = None, budget: float | None = None) -> dict[str, Any]:
    cases = cases or (500 if quick else 100_000)
    budget = (10.0 if quick else 180.0) if budget is None else budget
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "--cases", str(cases), "--budget", str(budget)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["budget_s"] = budget
    result["complete"] = result["cases"] >= result["target"]
    result.update(extrapolate(result))
    return result


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


def summary_lines(r: dict[str, Any]) -> list[str]:
    target = f"(target < {TARGET_MB:.0f} MB)"
    if r["complete"]:
        verdict = "PASS" if r["peak_rss_mb"] < TARGET_MB else "FAIL"
        return [f"memory {_count(r['cases'])} cases peak RSS {r['peak_rss_mb']:.0f} MB {target} {verdict}"]
    verdict = "PASS" if r["predicted_peak_mb"] < TARGET_MB else "FAIL"
    return [
        f"memory {_count(r['target'])} cases peak RSS ~{r['predicted_peak_mb']:.0f} MB EXTRAPOLATED from "
        f"{r['cases']:,} cases (measured {r['peak_rss_mb']:.0f} MB) {target} {verdict}"
    ]


def detail_text(r: dict[str, Any]) -> str:
    out = [
        f"[memory] {r['cases']:,} of {r['target']:,} cases opened and fired once in {r['elapsed_s']:.0f} s "
        f"(budget {r['budget_s']:.0f} s); SQLite file {r['db_mb']:.0f} MiB",
        f"  opens {r['opens_per_s']:,.0f}/s   fires {r['fires_per_s']:,.0f}/s   "
        f"(the full {r['target']:,} would take ~{r['predicted_s'] / 60:.1f} min)",
        f"  RSS after start-up {r['startup_rss_mb']:.0f} MiB (peak so far {r['startup_peak_mb']:.0f}), "
        f"peak {r['peak_rss_mb']:.0f} MiB (VmHWM; ru_maxrss {r['ru_maxrss_mb']:.0f}), "
        f"growth {r['slope_kb_per_case']:.2f} KiB/case over the second half",
        "  RSS samples (cases: MiB): "
        + ", ".join(f"{c:,}: {m:.0f}" for c, m in r["samples"][:: max(1, len(r["samples"]) // 10)]),
    ]
    if not r["complete"]:
        out.append(
            f"  EXTRAPOLATED to {r['target']:,} cases: peak ~{r['predicted_peak_mb']:.0f} MiB "
            "(linear in cases; run with --budget 0 for the real figure)"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 cases, 10 s budget")
    parser.add_argument("--cases", type=int, help="cases to open (default 100,000)")
    parser.add_argument("--budget", type=float, help="seconds before stopping and extrapolating (0: none)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.cases, args.budget or 0.0)))
        return 0
    result = run(args.quick, args.cases, args.budget)
    print(detail_text(result))
    print()
    print("\n".join(summary_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
