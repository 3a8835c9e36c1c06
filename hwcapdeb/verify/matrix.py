"""The dispatch matrix: which build of each library each CPU loads, and whether it is safe.

Rows are CPU models (:data:`DEFAULT_CPUS`, the host stepped down by tunables
masks); each :class:`Cell` is the loader model's pick (:mod:`hwcapdeb.loader`)
over the packages merged as dpkg would install them, judged against the
instruction audit, and, for the host rows, the real loader's pick
(:mod:`hwcapdeb.probe`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwcapdeb import cpu as cpu_mod
from hwcapdeb import cpu_sources, dl_hwcaps, dl_search, glibc_rules, loader, probe
from hwcapdeb.debfile import PackageTree
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.glibc_rules import decode_isa_needed, marker_exceeds
from hwcapdeb.library import Library, LibraryFile
from hwcapdeb.profiles import Architecture, architecture
from hwcapdeb.target_loader import TargetLoader

#: matrix rows when none are given: baseline to AVX-512, plus this machine
DEFAULT_CPUS = ("x86_64", "nehalem", "haswell", "skylake_avx512", "zen4", cpu_sources.HOST)

#: the loader's refusal of a library built against a newer glibc
NEWER_GLIBC = re.compile(r"version `GLIBC_([0-9.]+)' not found")


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
class CpuRow:
    """One row of the matrix: a CPU model, under a tunables mask or not."""

    label: str
    model: cpu_mod.CpuModel
    tunables: str | None
    real: bool  # ask the real loader too (the host and its masks)


def host_masks(model: cpu_mod.CpuModel) -> list[str]:
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


def cpu_rows(specs: Sequence[str] | None, arch: Architecture) -> list[CpuRow]:
    """The matrix rows: named models, and the host with its stepping-down masks."""
    rows = []
    for spec in specs or DEFAULT_CPUS:
        name, _, tunables = spec.partition(":")
        model = cpu_sources.cpu_model(name, arch.arch)
        is_host = name == cpu_sources.HOST
        if tunables:
            rows.append(CpuRow(spec, cpu_mod.apply_tunables(model, tunables), tunables, is_host))
            continue
        rows.append(CpuRow(name, model, None, is_host))
        if is_host and specs is None:
            for mask in host_masks(model):
                rows.append(CpuRow(f"host:{mask}", cpu_mod.apply_tunables(model, mask), mask,
                                   True))
    return rows


def safety(build: LibraryFile | None, model: cpu_mod.CpuModel) -> tuple[bool, str]:
    """Is ``build`` safe on ``model`` (its unguarded code, its ISA marker), and why."""
    if build is None or build.audit is None:
        return True, "not audited"
    known = cpu_mod.feature_table().names
    needed = build.audit.unguarded_features(0)
    missing = sorted(f for f in needed if f in known and f not in model.features)
    if missing:
        return False, f"its code needs {'/'.join(missing)} without a run-time check"
    bits = build.facts.isa_needed
    if marker_exceeds(bits, model):
        return False, f"its ISA marker needs {'/'.join(decode_isa_needed(bits or 0))}"
    top = "/".join(sorted(needed)) or "nothing above baseline"
    return True, f"unguarded code needs {top}"


def dispatch_matrix(
    trees: Sequence[PackageTree],
    libraries: Sequence[Library],
    arch: Architecture,
    *,
    cpus: Sequence[str] | None = None,
    ask_real_loader: bool = True,
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
        merged = merged_view(trees, libraries, Path(scratch))
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
                    relative_path(res.path.resolve(), trees) if res.path else None)
                if res.path is None:
                    safe, reason = False, res.error or "not found"
                else:
                    safe, reason = safety(build, row.model)
                real, agrees, note = None, None, None
                if ask_real_loader and row.real:
                    real, agrees = _real_loader_pick(lib.soname, search, row.tunables, res, trees,
                                                     target)
                if agrees is False:
                    note = "; ".join(
                        f"{relative_path(Path(step.path).resolve(), trees)}: {step.reason}"
                        for step in res.trace if step.verdict == dl_search.NOTE) or None
                package = build.package if build else lib.package
                level = res.level.name if res.level else (
                    f"legacy {res.legacy_dir}/" if res.legacy_dir else None)
                refused = _refused(res, merged, by_path, trees, lib.baseline)
                cells.append(Cell(row.label, lib.soname, package, rel, level, safe, reason, real,
                                  agrees, lib.libdir, note, refused))
    return cells, [r.label for r in rows]


def _refused(
    res: dl_search.Resolution, merged: Path, by_path: dict[Path, LibraryFile],
    trees: Sequence[PackageTree], baseline: LibraryFile | None,
) -> str | None:
    """The path (inside its package) of the file the model refused, fatally.  A
    dependency the baseline needs too is not the package's fault: it is not installed
    on this machine (the cell says so); one only the variant needs is."""
    if res.path is not None or not res.trace or res.trace[-1].verdict != glibc_rules.REFUSED:
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
    return relative_path(picked, trees)


def merged_view(trees: Sequence[PackageTree], libraries: Sequence[Library], dest: Path) -> Path:
    """The library directories of all packages merged, as dpkg would install them.

    Of their subdirectories, those the loader searches: glibc-hwcaps/ and the
    legacy hwcaps directories (tls/, haswell/, x86_64/...; glibc 2.33-2.36 still
    search them, the model does not, and the real loader must see them to say so).
    Symbolic links are copied as they are; regular files become links to the
    unpacked originals.  The first package to ship a path wins (dpkg would refuse
    the second: ``duplicate-variant``).
    """
    searched = {dl_hwcaps.HWCAPS_DIR, *glibc_rules.legacy_dir_names()}
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


def relative_path(path: Path, trees: Sequence[PackageTree]) -> str:
    """``path`` inside the package that holds it (as is if none does)."""
    for tree in trees:
        with contextlib.suppress(ValueError):
            return path.relative_to(tree.root).as_posix()
    return str(path)


def _real_loader_pick(
    soname: str, search: Sequence[Path], tunables: str | None, res: dl_search.Resolution,
    trees: Sequence[PackageTree], target: TargetLoader | None = None,
) -> tuple[str | None, bool | None]:
    """What the real loader loads (or its error), and whether the model agrees."""
    try:
        result = probe.probe(soname, library_path=search, tunables=tunables, loader=target)
    except HwcapdebError as err:
        return f"not asked: {err.message}", None
    if result.path is None:
        too_old = NEWER_GLIBC.search(result.error or "")
        if too_old and target is not None and target.warning:
            # the build's loader could not be had and the host's is too old to answer
            return (f"not answered: the library needs GLIBC_{too_old.group(1)}, the host's "
                    f"loader is glibc {target.glibc} (target-loader-unavailable)"), None
        # both fail (e.g. a refused marker) or the model loads what the loader cannot
        return f"error: {result.error}", res.path is None
    same = res.path is not None and result.path.resolve() == res.path.resolve()
    return relative_path(result.path.resolve(), trees), same
