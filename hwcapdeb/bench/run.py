"""The benchmark itself: prove which file each variant maps, then time interleaved rounds.

:func:`run_bench` opens the packages, finds their variants
(:mod:`~hwcapdeb.bench.layout`) and COMMAND (:mod:`~hwcapdeb.bench.program`),
runs a warm-up per variant under ``LD_DEBUG=libs`` to check the files it
mapped (:mod:`~hwcapdeb.bench.ld_debug`), then the measured rounds in a fresh
random order each (:mod:`~hwcapdeb.bench.runner`), and leaves the verdicts to
:mod:`~hwcapdeb.bench.verdict`.
"""

from __future__ import annotations

import random
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from hwcapdeb.bench.layout import Layout, discover
from hwcapdeb.bench.ld_debug import loaded_files, same_file
from hwcapdeb.bench.program import Program, resolve_program
from hwcapdeb.bench.result import (
    CRASHED,
    DROP,
    FAILED,
    MEASURED,
    NOT_MEASURABLE,
    UNMEASURED,
    BenchOptions,
    BenchReport,
    VariantResult,
)
from hwcapdeb.bench.runner import Run, run_once
from hwcapdeb.bench.verdict import decide
from hwcapdeb.cpu import CpuModel, supported_levels, why_not
from hwcapdeb.cpu_sources import host_model
from hwcapdeb.debfile import open_inputs
from hwcapdeb.errors import ExternalCommandError, InputError, UsageError
from hwcapdeb.glibc_rules import loader_env, require_host_arch
from hwcapdeb.profiles import BASELINE, Architecture, architecture
from hwcapdeb.target_loader import TargetLoader


def _loader_argv(loader: str, layout: Layout, level: str,
                 extra: Sequence[Path] = ()) -> list[str]:
    mask = "" if level == BASELINE else level
    return [loader, "--library-path", ":".join(str(d) for d in [*layout.libdirs, *extra]),
            "--glibc-hwcaps-mask", mask]


def _measurable(level: str, cpu: CpuModel, arch: Architecture) -> str | None:
    """Why this CPU cannot run ``level`` (None: it can)."""
    lv = arch.level(level)
    if lv in supported_levels(cpu):
        return None
    missing = why_not(cpu, lv)
    return ("this CPU lacks " + ", ".join(missing)) if missing \
        else "this CPU does not support a lower level (glibc checks levels cumulatively)"


class _Bench:
    """One benchmark's fixed parts (layout, COMMAND, loader, scratch) and its runs."""

    def __init__(self, layout: Layout, program: Program, loader: str, options: BenchOptions,
                 scratch: Path, progress: Callable[[str], None] | None) -> None:
        self.layout = layout
        self.program = program
        self.loader = loader
        self.extra_libdirs: list[Path] = []
        self.options = options
        self.scratch = scratch
        self.progress = progress or (lambda _msg: None)
        self.stdout = None if options.show_output else subprocess.DEVNULL
        self.score: re.Pattern[str] | None = None
        if options.score:
            try:
                self.score = re.compile(options.score)
            except re.error as err:
                raise UsageError(f"--score is not a valid regular expression: {err}") from None

    def argv(self, level: str) -> list[str]:
        return [*_loader_argv(self.loader, self.layout, level, self.extra_libdirs),
                *self.program.argv]

    def run(self, level: str, env: dict[str, str] | None = None,
            timed: bool = True) -> tuple[Run, int]:
        run, pid = run_once(self.argv(level), env=env or loader_env(), stdout=self.stdout,
                            timeout=self.options.timeout, scratch=self.scratch, timed=timed,
                            score=self.score)
        if self.score is not None and run.ok and run.score is None:
            raise UsageError(
                f"--score '{self.options.score}' matched nothing in COMMAND's output ({level})",
                hint="check the pattern against the program's output (stdout, then stderr)",
            )
        return run, pid

    def shown(self, path: Path) -> str:
        """A path for the report: PACKAGE:/usr/lib/... inside an unpacked .deb (a scratch dir)."""
        for tree in self.layout.trees:
            if tree.origin.is_file() and path.is_relative_to(tree.root):
                return f"{tree.name}:/{path.relative_to(tree.root)}"
        return str(path)

    def proving_run(self, result: VariantResult) -> Run:
        """The warm-up run with LD_DEBUG=libs: records and checks the files mapped."""
        log_base = self.scratch / f"ld-{result.level}"
        env = loader_env({"LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": str(log_base)})
        run, pid = self.run(result.level, env, timed=False)
        log_file = Path(f"{log_base}.{pid}")
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        mapped = loaded_files(text)
        expected = self.layout.expected(result.level)
        own = self.layout.variant_files(result.level)
        for soname, want in expected.items():
            got = next((p for p in mapped if p.name == soname), None)
            if got is not None:
                result.loaded[soname] = self.shown(got)
                if not same_file(got, want):
                    result.status, result.verdict = FAILED, DROP
                    result.reason = f"the loader mapped {got} instead of {want}"
                elif soname in own:
                    result.maps_variant = True
        if result.level == BASELINE and not result.loaded and run.ok:
            names = ", ".join(sorted({p.name for p in mapped})) or "nothing"
            raise UsageError(
                f"COMMAND loads no library of the package (it loaded {names})",
                hint="benchmark a program that links "
                + ", ".join(sorted({lib.soname for lib in self.layout.offered})) + " dynamically",
            )
        return run

    def record_failure(self, result: VariantResult, run: Run) -> None:
        result.status = CRASHED if run.signal is not None else FAILED
        result.verdict = DROP
        result.reason = f"COMMAND {run.describe()} with this variant"


def run_bench(
    paths: Sequence[Path],
    command: Sequence[str],
    options: BenchOptions,
    *,
    cpu: CpuModel | None = None,
    progress: Callable[[str], None] | None = None,
    target: TargetLoader | None = None,
) -> BenchReport:
    """Benchmark every variant of the packages at ``paths`` with ``command``.

    ``target``: the ld.so to run COMMAND with (a target release's, see
    hwcapdeb.target_loader); default the host's.
    """
    if options.score and options.metric != "score":
        options = replace(options, metric="score")
    if options.metric == "score" and not options.score:
        raise UsageError("--metric score needs --score REGEX")
    if options.rounds < 2:
        raise UsageError("--rounds must be at least 2 for an interval")
    arch_name = require_host_arch()
    arch = architecture(arch_name)
    arch.require_hwcaps()
    if arch.loader is None or not Path(arch.loader).exists():
        raise ExternalCommandError(f"the {arch_name} loader {arch.loader} is not on this machine")
    loader = str(target.ld_so) if target is not None else arch.loader
    with tempfile.TemporaryDirectory(prefix="hwcapdeb-bench-") as tmp:
        scratch = Path(tmp)
        trees = open_inputs([p.absolute() for p in paths], scratch / "unpacked")
        foreign = [t for t in trees if t.architecture not in (None, "all", arch_name)]
        if foreign:
            raise UsageError(
                f"{foreign[0].origin} is for {foreign[0].architecture}, "
                f"this machine is {arch_name}",
                hint="benchmark on a machine of the package's architecture",
            )
        layout = discover(trees, arch)
        offered = layout.levels
        if not offered:
            raise InputError(
                f"{', '.join(str(p) for p in paths)}: no glibc-hwcaps variant to benchmark "
                "(no DIR/glibc-hwcaps/LEVEL/SONAME)",
                hint="build the package with 'hwcapdeb build --profile ...' first",
            )
        program = resolve_program(command, trees)
        model = cpu or host_model(arch_name)
        levels = offered
        if options.levels:
            unknown = [lv for lv in options.levels if lv not in offered]
            if unknown:
                raise UsageError(
                    f"no {unknown[0]} variant in the package",
                    hint="it has " + ", ".join(offered),
                )
            levels = [lv for lv in levels if lv in options.levels]
        results = {BASELINE: VariantResult(BASELINE, MEASURED, "baseline", "the reference")}
        for level in levels:
            why = _measurable(level, model, arch)
            result = VariantResult(
                level, MEASURED if why is None else NOT_MEASURABLE,
                "" if why is None else UNMEASURED, "" if why is None else f"not measurable: {why}",
                added_bytes=layout.added_bytes(level),
            )
            results[level] = result
        bench = _Bench(layout, program, loader, options, scratch, progress)
        if target is not None:
            bench.extra_libdirs = target.library_path()
        _measure(bench, results, options)
        decide(results, options)
        notes = list(layout.ignored)
        if program.note:
            notes.append(program.note)
        if target is not None and target.warning:
            notes.append(target.warning)
        return BenchReport(list(command), program, loader, model.name, options,
                           list(results.values()), notes, target)


def _measure(bench: _Bench, results: dict[str, VariantResult], options: BenchOptions) -> None:
    base = results[BASELINE]
    active = [r for r in results.values() if r.status == MEASURED]
    # warm-up: the first run of each variant proves which files it maps
    for result in active:
        bench.progress(f"warm-up {result.level}")
        run = bench.proving_run(result)
        if not run.ok:
            if result is base:
                raise ExternalCommandError(
                    f"COMMAND {run.describe()} with the baseline libraries",
                    hint="bench needs a command that succeeds; try it on its own first: "
                    + shlex.join(bench.argv(BASELINE)),
                )
            bench.record_failure(result, run)
    for _ in range(options.warmup - 1):
        for result in active:
            if result.status == MEASURED:
                run, _pid = bench.run(result.level)
                if not run.ok and result is not base:
                    bench.record_failure(result, run)
    rng = random.Random(options.seed)
    for round_no in range(options.rounds):
        order = [r for r in active if r.status == MEASURED]
        rng.shuffle(order)
        bench.progress(f"round {round_no + 1}/{options.rounds}")
        for result in order:
            run, _pid = bench.run(result.level)
            if not run.ok:
                if result is base:
                    raise ExternalCommandError(
                        f"COMMAND {run.describe()} with the baseline libraries "
                        f"(round {round_no + 1})",
                        hint="bench needs a command that succeeds every time",
                    )
                bench.record_failure(result, run)
                result.runs.clear()
                continue
            result.runs.append(run)
