"""Forced-variant timing: what does each glibc-hwcaps variant buy on this machine?

The command under test runs once per variant per round, through the real
loader with the variant forced::

    ld.so --library-path LIBDIRS --glibc-hwcaps-mask x86-64-v3 COMMAND...   # the v3 variant
    ld.so --library-path LIBDIRS --glibc-hwcaps-mask ''        COMMAND...   # the baseline

``--glibc-hwcaps-mask`` is an allow-list of the built-in subdirectory names
the CPU supports, so a variant is only ever run where the loader itself would
pick it; an empty mask searches no subdirectory at all.  The file really
loaded is checked, not assumed: the warm-up run of each variant has
``LD_DEBUG=libs`` (written to a file, so the command's own output is
untouched) and every library of the package it mapped must be the variant's
file (or the baseline's, for libraries without that variant).

Rounds interleave the variants in a fresh random order, so drift of the
machine (frequency, other load) hits all variants alike; the speedup is the
ratio of medians, baseline over variant, with a paired bootstrap interval
(rounds are resampled as a whole, so each resample keeps the pairing).
"""

from __future__ import annotations

import math
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwcapdeb.cpu import CpuModel, supported_levels, why_not
from hwcapdeb.cpu_sources import host_model
from hwcapdeb.debfile import PackageTree, open_inputs
from hwcapdeb.dl_hwcaps import HWCAPS_DIR
from hwcapdeb.elf import is_elf, read_elf
from hwcapdeb.errors import ExternalCommandError, InputError, UsageError
from hwcapdeb.glibc_rules import loader_env, require_host_arch
from hwcapdeb.profiles import BASELINE, Architecture, Profile, architecture
from hwcapdeb.target_loader import TargetLoader
from hwcapdeb.tools import find_tool

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

#: environment the child must not inherit: it would change what the loader does


# -- what the package offers ------------------------------------------------------------


@dataclass(frozen=True)
class VariantLibrary:
    """One library file of one level, as the loader finds it (by SONAME)."""

    soname: str
    level: str
    path: Path  # DIR[/glibc-hwcaps/LEVEL]/SONAME (the name the loader opens)


@dataclass
class Layout:
    """The libraries and variants found in the unpacked packages."""

    trees: list[PackageTree]
    libdirs: list[Path]  # --library-path entries, in order
    baseline: dict[str, VariantLibrary]  # soname -> baseline file
    variants: dict[str, dict[str, VariantLibrary]]  # level -> soname -> file
    added_bytes: dict[str, int]  # level -> bytes the level's directories add
    ignored: list[str] = field(default_factory=list)  # why some directories were not used

    def expected(self, level: str) -> dict[str, Path]:
        """soname -> the file the loader must map when ``level`` is forced."""
        files = {s: lib.path for s, lib in self.baseline.items()}
        if level != BASELINE:
            files.update({s: lib.path for s, lib in self.variants.get(level, {}).items()})
        return files


def _soname_of(path: Path) -> str | None:
    if not (path.is_file() and is_elf(path)):
        return None
    try:
        return read_elf(path, with_exports=False).soname
    except InputError:
        return None


def _regular_bytes(directory: Path) -> int:
    """Bytes of the regular files below ``directory`` (symlinks cost nothing)."""
    total = 0
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def discover(trees: Sequence[PackageTree], arch: Architecture) -> Layout:
    """Every ``DIR/glibc-hwcaps/LEVEL/SONAME`` of the packages, with its baseline ``DIR/SONAME``."""
    known = {lv.name for lv in arch.levels}
    libdirs: list[Path] = []
    baseline: dict[str, VariantLibrary] = {}
    variants: dict[str, dict[str, VariantLibrary]] = {}
    added: dict[str, int] = {}
    ignored: list[str] = []
    for tree in trees:
        if tree.is_debug:
            continue
        for hwcaps in sorted(tree.root.rglob(HWCAPS_DIR)):
            if not hwcaps.is_dir() or hwcaps.is_symlink():
                continue
            libdir = hwcaps.parent
            found_here = False
            for level_dir in sorted(p for p in hwcaps.iterdir() if p.is_dir()):
                if level_dir.name not in known:
                    ignored.append(f"{level_dir}: not a glibc-hwcaps name of {arch.arch}")
                    continue
                for entry in sorted(level_dir.iterdir()):
                    # the loader opens the NEEDED name, i.e. the SONAME: only that entry counts
                    soname = _soname_of(entry)
                    if soname is None or entry.name != soname:
                        continue
                    variants.setdefault(level_dir.name, {})[soname] = VariantLibrary(
                        soname, level_dir.name, entry
                    )
                    found_here = True
                    plain = libdir / soname
                    if plain.exists():
                        baseline.setdefault(soname, VariantLibrary(soname, BASELINE, plain))
                    else:
                        ignored.append(f"{entry}: no baseline {plain}")
                added[level_dir.name] = added.get(level_dir.name, 0) + _regular_bytes(level_dir)
            if found_here and libdir not in libdirs:
                libdirs.append(libdir)
    # other library directories of the packages, so their programs find every library
    for tree in trees:
        for rel in (f"lib/{arch.triplet}", f"usr/lib/{arch.triplet}", "lib", "usr/lib"):
            candidate = tree.root / rel
            if candidate.is_dir() and candidate not in libdirs:
                libdirs.append(candidate)
    ordered = {lv.name: variants[lv.name] for lv in arch.levels if lv.name in variants}
    return Layout(list(trees), libdirs, baseline, ordered, added, ignored)


# -- the command ----------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """How COMMAND is started through the loader."""

    argv: tuple[str, ...]  # what follows the loader's options
    executable: Path  # the ELF file the loader runs
    origin: str  # "package NAME", "PATH" or "cwd"
    note: str | None = None  # e.g. how a script was handled


def _shebang(path: Path) -> list[str] | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return line.split(None, 1) if line else None


def _locate(name: str, trees: Sequence[PackageTree]) -> tuple[Path, str]:
    """COMMAND's program: a path (inside the packages first, then from cwd) or a name."""
    if "/" in name:
        path = Path(name)
        if not path.is_absolute() and not name.startswith(("./", "../")):
            for tree in trees:  # usr/bin/NAME means the package's own program
                candidate = tree.root / path
                if candidate.exists():
                    return candidate, f"package {tree.name}"
        if path.exists():
            return path.resolve(), "given path"
        raise UsageError(
            f"{name}: no such program",
            hint="give a path, a name on PATH, or a path inside the package (usr/bin/...)",
        )
    for tree in trees:  # the package's own program wins: it is what is benchmarked
        for rel in ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games"):
            candidate = tree.root / rel / name
            if candidate.is_file():
                return candidate, f"package {tree.name}"
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name}: not found in the packages or on PATH")
    return Path(found), "PATH"


def _dynamic_elf(path: Path, what: str) -> None:
    try:
        facts = read_elf(path, with_exports=False)
    except InputError as err:
        raise UsageError(f"{what} {path} is not a readable ELF program ({err})") from None
    if facts.elf_type not in ("ET_EXEC", "ET_DYN") or (facts.soname and not facts.needed):
        raise UsageError(f"{what} {path} is not an executable program")
    if not facts.needed:
        raise UsageError(
            f"{what} {path} is statically linked: it loads no shared library, "
            "so no variant can change it",
            hint="benchmark a program that links the package's libraries dynamically",
        )


def resolve_program(command: Sequence[str], trees: Sequence[PackageTree]) -> Program:
    """Turn COMMAND into something ``ld.so`` can run: it needs a dynamic ELF executable.

    A script is run as ``ld.so INTERPRETER [ARG] SCRIPT ARGS`` (``#!/usr/bin/env
    NAME`` looks NAME up on PATH): the interpreter and what it loads get the
    variant; programs the script starts do not (they are exec'ed normally).
    """
    if not command:
        raise UsageError("no COMMAND given", hint="usage: hwcapdeb bench PATH -- COMMAND [ARGS...]")
    path, origin = _locate(command[0], trees)
    if not os.access(path, os.X_OK) or path.is_dir():
        raise UsageError(f"{path} is not an executable file")
    if is_elf(path):
        _dynamic_elf(path, "COMMAND")
        return Program((str(path), *command[1:]), path, origin)
    shebang = _shebang(path)
    if shebang is None:
        raise UsageError(
            f"{path} is neither an ELF program nor a #! script",
            hint="the loader can only run ELF executables",
        )
    interp, *rest = shebang
    args = rest[0].split() if rest else []
    if Path(interp).name == "env" and args:
        flags = [a for a in args if a.startswith("-")]
        if flags:
            raise UsageError(
                f"{path}: '#!{' '.join(shebang)}' passes options to env",
                hint=f"run the interpreter yourself: -- INTERPRETER {path} ...",
            )
        found = shutil.which(args[0])
        if found is None:
            raise UsageError(f"{path}: its interpreter {args[0]} is not on PATH")
        interp, args = found, args[1:]
    interp_path = Path(interp)
    if not interp_path.is_file() or not is_elf(interp_path):
        raise UsageError(
            f"{path}: its interpreter {interp} is not an ELF program",
            hint="run the real interpreter yourself: -- INTERPRETER SCRIPT ...",
        )
    _dynamic_elf(interp_path, "interpreter")
    note = (
        f"{path.name} is a script: its interpreter {interp_path} runs through the loader; "
        "programs the script starts do not get the variant"
    )
    return Program((str(interp_path), *args, str(path), *command[1:]), interp_path, origin, note)


# -- one run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One execution of COMMAND."""

    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    maxrss_kib: int  # ru_maxrss of the child (Linux: KiB)
    exit_code: int | None  # None if killed by a signal
    signal: int | None
    stderr_head: str
    score: float | None = None  # the number --score found in the output

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() \
                else str(self.signal)
            return f"crashed with {name}"
        tail = f": {self.stderr_head}" if self.stderr_head else ""
        return f"exited with status {self.exit_code}{tail}"


#: GNU time's report; ru_maxrss must come from a parent with a small footprint: the
#: kernel carries the high-water mark across exec, so a child forked from Python
#: would report at least Python's own RSS
_RUSAGE_FORMAT = "hwcapdeb-rusage %M %x"
_SIGNALLED = re.compile(r"^Command terminated by signal (\d+)")


def _parse_rusage(text: str) -> tuple[int, int | None]:
    """(maxrss KiB, signal or None) from GNU time's -o file."""
    maxrss, sig = 0, None
    for line in text.splitlines():
        if m := _SIGNALLED.match(line):
            sig = int(m.group(1))
        elif line.startswith("hwcapdeb-rusage "):
            maxrss = int(line.split()[1])
    return maxrss, sig


def _score(pattern: re.Pattern[str], texts: Sequence[str]) -> float | None:
    """The last match of ``pattern`` (its first group, or all of it) in stdout, else stderr."""
    for text in texts:
        # progress displays redraw a line with \r: the last match is the final figure
        matches = list(pattern.finditer(text))
        if matches:
            m = matches[-1]
            raw = m.group(1) if pattern.groups else m.group(0)
            try:
                return float(raw.replace(",", ""))
            except ValueError:
                raise UsageError(f"--score matched '{raw}', which is not a number") from None
    return None


def run_once(argv: Sequence[str], *, env: dict[str, str], stdout: int | None,
             timeout: float, scratch: Path, timed: bool = True,
             score: re.Pattern[str] | None = None) -> tuple[Run, int]:
    """Run ``argv`` once; returns the run and the pid of ``argv`` itself.

    ``timed`` runs it under GNU time (for the peak RSS): wall time is taken
    around fork/exec/wait (GNU time's own start-up is the same for every
    variant), CPU time from wait4.  Untimed, ``argv`` is the direct child, so
    its pid is known (LD_DEBUG_OUTPUT names files by pid) and maxrss is 0.
    """
    err_path, usage_path, out_path = scratch / "stderr", scratch / "rusage", scratch / "stdout"
    usage_path.unlink(missing_ok=True)
    timer = [find_tool("time"), "-f", _RUSAGE_FORMAT, "-o", str(usage_path), "--"] if timed else []
    with err_path.open("w+b") as err, out_path.open("w+b") as out:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen([*timer, *argv], stdout=out if score else stdout, stderr=err,
                                    stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise ExternalCommandError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise ExternalCommandError(
                    f"COMMAND ran longer than {timeout:.0f}s",
                    hint="use a shorter workload or raise --timeout",
                )
            time.sleep(0.0005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        err_text = err.read(1 << 20).decode("utf-8", "replace")
        out.seek(0)
        out_text = out.read(1 << 20).decode("utf-8", "replace") if score else ""
    lines = [ln.strip() for ln in err_text.splitlines()]
    maxrss, sig = _parse_rusage(usage_path.read_text() if usage_path.exists() else "")
    head = next((ln for ln in lines if ln), "")
    code = None if sig is not None else (
        os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    )
    if sig is None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    found = _score(score, (out_text, err_text)) if score else None
    run = Run(wall, usage.ru_utime + usage.ru_stime, maxrss, code, sig, head, found)
    return run, proc.pid


# -- proof of the loaded file ---------------------------------------------------------

_INIT = re.compile(r"^\s*\d+:\s+calling init: (.+?)\s*$")
_TRYING = re.compile(r"^\s*\d+:\s+trying file=(.+?)\s*$")
_FIND = re.compile(r"^\s*\d+:\s+find library=")


def loaded_files(debug_log: str) -> list[Path]:
    """Files the loader mapped, from LD_DEBUG=libs output.

    ``calling init: FILE`` names every object initialised; the last ``trying
    file=`` of a ``find library=`` block is the one it found (kept as a
    fallback for objects that die before their initialiser runs).
    """
    seen: dict[str, None] = {}
    last_try: str | None = None
    for line in debug_log.splitlines():
        if _FIND.match(line):
            if last_try:
                seen.setdefault(last_try)
            last_try = None
        elif m := _TRYING.match(line):
            last_try = m.group(1)
        elif m := _INIT.match(line):
            if last_try:
                seen.setdefault(last_try)
                last_try = None
            seen.setdefault(m.group(1))
    if last_try:
        seen.setdefault(last_try)
    return [Path(p) for p in seen]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


# -- statistics -----------------------------------------------------------------------


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


# -- the benchmark --------------------------------------------------------------------


@dataclass
class VariantResult:
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
        own = self.layout.variants.get(result.level, {})
        for soname, want in expected.items():
            got = next((p for p in mapped if p.name == soname), None)
            if got is not None:
                result.loaded[soname] = self.shown(got)
                if not _same_file(got, want):
                    result.status, result.verdict = FAILED, DROP
                    result.reason = f"the loader mapped {got} instead of {want}"
                elif soname in own:
                    result.maps_variant = True
        if result.level == BASELINE and not result.loaded and run.ok:
            names = ", ".join(sorted({p.name for p in mapped})) or "nothing"
            raise UsageError(
                f"COMMAND loads no library of the package (it loaded {names})",
                hint="benchmark a program that links "
                + ", ".join(sorted(expected)) + " dynamically",
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
        if not layout.variants:
            raise InputError(
                f"{', '.join(str(p) for p in paths)}: no glibc-hwcaps variant to benchmark "
                "(no DIR/glibc-hwcaps/LEVEL/SONAME)",
                hint="build the package with 'hwcapdeb build --profile ...' first",
            )
        program = resolve_program(command, trees)
        model = cpu or host_model(arch_name)
        levels = list(layout.variants)
        if options.levels:
            unknown = [lv for lv in options.levels if lv not in layout.variants]
            if unknown:
                raise UsageError(
                    f"no {unknown[0]} variant in the package",
                    hint="it has " + ", ".join(layout.variants),
                )
            levels = [lv for lv in levels if lv in options.levels]
        results = {BASELINE: VariantResult(BASELINE, MEASURED, "baseline", "the reference")}
        for level in levels:
            why = _measurable(level, model, arch)
            result = VariantResult(
                level, MEASURED if why is None else NOT_MEASURABLE,
                "" if why is None else UNMEASURED, "" if why is None else f"not measurable: {why}",
                added_bytes=layout.added_bytes.get(level, 0),
            )
            results[level] = result
        bench = _Bench(layout, program, loader, options, scratch, progress)
        if target is not None:
            bench.extra_libdirs = target.library_path()
        _measure(bench, results, options)
        _decide(results, options)
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


def _decide(results: dict[str, VariantResult], options: BenchOptions) -> None:
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


def write_profiles(report: BenchReport, path: Path) -> None:
    """The kept variants, one profile name a line: ``hwcapdeb convert --profile`` reads them."""
    lines = [
        "# hwcapdeb bench: variants that pay on this machine "
        f"(--min-speedup {report.options.min_speedup:g}, {report.cpu})",
        *(f"# dropped {v.level}: {v.reason}" for v in report.variants
          if v.verdict in (DROP, UNMEASURED)),
        *report.kept,
    ]
    try:
        path.write_text("\n".join(lines) + "\n")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None


def read_profiles(path: Path) -> list[str]:
    """Profile names of a ``--write-profiles`` file (comments and blank lines skipped)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def drop_levels(profiles: Sequence[Profile], drop: Sequence[str]) -> list[Profile]:
    """``profiles`` without those of the levels (or profile names) in ``drop``.

    ``hwcapdeb convert --drop LEVEL`` uses it to act on a bench verdict; each
    item may be a comma list.  Naming a level no profile builds is a
    UsageError (a typo would otherwise ship the variant silently), and so is
    dropping every profile (revert the package instead).
    """
    names = [n.strip() for item in drop for n in item.split(",") if n.strip()]
    known = {p.level.name for p in profiles} | {p.name for p in profiles}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"--drop {unknown[0]}: no profile given builds that level",
            hint="the profiles build " + ", ".join(p.level.name for p in profiles),
        )
    kept = [p for p in profiles if p.level.name not in names and p.name not in names]
    if not kept:
        raise UsageError(
            "--drop leaves no profile to build",
            hint="no variant pays: keep the package as it is ('hwcapdeb revert' if converted)",
        )
    return kept
