#!/usr/bin/env python3
"""Build cost: how much longer a converted package takes to build than the original.

For each source package of the corpus (sources of this machine's release,
fetched once into ``$HWCAPDEB_CORPUS_DIR`` or ``~/.cache/hwcapdeb/corpus``) this builds, one
after the other in the same run:

* the original package, unchanged (its own test suite runs, as in Debian);
* the package converted with the profiles (default x86-64-v2, -v3, -v4),
  variant tests off (``--variant-tests none``: only the baseline is tested);
* the same with variant tests on (``--variant-tests all``).

and prints the wall times and their ratios to the original, then where the
converted builds spend their time (baseline, each variant, packaging), from
the time each ``hwcapdeb: <level>: ...`` progress line arrived.  Targets:
at most 2.5x with variant tests off, 4x with them on.

It also prints the CPU time of each build and the *floor*: the converted
build's CPU time spread over every core of this machine, over the original's
wall time.  That is the ratio a perfect scheduler would reach here; the gap
between it and the measured ratio is what scheduling can still win, the floor
itself only more cores or less work per variant.

    .venv/bin/python benchmarks/build_cost.py [--packages xxhash,libyaml] [-j 2]

Builds run with dpkg-buildpackage on this machine (the build-dependencies
must be installed: ``apt-get build-dep PACKAGE``), one at a time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hwcapdeb.buildjob import BuildJob, parse_progress, run_job
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.profiles import ProfileRegistry
from tests import corpus

TARGET_OFF = 2.5
TARGET_ON = 4.0


@dataclass
class Timeline:
    """When each progress line arrived, relative to the start of the job."""

    start: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    first_deb: float | None = None

    def __call__(self, line: str) -> None:
        now = time.monotonic() - self.start
        if line.startswith("dpkg-deb: building package") and self.first_deb is None:
            self.first_deb = now
        progress = parse_progress(line)
        if progress is not None:
            self.events.append((now, progress.variant, progress.message))

    def phases(self, total: float) -> dict[str, float]:
        """Seconds of each variant's build, before the first and after the last of them.

        The variants may build beside the baseline (parallel=N), so "before" is
        the baseline alone only when they build one after the other.
        """
        started: dict[str, float] = {}
        spent: dict[str, float] = {}
        for when, variant, message in self.events:
            if message.startswith("build started"):
                started[variant] = when
            elif message.startswith("build done") and variant in started:
                spent[variant] = when - started[variant]
        first = min(started.values(), default=total)
        last = max((started[v] + spent[v] for v in spent), default=first)
        return {"before": first, **spent, "after": total - last}


@dataclass
class Measurement:
    seconds: float
    cpu_seconds: float = 0.0  # user + system time of the build and everything it ran
    timeline: Timeline | None = None
    error: str | None = None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(job: BuildJob, timeline: Timeline | None) -> Measurement:
    started, cpu = time.monotonic(), _children_cpu()
    error = None
    try:
        run_job(job, on_line=timeline)
    except HwcapdebError as err:
        error = str(err).splitlines()[0]
    return Measurement(time.monotonic() - started, _children_cpu() - cpu, timeline, error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", default=",".join(corpus.PACKAGES))
    parser.add_argument("--profiles", default="x86-64-v2,x86-64-v3,x86-64-v4")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    names = [n for n in args.packages.split(",") if n]
    profiles = tuple(ProfileRegistry().resolve_many([args.profiles], "amd64"))
    levels = [p.level.name for p in profiles]
    console = Console()
    results: dict[str, dict[str, Measurement]] = {}
    scratch = tempfile.mkdtemp(prefix="hwcapdeb-bench-")
    # The builds' outputs stay in scratch when one fails: its logs are there.
    for name in names:
        dsc = corpus.fetch(name)
        row: dict[str, Measurement] = {}
        for kind, convert, tests in (
            ("original", False, "none"),
            ("off", True, "none"),
            ("on", True, "all"),
        ):
            out = Path(scratch) / name / kind
            job = BuildJob(
                source=dsc,
                profiles=profiles,
                out_dir=out,
                jobs=args.jobs,
                variant_tests=tests,
                convert=convert,
                variant_env=corpus.VARIANT_ENV.get(name, ()),
            )
            row[kind] = measure(job, Timeline() if convert else None)
            status = row[kind].error or f"{row[kind].seconds:.1f}s"
            console.print(f"[dim]{name} {kind}: {status}[/]", highlight=False)
        results[name] = row

    table = Table(
        title=f"build cost, {' + '.join(levels)}, dpkg-buildpackage -j{args.jobs}",
        title_justify="left",
    )
    for column in ("package", "original", "tests off", "ratio", "tests on", "ratio"):
        table.add_column(column, justify="left" if column == "package" else "right")
    failed = False
    for name, row in results.items():
        cells = [name, _secs(row["original"])]
        for kind, target in (("off", TARGET_OFF), ("on", TARGET_ON)):
            m = row[kind]
            cells.append(_secs(m))
            if m.error or row["original"].error:
                cells.append("-")
                failed = True
                continue
            ratio = m.seconds / row["original"].seconds
            mark = "" if ratio <= target else " (over)"
            cells.append(f"{ratio:.2f}x{mark}")
        table.add_row(*cells)
    console.print(table)

    cores = len(os.sched_getaffinity(0))
    cpu = Table(
        title=f"CPU time (user + system) and the floor: the ratio with all {cores} cores busy "
        "from start to end",
        title_justify="left",
    )
    for column in ("package", "original", "off", "floor", "on", "floor"):
        cpu.add_column(column, justify="left" if column == "package" else "right")
    for name, row in results.items():
        orig = row["original"]
        if orig.error:
            continue
        cells = [name, f"{orig.cpu_seconds:.1f}s"]
        for kind in ("off", "on"):
            m = row[kind]
            if m.error:
                cells += ["-", "-"]
                continue
            cells.append(f"{m.cpu_seconds / orig.cpu_seconds:.2f}x")
            cells.append(f"{m.cpu_seconds / cores / orig.seconds:.2f}x")
        cpu.add_row(*cells)
    console.print(cpu)

    breakdown = Table(title="where the converted builds spend their time (s)", title_justify="left")
    columns = ["before", *levels, "after"]
    for column in ("package", "tests", *columns):
        breakdown.add_column(column, justify="left" if column in ("package", "tests") else "right")
    for name, row in results.items():
        for kind in ("off", "on"):
            m = row[kind]
            if m.error or m.timeline is None:
                continue
            phases = m.timeline.phases(m.seconds)
            breakdown.add_row(
                name, kind, *(f"{phases[c]:.1f}" if c in phases else "-" for c in columns)
            )
    console.print(breakdown)
    for name, row in results.items():
        for kind, m in row.items():
            if m.error:
                console.print(f"{name} ({kind}): {m.error}", highlight=False)
    if failed:
        console.print(f"logs of the failed builds: {scratch}", highlight=False)
        return 1
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _secs(m: Measurement) -> str:
    return "failed" if m.error else f"{m.seconds:.1f}s"


if __name__ == "__main__":
    sys.exit(main())
