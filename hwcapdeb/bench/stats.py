"""Statistics: the speedup of paired rounds and how sure it is."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from hwcapdeb.errors import UsageError


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float
    confidence: float
    coverage: float = 1.0  # what the distribution-free part can guarantee with these rounds


def speedup_interval(base: Sequence[float], variant: Sequence[float], *, confidence: float = 0.95,
                     resamples: int = 2000, seed: int = 0) -> Interval:
    """median(base) / median(variant), with a paired percentile-bootstrap interval.

    ``base[i]`` and ``variant[i]`` come from the same round; each resample
    draws whole rounds, so what a round shares (drift) stays shared.  Written
    with the standard library: a percentile bootstrap is a few lines, and
    scipy (whose ``stats.bootstrap`` does it) would be a heavy new dependency.
    """
    if len(base) != len(variant) or not base:
        raise ValueError("need the same, non-zero number of paired samples")
    if min(base) <= 0 or min(variant) <= 0:
        raise UsageError(
            "a measurement of 0 or less: no ratio can be formed",
            hint="a --score figure must be a positive time or throughput",
        )
    point = statistics.median(base) / statistics.median(variant)
    n = len(base)
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(base[i] for i in idx)
                      / statistics.median(variant[i] for i in idx))
    ratios.sort()
    alpha = (1 - confidence) / 2
    low = ratios[int(alpha * (resamples - 1))]
    high = ratios[round((1 - alpha) * (resamples - 1))]
    # with few rounds the bootstrap is overconfident (3 rounds give a handful of distinct
    # resamples): never report less than the distribution-free interval of the rounds' ratios
    sign_low, sign_high, coverage = sign_interval(
        [b / v for b, v in zip(base, variant, strict=True)], confidence
    )
    return Interval(point, min(low, sign_low), max(high, sign_high), confidence, coverage)


def sign_interval(ratios: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """Distribution-free interval for the median of paired ratios (sign test order statistics).

    Returns (low, high, coverage): the k-th smallest and k-th largest ratio for
    the largest k whose binomial(n, 1/2) tail stays within (1 - confidence)/2.
    Below 6 rounds even min..max covers less than 95%: ``coverage`` says how much.
    """
    ordered = sorted(ratios)
    n = len(ordered)
    alpha = (1 - confidence) / 2
    k, tail = 1, 0.0
    for j in range(1, n // 2 + 1):
        tail_j = sum(math.comb(n, i) for i in range(j)) / 2**n  # P(X < j)
        if tail_j > alpha:
            break
        k, tail = j, tail_j
    if tail == 0.0:  # not even min..max reaches the confidence
        tail = 1 / 2**n
    return ordered[k - 1], ordered[n - k], 1 - 2 * tail
