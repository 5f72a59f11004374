"""Before/after comparison without a database: the bootstrap and the verdicts (``engine.compare``)."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

from engine.compare import (
    IMPROVED,
    INCONCLUSIVE,
    WORSENED,
    StepComparison,
    _median_sampler,
    bootstrap_median_difference,
    compare_samples,
)
from engine.reports import DwellSample, percentile_of_counts
from tests.factories import make_definition

DEFINITION = make_definition()


def sample(*values: int, open_visits: int = 0, overran: int = 0) -> DwellSample:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return DwellSample(len(values) + open_visits, tuple(sorted(counts.items())), overran)


def compare(a: DwellSample, b: DwellSample, **kwargs: Any) -> StepComparison:
    labels = ("intake@1", "intake@2")
    result = compare_samples("intake", "versions", labels, [DEFINITION], {"intake": a}, {"intake": b}, **kwargs)
    [step] = [s for s in result.steps if s.step == "intake"]
    return step


def test_percentile_of_counts_interpolates_like_numpy() -> None:
    counts = [(1, 1), (2, 1), (3, 2), (4, 1), (5, 1)]  # 1 2 3 3 4 5
    assert percentile_of_counts(counts, 0.5) == 3.0
    assert percentile_of_counts(counts, 0.9) == 4.5
    assert percentile_of_counts([(7, 1)], 0.9) == 7
    assert percentile_of_counts([], 0.5) is None


@pytest.mark.parametrize("n", [7, 8], ids=["odd", "even"])
def test_the_order_statistic_sampler_is_the_bootstrap_distribution_of_the_median(n: int) -> None:
    """Drawing the resample's middle order statistics directly gives what resampling n values gives."""
    rng = random.Random(1)
    values = sorted(rng.randrange(0, 30) for _ in range(n))
    counts = sorted({v: values.count(v) for v in values}.items())
    draw = _median_sampler(counts)
    direct = sorted(draw(rng) for _ in range(20_000))
    brute = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(20_000))
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        i = int(q * (len(direct) - 1))
        assert direct[i] == pytest.approx(brute[i], abs=1.0)
    assert statistics.fmean(direct) == pytest.approx(statistics.fmean(brute), abs=0.2)


def test_the_bootstrap_is_seeded_and_deterministic() -> None:
    a, b = [(4, 10), (5, 12), (6, 9)], [(1, 14), (2, 13)]
    first = bootstrap_median_difference(a, b, rng=random.Random(7))
    assert first == bootstrap_median_difference(a, b, rng=random.Random(7))
    assert first[1] < 0
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_median_difference(a, b, rng=random.Random(7), resamples=1)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_median_difference([], b, rng=random.Random(7))


def test_a_clear_improvement_is_detected() -> None:
    step = compare(sample(*[4] * 10, *[5] * 12, *[6] * 9), sample(*[1] * 14, *[2] * 13))
    assert (step.a.median_office_days, step.b.median_office_days, step.median_difference) == (5.0, 1.0, -4.0)
    assert step.interval is not None and step.interval[1] < 0
    assert (step.verdict, step.warnings) == (IMPROVED, ())


def test_a_clear_worsening_is_detected() -> None:
    step = compare(sample(*[1] * 25), sample(*[3] * 12, *[4] * 13))
    assert step.verdict == WORSENED and step.interval is not None and step.interval[0] > 0


def test_small_samples_warn_that_the_data_are_too_few() -> None:
    step = compare(sample(5, 6, 5, 7, 6, 5), sample(1, 2, 1, 1, 2, 1))
    assert step.median_difference is not None
    assert step.verdict == INCONCLUSIVE
    [warning] = step.warnings
    assert warning.code == "small-sample"
    assert "< 20" in warning.text and "too few" in warning.text_en.lower()


def test_an_interval_across_zero_cannot_conclude() -> None:
    rng = random.Random(3)
    same = [rng.randrange(1, 9) for _ in range(40)]
    step = compare(sample(*same), sample(*reversed(same)))
    assert step.median_difference == 0
    assert step.verdict == INCONCLUSIVE
    assert [w.code for w in step.warnings] == ["interval-includes-zero"]


def test_small_cells_are_suppressed_and_not_compared() -> None:
    step = compare(sample(*[3] * 30), sample(2, 2, 2, 2))  # 4 visits < min_cell 5
    assert step.b.suppressed and step.b.visits is None and step.b.median_office_days is None
    assert step.a.visits == 30
    assert (step.median_difference, step.interval, step.verdict) == (None, None, None)
    assert {w.code for w in step.warnings} == {"suppressed", "small-sample"}
    shown = compare(sample(*[3] * 30), sample(2, 2, 2, 2), min_cell=1)
    assert shown.b.visits == 4


def test_overrun_shares_below_the_cell_size_are_hidden() -> None:
    step = compare(sample(*[3] * 30, overran=2), sample(*[2] * 30, overran=10))
    assert step.a.overrun_share is None
    assert step.b.overrun_share == pytest.approx(1 / 3)


def test_steps_follow_the_definition_and_final_steps_are_left_out() -> None:
    result = compare_samples("intake", "versions", ("intake@1", "intake@2"), [DEFINITION], {}, {})
    assert [s.step for s in result.steps] == ["intake", "review"]
    assert all(s.verdict is None for s in result.steps)
    assert result.as_dict()["steps"][0]["a"] == {
        "visits": 0,
        "completed": 0,
        "median_office_days": None,
        "overrun_share": None,
        "suppressed": False,
    }
