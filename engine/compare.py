"""Before/after comparison: did a new process version (or a later period) shorten the steps?

Per step, side A against side B: visits, completed visits, median dwell in office days,
overrun share, and the difference of the medians (B − A) with a bootstrap 95 % interval.
A comparison warns when it cannot conclude: when either side has fewer than
``min_sample`` completed visits (20 by default), or when the interval includes 0.
Cells with fewer than ``min_cell`` visits are suppressed as in :mod:`engine.reports`.

The bootstrap is exact and cheap without numpy: a resample of n values drawn from the
sample is ``F⁻¹(U₁), …, F⁻¹(Uₙ)`` for independent uniforms Uᵢ and the sample's empirical
quantile function F⁻¹, which is monotone, so the resample's k-th smallest value is
``F⁻¹(U₍ₖ₎)``. The k-th smallest of n uniforms is Beta(k, n − k + 1) distributed, and
the next one is ``U₍ₖ₎ + (1 − U₍ₖ₎)·Beta(1, n − k)`` (the smallest of the n − k
uniforms above it). So each resampled median costs one or two random draws and a
binary search in the histogram, whatever n is. The generator is seeded, so the same
data always give the same interval.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from engine.definition import ProcessDefinition
from engine.dwell import percentile
from engine.errors import DefinitionNotFound
from engine.reports import DEFAULT_MIN_CELL, DwellSample, Rule, dwell_samples, percentile_of_counts

if TYPE_CHECKING:
    from engine.cases import Engine

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20260302
MIN_SAMPLE = 20
IMPROVED = "improved"
WORSENED = "worsened"
INCONCLUSIVE = "inconclusive"

SMALL_SAMPLE = Rule(
    "small-sample",
    "Zu wenige abgeschlossene Besuche (< {n} auf einer Seite): keine belastbare Aussage möglich.",
    "Too few completed visits (< {n} on one side) to conclude.",
)
INCLUDES_ZERO = Rule(
    "interval-includes-zero",
    "Das 95-%-Intervall der Differenz enthält 0: Die Daten reichen nicht für eine Aussage.",
    "The 95 % interval of the difference includes 0: the data are too few to conclude.",
)
SUPPRESSED = Rule(
    "suppressed",
    "Weniger als {k} Besuche auf einer Seite: Werte unterdrückt.",
    "Fewer than {k} visits on one side: figures suppressed.",
)


@dataclass(frozen=True, slots=True)
class SideStats:
    """One side of a step comparison."""

    visits: int | None
    completed: int | None
    median_office_days: float | None
    overrun_share: float | None
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class StepComparison:
    """A step, side A against side B.

    Attributes:
        median_difference: Median dwell of B minus that of A, in office days (negative: B is faster).
        interval: Bootstrap 95 % interval of the difference (percentile method), or None.
        verdict: ``improved`` (the whole interval below 0), ``worsened`` (above 0), ``inconclusive``,
            or None when there is nothing to compare.
        warnings: Why the comparison cannot conclude, in German and English.
    """

    step: str
    title: str
    title_en: str | None
    agency: str | None
    a: SideStats
    b: SideStats
    median_difference: float | None
    interval: tuple[float, float] | None
    verdict: str | None
    warnings: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A before/after comparison of one process; ``as_dict()`` gives plain JSON-ready data."""

    process_id: str
    kind: str
    label_a: str
    label_b: str
    min_cell: int
    min_sample: int
    resamples: int
    seed: int
    steps: tuple[StepComparison, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_median_difference(
    a: Sequence[tuple[float, int]],
    b: Sequence[tuple[float, int]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    rng: random.Random,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Bootstrap interval (percentile method) of median(B) − median(A) for samples given as (value, count).

    Raises:
        ValueError: If a sample is empty or ``resamples`` < 2.
    """
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    draw_a, draw_b = _median_sampler(a), _median_sampler(b)
    differences = sorted(draw_b(rng) - draw_a(rng) for _ in range(resamples))
    tail = (1 - confidence) / 2
    return percentile(differences, tail), percentile(differences, 1 - tail)


def _median_sampler(sample: Sequence[tuple[float, int]]) -> Any:
    values = [value for value, _ in sample]
    cumulative = list(accumulate(count for _, count in sample))
    n = cumulative[-1] if cumulative else 0
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")

    def quantile(u: float) -> float:
        # Empirical quantile function: the smallest value whose cumulative count reaches u·n.
        rank = min(max(math.ceil(u * n), 1), n)
        return values[bisect_left(cumulative, rank)]

    k = (n + 1) // 2  # 1-based rank of the (lower) middle order statistic

    def draw(rng: random.Random) -> float:
        u = rng.betavariate(k, n - k + 1)
        if n % 2:
            return quantile(u)
        # Beta(1, m) by inversion: 1 - U^(1/m); cheaper than a second betavariate.
        v = u + (1 - u) * (1 - rng.random() ** (1 / (n - k)))
        return (quantile(u) + quantile(v)) / 2

    return draw


# --------------------------------------------------------------------------- comparing


def _side(sample: DwellSample | None, min_cell: int) -> SideStats:
    if sample is None:
        return SideStats(0, 0, None, None)
    if sample.visits < min_cell:
        return SideStats(None, None, None, None, suppressed=True)
    completed = sample.completed
    if 0 < completed < min_cell:
        return SideStats(sample.visits, None, None, None, suppressed=True)
    median = percentile_of_counts(sample.office_days, 0.5)
    share = sample.overran / completed if completed else None
    if 0 < sample.overran < min_cell:
        share = None
    return SideStats(sample.visits, completed, median, share)


def _compare_step(
    step: str,
    definition: ProcessDefinition,
    a: DwellSample | None,
    b: DwellSample | None,
    *,
    min_cell: int,
    min_sample: int,
    resamples: int,
    rng: random.Random,
) -> StepComparison:
    spec = definition.steps.get(step)
    side_a, side_b = _side(a, min_cell), _side(b, min_cell)
    warnings: list[Rule] = []
    difference = interval = verdict = None
    if side_a.suppressed or side_b.suppressed:
        warnings.append(_format(SUPPRESSED, k=min_cell))
    if not (side_a.completed and side_b.completed) or side_a.completed < min_sample or side_b.completed < min_sample:
        warnings.append(_format(SMALL_SAMPLE, n=min_sample))
    if side_a.median_office_days is not None and side_b.median_office_days is not None and a and b:
        difference = side_b.median_office_days - side_a.median_office_days
        low, high = bootstrap_median_difference(a.office_days, b.office_days, resamples=resamples, rng=rng)
        interval = (low, high)
        if low <= 0 <= high:
            warnings.append(INCLUDES_ZERO)
        conclusive = not any(w.code in ("small-sample", "interval-includes-zero") for w in warnings)
        verdict = (IMPROVED if high < 0 else WORSENED) if conclusive else INCONCLUSIVE
    return StepComparison(
        step,
        spec.title if spec else step,
        spec.title_en if spec else None,
        spec.agency if spec else None,
        side_a,
        side_b,
        difference,
        interval,
        verdict,
        tuple(warnings),
    )


def _format(rule: Rule, **values: Any) -> Rule:
    return Rule(rule.code, rule.text.format(**values), rule.text_en.format(**values))


def _steps_in_order(definitions: Sequence[ProcessDefinition], *samples: dict[str, DwellSample]) -> list[str]:
    order: list[str] = []
    for definition in definitions:
        order.extend(s.id for s in definition.steps.values() if not s.final and s.id not in order)
    finals = {s.id for d in definitions for s in d.steps.values() if s.final}
    order.extend(sorted({s for sample in samples for s in sample} - set(order) - finals))
    return order


def compare_samples(
    process_id: str,
    kind: str,
    labels: tuple[str, str],
    definitions: Sequence[ProcessDefinition],
    a: dict[str, DwellSample],
    b: dict[str, DwellSample],
    *,
    min_cell: int = DEFAULT_MIN_CELL,
    min_sample: int = MIN_SAMPLE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Compare per-step dwell samples of side A and side B (the pure core of the comparisons).

    Args:
        process_id/kind/labels: What is compared (``kind``: ``versions`` or ``periods``).
        definitions: The definitions whose steps are listed, oldest first; titles come from the newest.
        a/b: Per step id, the dwell samples of each side (see :func:`engine.reports.dwell_samples`).
        min_cell: Sides with fewer visits are suppressed.
        min_sample: Fewer completed visits on either side give the small-sample warning.
        resamples/seed: The bootstrap.
    """
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, got {min_cell}")
    rng = random.Random(seed)
    newest = definitions[-1]
    steps = tuple(
        _compare_step(
            step,
            next((d for d in reversed(definitions) if step in d.steps), newest),
            a.get(step),
            b.get(step),
            min_cell=min_cell,
            min_sample=min_sample,
            resamples=resamples,
            rng=rng,
        )
        for step in _steps_in_order(list(reversed(definitions)), a, b)
    )
    return Comparison(process_id, kind, labels[0], labels[1], min_cell, min_sample, resamples, seed, steps)


def compare_versions(
    engine: Engine,
    process_id: str,
    version_a: int,
    version_b: int,
    *,
    period_from: date | datetime | None = None,
    period_to: date | datetime | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    min_sample: int = MIN_SAMPLE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Version A against version B of a process, step by step (optionally within a period of entering).

    Raises:
        DefinitionNotFound: If a version is not deployed.
    """
    definitions = [engine.process(process_id, version_a), engine.process(process_id, version_b)]
    window = {"period_from": period_from, "period_to": period_to}
    return compare_samples(
        process_id,
        "versions",
        (f"{process_id}@{version_a}", f"{process_id}@{version_b}"),
        definitions,
        dwell_samples(engine, process_id, version=version_a, **window),
        dwell_samples(engine, process_id, version=version_b, **window),
        min_cell=min_cell,
        min_sample=min_sample,
        resamples=resamples,
        seed=seed,
    )


def compare_periods(
    engine: Engine,
    process_id: str,
    period_a: tuple[date | datetime, date | datetime],
    period_b: tuple[date | datetime, date | datetime],
    *,
    version: int | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    min_sample: int = MIN_SAMPLE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Visits entered in period A against those entered in period B (dates: Berlin days, end included).

    Raises:
        DefinitionNotFound: If the process (or ``version``) is not deployed.
    """
    if version is not None:
        definitions = [engine.process(process_id, version)]
    else:
        versions = sorted(d.version for d in engine.registry.list() if d.process_id == process_id)
        if not versions:
            raise DefinitionNotFound(process_id)
        definitions = [engine.process(process_id, v) for v in versions]
    return compare_samples(
        process_id,
        "periods",
        (_period_label(period_a), _period_label(period_b)),
        definitions,
        dwell_samples(engine, process_id, version=version, period_from=period_a[0], period_to=period_a[1]),
        dwell_samples(engine, process_id, version=version, period_from=period_b[0], period_to=period_b[1]),
        min_cell=min_cell,
        min_sample=min_sample,
        resamples=resamples,
        seed=seed,
    )


def _period_label(period: tuple[date | datetime, date | datetime]) -> str:
    def text(value: date | datetime) -> str:
        return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value.isoformat()

    return f"{text(period[0])} – {text(period[1])}"


__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "IMPROVED",
    "INCONCLUSIVE",
    "MIN_SAMPLE",
    "WORSENED",
    "Comparison",
    "SideStats",
    "StepComparison",
    "bootstrap_median_difference",
    "compare_periods",
    "compare_samples",
    "compare_versions",
]
