"""hwcapdeb.bench.stats and .verdict: intervals and the keep/drop rule, on synthetic runs."""

from __future__ import annotations

import pytest

from hwcapdeb.bench.result import DROP, KEEP, MEASURED, BenchOptions, VariantResult
from hwcapdeb.bench.runner import Run
from hwcapdeb.bench.stats import sign_interval, speedup_interval
from hwcapdeb.bench.verdict import decide
from hwcapdeb.errors import UsageError

BASE = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97, 1.0, 1.01]


def _result(level: str, walls: list[float], *, maps_variant: bool = True,
            score: list[float] | None = None) -> VariantResult:
    runs = [Run(w, w, 1000, 0, None, "", s)
            for w, s in zip(walls, score or [None] * len(walls), strict=True)]
    verdict = "baseline" if level == "baseline" else ""
    return VariantResult(level, MEASURED, verdict, "", runs=runs, maps_variant=maps_variant)


def test_sign_interval_coverage_grows_with_rounds() -> None:
    assert sign_interval([2.0, 1.0], 0.95) == (1.0, 2.0, 0.5)
    low, high, coverage = sign_interval([float(i) for i in range(1, 21)], 0.95)
    assert (low, high) == (6.0, 15.0) and coverage >= 0.95


def test_speedup_interval_refuses_what_has_no_ratio() -> None:
    with pytest.raises(ValueError):
        speedup_interval([1.0], [1.0, 2.0])
    with pytest.raises(UsageError, match="0 or less"):
        speedup_interval([1.0, 0.0], [1.0, 1.0])


def test_speedup_interval_is_reproducible() -> None:
    half = [b / 2 for b in BASE]
    assert speedup_interval(BASE, half, seed=3) == speedup_interval(BASE, half, seed=3)


def test_decide_keeps_what_clears_the_bar_and_says_why() -> None:
    options = BenchOptions(rounds=len(BASE), resamples=300)
    results = {
        "baseline": _result("baseline", BASE),
        "fast": _result("fast", [b / 1.5 for b in BASE]),
        "same": _result("same", list(reversed(BASE))),
        "unmapped": _result("unmapped", [b / 1.5 for b in BASE], maps_variant=False),
    }
    decide(results, options)
    assert results["fast"].verdict == KEEP
    assert "lower bound clears --min-speedup 1.03" in results["fast"].reason
    assert results["same"].verdict == DROP
    assert "lower bound below --min-speedup" in results["same"].reason
    # fast, but COMMAND never mapped a file of that level: the speed is not the variant's
    assert results["unmapped"].verdict == DROP
    assert "maps no unmapped file" in results["unmapped"].reason
    assert results["unmapped"].interval is not None
    assert results["baseline"].verdict == "baseline"


def test_decide_drops_when_rounds_cannot_reach_the_confidence() -> None:
    options = BenchOptions(rounds=3, resamples=100)
    results = {"baseline": _result("baseline", BASE[:3]),
               "fast": _result("fast", [b / 2 for b in BASE[:3]])}
    decide(results, options)
    assert results["fast"].verdict == DROP
    assert "3 rounds cannot give a 95% interval (at most 75%)" in results["fast"].reason


def test_decide_a_throughput_compares_the_other_way_round() -> None:
    options = BenchOptions(rounds=len(BASE), resamples=300, metric="score", score="x",
                           higher_is_better=True)
    results = {"baseline": _result("baseline", BASE, score=BASE),
               "fast": _result("fast", BASE, score=[b * 2 for b in BASE])}
    decide(results, options)
    interval = results["fast"].interval
    assert interval is not None and interval.point == pytest.approx(2.0)
    assert results["fast"].verdict == KEEP
