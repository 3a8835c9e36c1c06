"""``hwcapdeb verify``: prove from the built files alone that a multi-build package is right.

:func:`verify_paths` takes .deb files, .changes files or unpacked trees and
returns a :class:`Report`: lintian-style findings, the dispatch matrix (which
file each library resolves to on each CPU, and whether that file is safe
there) and the bytes each variant adds.  Nothing is executed except the real
loader for the host row of the matrix.

Tags (severity):

- ``missing-soname-link`` (E): a glibc-hwcaps directory lacks the SONAME name;
  the loader looks up NEEDED names only, so the variant is never used.
- ``abi-mismatch`` (E): a variant's SONAME, ELF class, machine or exported
  dynamic symbols (with versions) differ from the baseline's.
- ``isa-marker-mismatch`` (E/W): GNU_PROPERTY_X86_ISA_1_NEEDED above the
  directory's level (glibc refuses the object: fatal) or a baseline marked
  above baseline (E); a variant with no marker or one below its level (W).
- ``isa-leak`` (E): code above the file's level that nothing dispatches at run
  time (see :mod:`hwcapdeb.isa_audit` for the heuristic and DWARF evidence).
- ``variant-adds-nothing`` (W): a variant identical to the next lower build or
  using no instruction above it: pure bloat.
- ``variant-without-baseline`` (E): a variant whose baseline is not shipped.
- ``unknown-hwcaps-directory`` (W): glibc never searches that subdirectory.
- ``unsafe-resolution`` (E): on some CPU of the matrix the loader picks a file
  whose unguarded code needs features that CPU lacks.
- ``loader-disagrees`` (E): the real loader picked another file than the model.
- ``legacy-hwcaps-directory`` (W): on some CPU the loader picks a copy in a legacy
  hwcaps directory (tls/, x86_64/, haswell/...): glibc <= 2.36 loads it, newer
  releases never look there (rule legacy-hwcaps, profiles/glibc.json).
- ``target-loader-unavailable`` (W): the build's libc6 loader could not be had;
  the host's loader answered instead (hwcapdeb.target_loader).
- ``unreadable-file`` (E): a library that cannot be parsed.
- ``unloadable-variant`` (E): the loader picks a file and refuses it, fatally (no
  fallback): a glibc-hwcaps link to something that is no shared library, an
  object without loadable segments or dynamic section, a PIE executable...
- ``duplicate-variant`` (E): two packages ship the same level of one library.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwcapdeb import cpu as cpu_mod
from hwcapdeb import loader, probe
from hwcapdeb.debfile import PackageTree, open_inputs
from hwcapdeb.elf import (
    ElfFacts,
    debug_file_for,
    decode_isa_needed,
    is_elf,
    isa_needed_rank,
    read_code,
    read_elf,
)
from hwcapdeb.errors import HwcapdebError, InputError
from hwcapdeb.isa_audit import IsaAudit, audit
from hwcapdeb.isa_codes import level_table
from hwcapdeb.profiles import Architecture, Level, architecture
from hwcapdeb.target_loader import TargetLoader, select_loader

SEVERITY_LETTER = {"error": "E", "warning": "W", "info": "I"}


@dataclass(frozen=True)
class Finding:
    """One lintian-style finding: every verdict carries its reason."""

    severity: str  # error, warning, info
    tag: str
    package: str
    path: str  # inside the package: usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3
    message: str

    def lintian_line(self) -> str:
        letter = SEVERITY_LETTER[self.severity]
        return f"{letter}: {self.package}: {self.tag} {self.path} ({self.message})"

    def to_json(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "tag": self.tag,
            "package": self.package,
            "path": self.path,
            "message": self.message,
        }


@dataclass
class Build:
    """One build of a library: the baseline or one glibc-hwcaps variant."""

    package: str
    level: Level
    file: Path  # the real file on disk
    relpath: str  # its path inside the package
    facts: ElfFacts
    size: int
    audit: IsaAudit | None = None


@dataclass
class Library:
    """A library with variants: the builds of one SONAME in one library directory."""

    soname: str
    libdir: str  # relative, e.g. usr/lib/x86_64-linux-gnu
    baseline: Build | None
    variants: dict[str, Build] = field(default_factory=dict)  # level name -> build

    @property
    def builds(self) -> list[Build]:
        return [b for b in [self.baseline, *self.variants.values()] if b is not None]

    @property
    def package(self) -> str:
        return (self.baseline or next(iter(self.variants.values()))).package


@dataclass(frozen=True)
class SizeRow:
    package: str
    library: str
    level: str
    bytes: int
    baseline: bool = False


@dataclass
class Report:
    """What ``hwcapdeb verify`` found; ``exit_code`` 1 if any finding is an error."""

    findings: list[Finding]
    matrix: list[Cell]
    cpus: list[str]
    sizes: list[SizeRow]
    libraries: list[Library]
    arch: str = "amd64"
    loader: TargetLoader | None = None  # the ld.so that answered (None: not asked)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def added_bytes(self) -> dict[str, int]:
        """Package -> bytes its variants add over the baseline builds."""
        totals: dict[str, int] = {}
        for row in self.sizes:
            if not row.baseline:
                totals[row.package] = totals.get(row.package, 0) + row.bytes
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "loader": self.loader.to_json() if self.loader else None,
            "findings": [f.to_json() for f in self.findings],
            "matrix": [c.to_json() for c in self.matrix],
            "cpus": self.cpus,
            "sizes": [
                {"package": r.package, "library": r.library, "level": r.level, "bytes": r.bytes}
                for r in self.sizes
            ],
            "added_bytes": self.added_bytes(),
            "libraries": [
                {
                    "soname": lib.soname,
                    "libdir": lib.libdir,
                    "package": lib.package,
                    "builds": {b.level.name: b.relpath for b in lib.builds},
                }
                for lib in self.libraries
            ],
        }


# --- discovery -----------------------------------------------------------------


def _hwcaps_dirs(root: Path) -> Iterator[tuple[Path, Path]]:
    """(library directory, glibc-hwcaps directory) pairs below ``root``."""
    for dirpath, dirs, _files in os.walk(root):
        if "glibc-hwcaps" in dirs:
            yield Path(dirpath), Path(dirpath) / "glibc-hwcaps"
        # debug files are evidence, never audited as libraries
        dirs[:] = [d for d in dirs if d != "glibc-hwcaps" and not (
            Path(dirpath) == root / "usr/lib" and d == "debug")]


def _real_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and not p.is_symlink() and is_elf(p)
    )


class _Collector:
    def __init__(self, arch: Architecture, trees: Sequence[PackageTree] = ()) -> None:
        self.arch = arch
        self.trees = list(trees)  # every non-debug package: a split layout spreads a library
        self.findings: list[Finding] = []
        self.libraries: dict[tuple[str, str], Library] = {}

    def add(self, severity: str, tag: str, package: str, path: str, message: str) -> None:
        self.findings.append(Finding(severity, tag, package, path, message))

    def _build(self, tree: PackageTree, level: Level, file: Path) -> Build | None:
        rel = file.relative_to(tree.root).as_posix()
        try:
            facts = read_elf(file)
        except HwcapdebError as err:
            self.add("error", "unreadable-file", tree.name, rel, err.message)
            return None
        return Build(tree.name, level, file, rel, facts, file.stat().st_size)

    def collect(self, tree: PackageTree) -> None:
        known = {lv.name: lv for lv in self.arch.levels}
        for libdir, hwcaps in _hwcaps_dirs(tree.root):
            rel_libdir = libdir.relative_to(tree.root).as_posix()
            for sub in sorted(p for p in hwcaps.iterdir() if p.is_dir()):
                rel_sub = sub.relative_to(tree.root).as_posix()
                level = known.get(sub.name)
                if level is None:
                    names = ", ".join(lv.name for lv in self.arch.search_order)
                    self.add("warning", "unknown-hwcaps-directory", tree.name, rel_sub,
                             f"glibc on {self.arch.arch} searches only {names}" if names else
                             f"glibc has no glibc-hwcaps subdirectories on {self.arch.arch}")
                    continue
                for junk in sorted(p for p in sub.iterdir()
                                   if p.is_file() and not p.is_symlink() and not is_elf(p)):
                    # named like a library, the loader would try it and fail; else harmless
                    library_like = ".so" in junk.name
                    self.add("error" if library_like else "warning", "unreadable-file", tree.name,
                             junk.relative_to(tree.root).as_posix(),
                             "not an ELF file: nothing but libraries belongs in glibc-hwcaps")
                self._check_links(tree, sub)
                for file in _real_files(sub):
                    build = self._build(tree, level, file)
                    if build is None:
                        continue
                    soname = self._group_name(libdir, file, build)
                    lib = self._library(tree, libdir, rel_libdir, soname)
                    if level.name in lib.variants:
                        other = lib.variants[level.name]
                        if other.package != tree.name:
                            self.add("error", "duplicate-variant", tree.name, build.relpath,
                                     f"{other.package} ships glibc-hwcaps/{level.name} of "
                                     f"{soname} too: the packages conflict")
                        continue  # two real files for one SONAME: the link decides, checked below
                    lib.variants[level.name] = build
                    self._check_soname_link(tree, sub, build, soname)

    def _group_name(self, libdir: Path, file: Path, build: Build) -> str:
        """The SONAME a variant belongs to: its baseline's (same file name), else its own."""
        rel = libdir.relative_to(next(t.root for t in self.trees if libdir.is_relative_to(t.root)))
        for twin in [libdir / file.name, *(t.root / rel / file.name for t in self.trees)]:
            if twin.is_file() and is_elf(twin):
                with contextlib.suppress(HwcapdebError):
                    soname = read_elf(twin, with_exports=False).soname
                    if soname:
                        return soname
        return build.facts.soname or file.name

    def _library(self, tree: PackageTree, libdir: Path, rel_libdir: str, soname: str) -> Library:
        # one library per directory and SONAME, whichever packages hold its builds
        key = (rel_libdir, soname)
        lib = self.libraries.get(key)
        if lib is None:
            lib = self.libraries[key] = Library(soname, rel_libdir, None)
        if lib.baseline is None:
            lib.baseline = self._find_baseline(tree, libdir, soname)
        return lib

    def _find_baseline(self, tree: PackageTree, libdir: Path, soname: str) -> Build | None:
        link = libdir / soname
        if link.exists():
            target = link.resolve()
            if target.is_file() and is_elf(target):
                return self._build(tree, self.arch.baseline, target)
        for file in _real_files(libdir) if libdir.is_dir() else []:
            with contextlib.suppress(HwcapdebError):
                if read_elf(file, with_exports=False).soname == soname:
                    return self._build(tree, self.arch.baseline, file)
        return None

    def adopt_baselines(self, trees: Sequence[PackageTree]) -> None:
        """A baseline may ship in another package of the same upload (same library dir)."""
        for lib in self.libraries.values():
            if lib.baseline is not None:
                continue
            for tree in trees:
                libdir = tree.root / lib.libdir
                if libdir.is_dir():
                    lib.baseline = self._find_baseline(tree, libdir, lib.soname)
                    if lib.baseline:
                        break

    def _check_links(self, tree: PackageTree, sub: Path) -> None:
        """A link in glibc-hwcaps/LEVEL to a file that is no ELF object: the loader opens
        it on every CPU of that level and fails (the real file's own checks are below)."""
        for link in sorted(p for p in sub.iterdir() if p.is_symlink() and p.exists()):
            target = link.resolve()
            if target.parent == sub.resolve() and ".so" in target.name:
                continue  # the junk check below names that file itself, as an error
            if target.is_file() and not is_elf(target):
                self.add("error", "unloadable-variant", tree.name,
                         link.relative_to(tree.root).as_posix(),
                         f"links to {os.readlink(link)}, which is no ELF object: the loader "
                         f"picks it on every CPU of {sub.name} and fails (fatal)")

    def _check_soname_link(self, tree: PackageTree, sub: Path, build: Build, soname: str) -> None:
        link = sub / soname
        rel = build.relpath
        if not link.exists() and not link.is_symlink():
            self.add("error", "missing-soname-link", tree.name, rel,
                     f"glibc-hwcaps/{sub.name} has no {soname}: the loader looks up the "
                     "SONAME and never uses this variant")
        elif not link.exists():
            self.add("error", "missing-soname-link", tree.name, rel,
                     f"{soname} in glibc-hwcaps/{sub.name} is a dangling link "
                     f"(-> {os.readlink(link)})")
        elif link.is_dir():
            self.add("error", "missing-soname-link", tree.name, rel,
                     f"{soname} in glibc-hwcaps/{sub.name} is a directory: the loader opens it, "
                     "cannot read it and fails (fatal)")
        elif link.resolve().parent != sub.resolve():
            self.add("error", "missing-soname-link", tree.name, rel,
                     f"{soname} in glibc-hwcaps/{sub.name} points outside it "
                     f"(-> {os.readlink(link)}): that is not this variant")


# --- checks --------------------------------------------------------------------


def _symbol_text(keys: Iterable[tuple[str, str | None]], limit: int = 3) -> str:
    items = sorted(f"{n}@{v}" if v else n for n, v in keys)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_abi(lib: Library, base: Build, var: Build, add: Any) -> None:
    a, b = base.facts, var.facts
    problems = []
    if a.soname != b.soname:
        problems.append(f"SONAME {b.soname} differs from the baseline's {a.soname}")
    if a.elf_class != b.elf_class:
        problems.append(f"ELF class {b.elf_class}-bit differs from the baseline's "
                        f"{a.elf_class}-bit")
    if a.machine != b.machine:
        problems.append(f"machine {b.machine} differs from the baseline's {a.machine}")
    base_keys = {s.key() for s in a.exports}
    var_keys = {s.key() for s in b.exports}
    missing, extra = base_keys - var_keys, var_keys - base_keys
    if missing:
        problems.append(f"lacks {_symbol_text(missing)}, exported by the baseline")
    if extra:
        problems.append(f"exports {_symbol_text(extra)}, which the baseline does not")
    for problem in problems:
        add("error", "abi-mismatch", var.package, var.relpath, problem)


def check_marker(arch: Architecture, build: Build, add: Any) -> None:
    if arch.marker != "x86-isa-1-needed":
        return  # the only ISA marker glibc checks is x86's
    bits = build.facts.isa_needed
    rank = isa_needed_rank(bits)
    level = build.level
    names = "/".join(decode_isa_needed(bits or 0))
    if build.level.is_baseline:
        if rank > 0:
            add("error", "isa-marker-mismatch", build.package, build.relpath,
                f"the baseline's ISA marker needs {names}: glibc refuses to load it on "
                "baseline CPUs")
        return
    if bits is None:
        add("warning", "isa-marker-mismatch", build.package, build.relpath,
            f"no ISA marker: the {level.name} flags may not have reached the compiler "
            f"(link with -Wl,-z,{level.name}, as hwcapdeb's profiles do)")
    elif rank > level.rank:
        add("error", "isa-marker-mismatch", build.package, build.relpath,
            f"ISA marker needs {names}, above glibc-hwcaps/{level.name}: glibc picks this "
            f"directory on {level.name} CPUs and then refuses the file (fatal)")
    elif rank < level.rank:
        add("warning", "isa-marker-mismatch", build.package, build.relpath,
            f"ISA marker says {names}, below its directory {level.name}: was it built "
            f"with the {level.name} flags?")


def check_isa_leak(build: Build, add: Any, arch_name: str) -> None:
    result = build.audit
    if result is None:
        return
    table = level_table(arch_name)
    leaks = result.leaks(build.level.rank)
    if not leaks:
        return
    first = leaks[0]
    features = "/".join(first.features)
    where = "baseline" if build.level.is_baseline else build.level.name
    message = f"{first.mnemonic} in {first.function}: {features} above {where}"
    if first.rank >= table.beyond:
        message = f"{first.mnemonic} in {first.function}: {features}, beyond every level"
    if len(leaks) > 1:
        message += f"; {len(leaks) - 1} more function(s)"
    message += f"; {first.reason.split(': ', 1)[1]}"
    add("error", "isa-leak", build.package, build.relpath, message)


def _text_bytes(build: Build) -> bytes:
    try:
        facts = read_code(build.file)
    except HwcapdebError:
        return b""
    return b"".join(s.data for s in facts.sections if s.name == ".text")


def check_adds_nothing(lib: Library, arch: Architecture, add: Any) -> None:
    ordered = sorted(lib.builds, key=lambda b: b.level.rank)
    for lower, var in itertools.pairwise(ordered):
        if var.audit is None or lower.audit is None:
            continue
        if _text_bytes(var) == _text_bytes(lower):
            add("warning", "variant-adds-nothing", var.package, var.relpath,
                f"its code is identical to {lower.relpath}: {var.size} bytes of pure bloat")
            continue
        top = var.audit.max_rank
        if top <= lower.level.rank:
            used = level_table(arch.arch).level_name(top) if top else "baseline"
            add("warning", "variant-adds-nothing", var.package, var.relpath,
                f"uses no instruction above {lower.level.name} (its highest: {used}): "
                f"{var.size} bytes of pure bloat")


# --- the dispatch matrix --------------------------------------------------------

#: matrix rows when none are given: baseline to AVX-512, plus this machine
DEFAULT_CPUS = ("x86_64", "nehalem", "haswell", "skylake_avx512", "zen4", cpu_mod.HOST)


@dataclass(frozen=True)
class Cell:
    """Which build of one library one CPU loads, and whether that build is safe there."""

    cpu: str
    library: str  # SONAME
    package: str  # the package of the build loaded (of the baseline if none loads)
    resolved: str | None  # path inside the package; None if loading fails
    level: str | None
    safe: bool
    reason: str
    real: str | None = None  # what the real loader picked (host rows), or its error
    agrees: bool | None = None  # None: the real loader was not asked
    libdir: str = ""
    #: what the model says it did not model (legacy hwcaps directories), when it disagrees
    model_note: str | None = None
    #: the file the loader picked and refused (path inside its package), when loading fails
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "library": self.library,
            "libdir": self.libdir,
            "package": self.package,
            "resolved": self.resolved,
            "level": self.level,
            "safe": self.safe,
            "reason": self.reason,
            "real_loader": self.real,
            "agrees": self.agrees,
            "model_note": self.model_note,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class _Row:
    label: str
    model: cpu_mod.CpuModel
    tunables: str | None
    real: bool  # ask the real loader too (the host and its masks)


def _host_masks(model: cpu_mod.CpuModel) -> list[str]:
    """GLIBC_TUNABLES masks that step the host down one level at a time."""
    arch = architecture(model.arch)
    top = cpu_mod.highest_level(model)
    maskable = cpu_mod.feature_table().maskable
    masks, removed = [], []
    for level in reversed(arch.levels):
        if level.rank > top.rank:
            continue
        first = next((f for f in level.adds if f in maskable and f in model.features), None)
        if first is None:
            break
        removed.append(f"-{first}")
        masks.append(f"glibc.cpu.hwcaps={','.join(removed)}")
    return masks


def cpu_rows(specs: Sequence[str] | None, arch: Architecture) -> list[_Row]:
    """The matrix rows: named models, and the host with its stepping-down masks."""
    rows = []
    for spec in specs or DEFAULT_CPUS:
        name, _, tunables = spec.partition(":")
        model = cpu_mod.cpu_model(name, arch.arch)
        is_host = name == cpu_mod.HOST
        if tunables:
            rows.append(_Row(spec, cpu_mod.apply_tunables(model, tunables), tunables, is_host))
            continue
        rows.append(_Row(name, model, None, is_host))
        if is_host and specs is None:
            for mask in _host_masks(model):
                rows.append(_Row(f"host:{mask}", cpu_mod.apply_tunables(model, mask), mask, True))
    return rows


def _safety(build: Build | None, model: cpu_mod.CpuModel) -> tuple[bool, str]:
    if build is None or build.audit is None:
        return True, "not audited"
    known = cpu_mod.feature_table().names
    needed = build.audit.unguarded_features(0)
    missing = sorted(f for f in needed if f in known and f not in model.features)
    if missing:
        return False, f"its code needs {'/'.join(missing)} without a run-time check"
    bits = build.facts.isa_needed or 0
    if bits and bits & model.isa_1 != bits:
        return False, f"its ISA marker needs {'/'.join(decode_isa_needed(bits))}"
    top = "/".join(sorted(needed)) or "nothing above baseline"
    return True, f"unguarded code needs {top}"


def dispatch_matrix(
    trees: Sequence[PackageTree],
    libraries: Sequence[Library],
    arch: Architecture,
    *,
    cpus: Sequence[str] | None = None,
    ask_loader: bool = True,
    target: TargetLoader | None = None,
) -> tuple[list[Cell], list[str]]:
    """Resolve every library on every CPU row with the loader model (and the real loader).

    ``target``: the ld.so to ask (default the host's); the model follows its glibc release.
    """
    if not libraries:
        return [], []
    rows = cpu_rows(cpus, arch)
    cells = []
    with tempfile.TemporaryDirectory(prefix="hwcapdeb-merged-") as scratch:
        merged = _merged_view(trees, libraries, Path(scratch))
        for lib in libraries:
            by_path = {b.file.resolve(): b for b in lib.builds}
            # the library's directory as installed, then every other one (siblings it may need)
            search = [merged / lib.libdir,
                      *sorted({merged / o.libdir for o in libraries} - {merged / lib.libdir})]
            for row in rows:
                # DT_NEEDED checked as the loader does (this machine's system directories):
                # the host rows' real loader fails too when a dependency is missing here
                res = loader.resolve(lib.soname, row.model, library_path=search, system=False,
                                     glibc=target.glibc if target else None)
                build = by_path.get(res.path.resolve()) if res.path else None
                rel = build.relpath if build else (
                    _relative(res.path.resolve(), trees) if res.path else None)
                if res.path is None:
                    safe, reason = False, res.error or "not found"
                else:
                    safe, reason = _safety(build, row.model)
                real, agrees, note = None, None, None
                if ask_loader and row.real:
                    real, agrees = _ask_real_loader(lib.soname, search, row.tunables, res, trees,
                                                    target)
                if agrees is False:
                    note = "; ".join(
                        f"{_relative(Path(step.path).resolve(), trees)}: {step.reason}"
                        for step in res.trace if step.verdict == loader.NOTE) or None
                package = build.package if build else lib.package
                level = res.level.name if res.level else (
                    f"legacy {res.legacy_dir}/" if res.legacy_dir else None)
                refused = _refused(res, merged, by_path, trees, lib.baseline)
                cells.append(Cell(row.label, lib.soname, package, rel, level, safe, reason, real,
                                  agrees, lib.libdir, note, refused))
    return cells, [r.label for r in rows]


def _refused(
    res: loader.Resolution, merged: Path, by_path: dict[Path, Build],
    trees: Sequence[PackageTree], baseline: Build | None,
) -> str | None:
    """The path (inside its package) of the file the model refused, fatally.  A
    dependency the baseline needs too is not the package's fault: it is not installed
    on this machine (the cell says so); one only the variant needs is."""
    if res.path is not None or not res.trace or res.trace[-1].verdict != loader.REFUSED:
        return None
    needed = re.search(r"its DT_NEEDED (\S+) cannot be loaded", res.trace[-1].reason)
    if needed and (baseline is None or needed.group(1) in baseline.facts.needed):
        return None
    picked = Path(res.trace[-1].path)
    with contextlib.suppress(OSError):
        build = by_path.get(picked.resolve())
        if build is not None:
            return build.relpath
    with contextlib.suppress(ValueError):
        return picked.relative_to(merged).as_posix()
    return _relative(picked, trees)


def _merged_view(trees: Sequence[PackageTree], libraries: Sequence[Library], dest: Path) -> Path:
    """The library directories of all packages merged, as dpkg would install them.

    Of their subdirectories, those the loader searches: glibc-hwcaps/ and the
    legacy hwcaps directories (tls/, haswell/, x86_64/...; glibc 2.33-2.36 still
    search them, the model does not, and the real loader must see them to say so).
    Symbolic links are copied as they are; regular files become links to the
    unpacked originals.  The first package to ship a path wins (dpkg would refuse
    the second: ``duplicate-variant``).
    """
    searched = {"glibc-hwcaps", *loader.LEGACY_HWCAPS_DIRS}
    for rel in sorted({lib.libdir for lib in libraries}):
        for tree in trees:
            if tree.is_debug:
                continue
            source = tree.root / rel
            if not source.is_dir():
                continue
            for dirpath, dirs, files in os.walk(source):
                here = Path(dirpath)
                dirs[:] = [d for d in dirs if here != source or d in searched]
                target_dir = dest / rel / here.relative_to(source)
                target_dir.mkdir(parents=True, exist_ok=True)
                for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
                    entry, target = here / name, target_dir / name
                    if target.exists() or target.is_symlink():
                        continue
                    if entry.is_symlink():
                        os.symlink(_link_in_view(entry, tree.root, source), target)
                    else:
                        os.symlink(entry.resolve(), target)
    return dest


def _link_in_view(link: Path, root: Path, libdir: Path) -> str:
    """A link's target for the merged view: kept when it stays in the library directory,
    else the file it reaches in the unpacked package (an absolute target is inside the
    package too), so that the loader meets what it would meet once installed."""
    text = os.readlink(link)
    reached = root / text.lstrip("/") if text.startswith("/") else Path(
        os.path.normpath(link.parent / text))
    if not text.startswith("/") and reached.is_relative_to(libdir):
        return text
    if reached.is_relative_to(root) and (reached.exists() or reached.is_symlink()):
        return str(reached)
    return text


def _relative(path: Path, trees: Sequence[PackageTree]) -> str:
    for tree in trees:
        with contextlib.suppress(ValueError):
            return path.relative_to(tree.root).as_posix()
    return str(path)


#: the loader's refusal of a library built against a newer glibc
_NEWER_GLIBC = re.compile(r"version `GLIBC_([0-9.]+)' not found")


def _ask_real_loader(
    soname: str, search: Sequence[Path], tunables: str | None, res: loader.Resolution,
    trees: Sequence[PackageTree], target: TargetLoader | None = None,
) -> tuple[str | None, bool | None]:
    try:
        result = probe.probe(soname, library_path=search, tunables=tunables, loader=target)
    except HwcapdebError as err:
        return f"not asked: {err.message}", None
    if result.path is None:
        too_old = _NEWER_GLIBC.search(result.error or "")
        if too_old and target is not None and target.warning:
            # the build's loader could not be had and the host's is too old to answer
            return (f"not answered: the library needs GLIBC_{too_old.group(1)}, the host's "
                    f"loader is glibc {target.glibc} (target-loader-unavailable)"), None
        # both fail (e.g. a refused marker) or the model loads what the loader cannot
        return f"error: {result.error}", res.path is None
    same = res.path is not None and result.path.resolve() == res.path.resolve()
    return _relative(result.path.resolve(), trees), same


# --- the whole run -------------------------------------------------------------


def _debug_roots(trees: Sequence[PackageTree], extra: Sequence[Path]) -> list[Path]:
    debug = [t.root for t in trees if t.is_debug]
    return [*debug, *(t.root for t in trees if not t.is_debug), *extra]


def _packages_arch(trees: Sequence[PackageTree]) -> str:
    found = {t.architecture for t in trees if t.architecture and t.architecture != "all"}
    if len(found) > 1:
        raise InputError(f"packages of several architectures: {', '.join(sorted(found))}",
                         hint="verify one architecture at a time, or pass --arch")
    return found.pop() if found else "amd64"


def verify_trees(
    trees: Sequence[PackageTree],
    *,
    cpus: Sequence[str] | None = None,
    arch_name: str | None = None,
    debug_roots: Sequence[Path] = (),
    probe: bool = True,
    target: TargetLoader | None = None,
) -> Report:
    """Check every library with variants in the (already unpacked) ``trees``.

    ``target``: the ld.so asked for the host rows (hwcapdeb.target_loader; default
    the host's); the model follows its glibc release.

    ``arch_name`` defaults to the packages' Architecture field (amd64 if none says).
    The instruction audit and the dispatch matrix need x86 (iced-x86 decodes x86,
    and CPU models exist for x86 only); other architectures get the layout, ABI and
    marker checks.
    """
    arch_name = arch_name or _packages_arch(trees)
    arch = architecture(arch_name)
    x86 = arch.marker == "x86-isa-1-needed"
    collector = _Collector(arch, [t for t in trees if not t.is_debug])
    for tree in trees:
        if not tree.is_debug:
            collector.collect(tree)
    collector.adopt_baselines([t for t in trees if not t.is_debug])
    add = collector.add
    roots = _debug_roots(trees, debug_roots)
    libraries = sorted(collector.libraries.values(), key=lambda lib: (lib.libdir, lib.soname))
    sizes: list[SizeRow] = []
    for lib in libraries:
        for build in lib.builds:
            try:
                if x86 and build.facts.machine == "EM_X86_64":
                    debug = debug_file_for(build.facts.build_id, roots)
                    build.audit = audit(build.file, arch_name=arch_name, debug_file=debug)
            except HwcapdebError as err:
                add("error", "unreadable-file", build.package, build.relpath, err.message)
            sizes.append(SizeRow(build.package, lib.soname, build.level.name, build.size,
                                 build.level.is_baseline))
        base = lib.baseline
        if base is None:
            for var in lib.variants.values():
                add("error", "variant-without-baseline", var.package, var.relpath,
                    f"no baseline {lib.soname} in {lib.libdir}: CPUs below "
                    f"{var.level.name} cannot load the library at all")
        else:
            check_marker(arch, base, add)
            check_isa_leak(base, add, arch_name)
        for var in lib.variants.values():
            if base is not None:
                check_abi(lib, base, var, add)
            check_marker(arch, var, add)
            check_isa_leak(var, add, arch_name)
        check_adds_nothing(lib, arch, add)
    cells: list[Cell] = []
    cpu_names: list[str] = []
    if x86:
        cells, cpu_names = dispatch_matrix(trees, libraries, arch, cpus=cpus, ask_loader=probe,
                                           target=target)
    if target is not None and target.warning:
        for lib in libraries:
            add("warning", "target-loader-unavailable", lib.package, lib.soname, target.warning)
    # a file already flagged (leak, marker) is not flagged again per CPU
    flagged = {(f.package, f.path) for f in collector.findings if f.severity == "error"}
    legacy_seen: set[tuple[str, str]] = set()
    # a refused file is named once, unless a finding in its directory already says why
    fatal = {os.path.dirname(f.path) for f in collector.findings if f.severity == "error"
             and f.tag in ("unloadable-variant", "isa-marker-mismatch", "unreadable-file",
                           "missing-soname-link")}
    for cell in cells:
        if cell.level and cell.level.startswith("legacy ") and cell.resolved and (
            (cell.package, cell.resolved) not in legacy_seen
        ):
            legacy_seen.add((cell.package, cell.resolved))
            add("warning", "legacy-hwcaps-directory", cell.package, cell.resolved,
                f"on {cell.cpu} glibc {target.glibc if target else '<= 2.36'} loads this "
                f"{cell.level} copy; glibc >= 2.37 never searches there")
        if not cell.safe and cell.resolved is not None and (
            (cell.package, cell.resolved) not in flagged
        ):
            flagged.add((cell.package, cell.resolved))
            add("error", "unsafe-resolution", cell.package, cell.resolved,
                f"on {cell.cpu} the loader picks this file, but {cell.reason}")
        if cell.refused is not None and os.path.dirname(cell.refused) not in fatal:
            fatal.add(os.path.dirname(cell.refused))
            add("error", "unloadable-variant", cell.package, cell.refused,
                f"on {cell.cpu} the loader picks this file and fails: {cell.reason}")
        if cell.agrees is False:
            note = f"; the model notes {cell.model_note}" if cell.model_note else ""
            if cell.real and _NEWER_GLIBC.search(cell.real):
                note += ("; the library needs a newer glibc than this loader's: pass "
                         "--loader-root with a root or chroot tarball of the target release")
            add("error", "loader-disagrees", cell.package, cell.resolved or cell.library,
                f"on {cell.cpu} the real loader picks {cell.real} but the model says "
                f"{cell.resolved}{note}")
    findings = sorted(collector.findings, key=lambda f: (
        {"error": 0, "warning": 1, "info": 2}[f.severity], f.package, f.path, f.tag))
    return Report(findings, cells, cpu_names, sizes, libraries, arch_name, target)


def verify_paths(
    paths: Sequence[Path | str],
    *,
    cpus: Sequence[str] | None = None,
    arch_name: str | None = None,
    debug_roots: Sequence[Path] = (),
    probe: bool = True,
    scratch: Path | None = None,
    loader_root: Path | None = None,
    detect_loader: bool = True,
) -> Report:
    """Verify .deb files, .changes files or directory trees.

    ``cpus``: matrix rows (archspec names, ``host``, ``host:glibc.cpu.hwcaps=-AVX2``,
    saved cpuinfo files); default :data:`DEFAULT_CPUS`.  ``debug_roots``: extra roots
    holding ``usr/lib/debug/.build-id`` (``/`` for the installed -dbgsym packages).
    ``probe``: also ask the real loader for the host rows.  ``loader_root``: the
    target's root or chroot tarball; else (``detect_loader``) the loader comes from
    the .changes/.buildinfo (hwcapdeb.target_loader.select_loader).  Raises
    InputError for unreadable inputs (the CLI maps that to exit 2).
    """
    if not paths:
        raise InputError("nothing to verify", hint="give .deb, .changes files or directories")
    with contextlib.ExitStack() as stack:
        work = scratch or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="hwcapdeb-"))
        )
        trees = open_inputs([Path(p) for p in paths], work)
        target = None
        arch = arch_name or _packages_arch(trees)
        host_ld_so = architecture(arch).loader
        if loader_root is not None or (detect_loader and host_ld_so and Path(host_ld_so).exists()
                                       and arch == cpu_mod.host_arch()):
            target = select_loader([Path(p) for p in paths], arch, loader_root=loader_root)
        return verify_trees(trees, cpus=cpus, arch_name=arch_name, debug_roots=debug_roots,
                            probe=probe, target=target)
