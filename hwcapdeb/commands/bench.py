"""``hwcapdeb bench``: time COMMAND with each variant forced through the real loader."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hwcapdeb.bench.kept import write_profiles
from hwcapdeb.bench.result import (
    BENCH_JSON_VERSION,
    INTERVAL_METHOD,
    BenchOptions,
    BenchReport,
    VariantResult,
)
from hwcapdeb.bench.run import run_bench
from hwcapdeb.commands import options
from hwcapdeb.glibc_rules import require_host_arch
from hwcapdeb.output import emit_json
from hwcapdeb.target_loader import select_loader


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} B"


def _median(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if metric == "score" else f"{value * 1000:.1f} ms"


def _row(v: VariantResult, metric: str) -> list[str]:
    iv = v.interval
    return [
        v.level,
        _median(v.median(metric), metric),
        f"{iv.point:.3f}" if iv else ("1" if v.level == "baseline" else "-"),
        f"[{iv.low:.3f}, {iv.high:.3f}]" if iv else "-",
        _size(v.peak_rss_kib * 1024) if v.peak_rss_kib is not None else "-",
        _size(v.added_bytes) if v.level != "baseline" else "-",
        v.verdict,
    ]


def render(report: BenchReport) -> None:
    o = report.options
    header = ["variant", f"median ({o.metric})" if o.metric != "score" else "median score",
              "speedup", f"{o.confidence:.0%} interval",
              "peak RSS", "added", "verdict"]
    rows = [header, *(_row(v, o.metric) for v in report.variants)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    program = report.program
    where = f" of {program.origin}" if program.origin.startswith("package") else ""
    click.echo(f"{program.executable.name}{where} on {report.cpu}: {o.rounds} rounds "
               f"after {o.warmup} warm-up, interval: {INTERVAL_METHOD}")
    if report.target is not None:
        click.echo(f"loader: {report.target.describe()}")
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for v in report.variants:
        if v.level != "baseline":
            click.echo(f"{v.level}: {v.verdict}: {v.reason}")
    dropped = [v.level for v in report.variants if v.verdict in ("drop", "unmeasured")]
    if report.kept:
        hint = f" (hwcapdeb convert --drop {' --drop '.join(dropped)})" if dropped else ""
        click.echo(f"kept: {','.join(report.kept)}{hint}")
    else:
        click.echo("kept: none: no variant pays on this machine")
    for note in report.notes:
        click.echo(f"note: {note}")


@click.command("bench")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("command", nargs=-1, required=True)
@click.option("-n", "--rounds", type=click.IntRange(min=2), default=10, show_default=True,
              help="Measured rounds; every round runs each variant once, in random order.")
@click.option("--warmup", type=click.IntRange(min=1), default=1, show_default=True,
              help="Unmeasured rounds first (the first one also checks which files load).")
@click.option("--min-speedup", type=click.FloatRange(min=0, min_open=True), default=1.03,
              show_default=True,
              help="Keep a variant only if its interval's lower bound reaches this speedup.")
@click.option("--metric", type=click.Choice(["wall", "cpu", "score"]), default="wall",
              show_default=True,
              help="What to compare: wall clock, user+system CPU time, or the --score figure.")
@click.option("--score", metavar="REGEX",
              help="Compare COMMAND's own figure instead of its run time: the last match of "
              "REGEX (its first group) in stdout, else stderr; lower is better unless "
              "--higher-is-better.  For self-timed benchmarks such as 'xxhsum -b'.")
@click.option("--higher-is-better", is_flag=True,
              help="The --score figure is a throughput (MB/s), not a time.")
@click.option("--level", "levels", multiple=True,
              help="Benchmark only this variant (repeatable; default: every variant found).")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True,
              help="Confidence of the speedup interval.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the run order and of the bootstrap (reruns are reproducible).")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds one run of COMMAND may take.")
@click.option("--show-output", is_flag=True, help="Let COMMAND's output through.")
@click.option("--write-profiles", "profiles_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the kept variants, one profile a line, for 'hwcapdeb convert'.")
@options.loader_root_option(default="found from a .changes/.buildinfo, else the host's")
@options.json_option()
def command(
    path: Path,
    command: tuple[str, ...],
    rounds: int,
    warmup: int,
    min_speedup: float,
    metric: str,
    score: str | None,
    higher_is_better: bool,
    levels: tuple[str, ...],
    confidence: float,
    seed: int,
    timeout: float,
    show_output: bool,
    profiles_file: Path | None,
    loader_root: Path | None,
    as_json: bool,
) -> None:
    """Time COMMAND with each glibc-hwcaps variant of PATH and say which variants pay.

    PATH is a built .deb, a .changes (every package it lists) or an unpacked
    tree.  COMMAND runs through the real loader with one variant forced
    (ld.so --glibc-hwcaps-mask LEVEL; an empty mask for the baseline); its
    first run per variant checks with LD_DEBUG=libs which files it mapped.
    COMMAND is a program of the package (usr/bin/NAME, or just NAME), any
    program on PATH, or a #! script (its interpreter runs through the loader).
    Put '--' before COMMAND when it has options of its own.

    Exit status: 0 measured, 1 a variant crashed or failed, 2 could not run.
    """
    options = BenchOptions(
        rounds=rounds, warmup=warmup, min_speedup=min_speedup, metric=metric,
        confidence=confidence, seed=seed, timeout=timeout, show_output=show_output,
        levels=tuple(levels), score=score, higher_is_better=higher_is_better,
    )
    progress = None
    if sys.stderr.isatty() and not as_json:
        def progress(message: str) -> None:
            click.echo(f"\rhwcapdeb: bench: {message:<30}", err=True, nl=False)
    target = select_loader([path], require_host_arch(), loader_root=loader_root,
                           warn=lambda text: click.echo(f"hwcapdeb: warning: {text}", err=True))
    report = run_bench([path], list(command), options, progress=progress, target=target)
    if progress is not None:
        click.echo("\r" + " " * 50 + "\r", err=True, nl=False)
    if profiles_file is not None:
        write_profiles(report, profiles_file)
    if as_json:
        emit_json({"bench_version": BENCH_JSON_VERSION, **report.to_json()})
    else:
        render(report)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
