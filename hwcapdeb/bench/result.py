"""What a bench run found: the options, each variant's runs and verdict, the report's JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from hwcapdeb.bench.program import Program
from hwcapdeb.bench.runner import Run
from hwcapdeb.bench.stats import Interval
from hwcapdeb.target_loader import TargetLoader

#: bumped when the --json document changes incompatibly
BENCH_JSON_VERSION = 1

INTERVAL_METHOD = (
    "paired bootstrap (percentile) over rounds, widened to the sign-test interval of the "
    "per-round ratios"
)

# per-variant statuses
MEASURED = "measured"
NOT_MEASURABLE = "not-measurable"
CRASHED = "crashed"
FAILED = "failed"

# verdicts
KEEP = "keep"
DROP = "drop"
UNMEASURED = "unmeasured"


@dataclass
class VariantResult:
    """One variant (or the baseline): its runs, the files it mapped, its verdict and why."""

    level: str
    status: str
    verdict: str
    reason: str
    added_bytes: int = 0
    loaded: dict[str, str] = field(default_factory=dict)  # soname -> file mapped
    runs: list[Run] = field(default_factory=list)
    interval: Interval | None = None
    maps_variant: bool = False  # the proving run mapped at least one file of this level

    def samples(self, metric: str) -> list[float]:
        """wall or cpu seconds, or the --score figures (metric "score")."""
        if metric == "score":
            return [r.score for r in self.runs if r.score is not None]
        return [r.wall if metric == "wall" else r.cpu for r in self.runs]

    def median(self, metric: str) -> float | None:
        values = self.samples(metric)
        return statistics.median(values) if values else None

    @property
    def peak_rss_kib(self) -> int | None:
        return int(statistics.median(r.maxrss_kib for r in self.runs)) if self.runs else None

    def to_json(self, metric: str) -> dict[str, Any]:
        return {
            "level": self.level,
            "status": self.status,
            "verdict": self.verdict,
            "reason": self.reason,
            "median": self.median(metric),
            "speedup": self.interval.point if self.interval else None,
            "interval": [self.interval.low, self.interval.high] if self.interval else None,
            "peak_rss_kib": self.peak_rss_kib,
            "added_bytes": self.added_bytes,
            "loaded": self.loaded,
            "samples": self.samples(metric),
        }


@dataclass
class BenchOptions:
    """How to measure and when a variant pays (the command's options)."""

    rounds: int = 10
    warmup: int = 1
    min_speedup: float = 1.03
    metric: str = "wall"  # "cpu" (user + system time of the child) or "score" (--score)
    score: str | None = None  # regex: COMMAND's own figure replaces the timing
    higher_is_better: bool = False  # the --score figure is a throughput
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    timeout: float = 600.0
    show_output: bool = False  # let COMMAND's stdout through (default: /dev/null)
    levels: tuple[str, ...] = ()  # only these variants (default: all found)


@dataclass
class BenchReport:
    """Everything one ``hwcapdeb bench`` found; :meth:`to_json` is its --json document."""

    command: list[str]
    program: Program
    loader: str
    cpu: str
    options: BenchOptions
    variants: list[VariantResult]
    notes: list[str]
    target: TargetLoader | None = None  # the ld.so that ran COMMAND, with its glibc and source

    @property
    def kept(self) -> list[str]:
        return [v.level for v in self.variants if v.verdict == KEEP]

    @property
    def exit_code(self) -> int:
        """1 when a variant crashed or failed (a finding), else 0."""
        return 1 if any(v.status in (CRASHED, FAILED) for v in self.variants) else 0

    def to_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "command": self.command,
            "program": str(self.program.executable),
            "program_origin": self.program.origin,
            "loader": self.loader,
            "target_loader": self.target.to_json() if self.target else None,
            "cpu": self.cpu,
            "metric": o.metric,
            "score": o.score,
            "higher_is_better": o.higher_is_better if o.score else False,
            "rounds": o.rounds,
            "warmup": o.warmup,
            "min_speedup": o.min_speedup,
            "interval_method": INTERVAL_METHOD,
            "confidence": o.confidence,
            "resamples": o.resamples,
            "variants": [v.to_json(o.metric) for v in self.variants],
            "kept": self.kept,
            "notes": self.notes,
        }
