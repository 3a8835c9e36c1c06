"""Keep or drop: each variant's verdict from its speedup interval."""

from __future__ import annotations

from hwcapdeb.bench.result import DROP, KEEP, MEASURED, BenchOptions, VariantResult
from hwcapdeb.bench.stats import speedup_interval
from hwcapdeb.profiles import BASELINE


def decide(results: dict[str, VariantResult], options: BenchOptions) -> None:
    """Set each measured variant's interval, verdict and reason (the baseline is the reference).

    A variant is kept when its interval's lower bound reaches ``--min-speedup``;
    it is dropped when it maps no file of its level, when too few rounds cannot
    reach the confidence, or when the lower bound falls short.
    """
    base = results[BASELINE]
    metric = options.metric
    base_samples = base.samples(metric)
    for result in results.values():
        if result is base or result.status != MEASURED:
            continue
        if not result.maps_variant:
            result.verdict = DROP
            result.reason = f"COMMAND maps no {result.level} file (its libraries have none)"
        samples = result.samples(metric)
        if len(samples) != len(base_samples) or not samples:
            continue
        # a throughput (higher is better) compares the other way round
        first, second = (samples, base_samples) if metric == "score" and options.higher_is_better \
            else (base_samples, samples)
        result.interval = speedup_interval(
            first, second, confidence=options.confidence,
            resamples=options.resamples, seed=options.seed,
        )
        if result.verdict == DROP:
            continue
        iv = result.interval
        shown = f"speedup {iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]"
        if iv.coverage < options.confidence:
            result.verdict = DROP
            result.reason = (
                f"{shown}: {options.rounds} rounds cannot give a {options.confidence:.0%} "
                f"interval (at most {iv.coverage:.0%}); rerun with more --rounds"
            )
        elif iv.low >= options.min_speedup:
            result.verdict = KEEP
            result.reason = f"{shown}: lower bound clears --min-speedup {options.min_speedup:g}"
        else:
            result.verdict = DROP
            result.reason = f"{shown}: lower bound below --min-speedup {options.min_speedup:g}"
