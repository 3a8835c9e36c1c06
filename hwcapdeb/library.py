"""The shared model: a library and its variants in a package tree.

A :class:`Library` is one SONAME in one library directory: its baseline
``DIR/SONAME`` and its ``DIR/glibc-hwcaps/LEVEL/`` builds, each a
:class:`LibraryFile` with its ELF facts.  :class:`LibraryCollector` walks the
unpacked packages (several packages may hold one library's builds) and
reports, as findings, what the loader would trip over in the layout (the
checks at the end of this module); :func:`collect_libraries` does it all in
one call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwcapdeb.debfile import PackageTree
from hwcapdeb.dl_hwcaps import HWCAPS_DIR
from hwcapdeb.elf import ElfFacts, is_elf, read_elf
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.findings import Finding
from hwcapdeb.isa_audit import IsaAudit
from hwcapdeb.profiles import Architecture, Level


@dataclass
class LibraryFile:
    """One build of a library: the baseline or one glibc-hwcaps variant, as shipped."""

    package: str
    level: Level
    file: Path  # the real file on disk
    relpath: str  # its path inside the package
    facts: ElfFacts
    size: int
    audit: IsaAudit | None = None
    #: DIR[/glibc-hwcaps/LEVEL]/SONAME when that entry leads to an ELF file: the path the
    #: loader opens for this build (None: it never finds the build by its SONAME)
    soname_path: Path | None = None


@dataclass
class Library:
    """A library with variants: the builds of one SONAME in one library directory."""

    soname: str
    libdir: str  # relative, e.g. usr/lib/x86_64-linux-gnu
    baseline: LibraryFile | None
    variants: dict[str, LibraryFile] = field(default_factory=dict)  # level name -> build

    @property
    def builds(self) -> list[LibraryFile]:
        return [b for b in [self.baseline, *self.variants.values()] if b is not None]

    @property
    def package(self) -> str:
        return (self.baseline or next(iter(self.variants.values()))).package


def _hwcaps_dirs(root: Path) -> Iterator[tuple[Path, Path]]:
    """(library directory, glibc-hwcaps directory) pairs below ``root``."""
    for dirpath, dirs, _files in os.walk(root):
        if HWCAPS_DIR in dirs:
            yield Path(dirpath), Path(dirpath) / HWCAPS_DIR
        # debug files are evidence, never audited as libraries
        dirs[:] = [d for d in dirs if d != HWCAPS_DIR and not (
            Path(dirpath) == root / "usr/lib" and d == "debug")]


def _real_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and not p.is_symlink() and is_elf(p)
    )


class LibraryCollector:
    """Finds every library with variants in package trees, and what is wrong with
    how they are laid out (``findings``: junk, unknown directories, SONAME links).

    :func:`collect_libraries` runs it over a set of packages in one call."""

    def __init__(self, arch: Architecture, trees: Sequence[PackageTree] = ()) -> None:
        self.arch = arch
        self.trees = list(trees)  # every non-debug package: a split layout spreads a library
        self.findings: list[Finding] = []
        self.libraries: dict[tuple[str, str], Library] = {}

    def _build(self, tree: PackageTree, level: Level, file: Path) -> LibraryFile | None:
        rel = file.relative_to(tree.root).as_posix()
        try:
            facts = read_elf(file)
        except HwcapdebError as err:
            self.findings.append(Finding("error", "unreadable-file", tree.name, rel, err.message))
            return None
        return LibraryFile(tree.name, level, file, rel, facts, file.stat().st_size)

    def collect(self, tree: PackageTree) -> None:
        known = {lv.name: lv for lv in self.arch.levels}
        for libdir, hwcaps in _hwcaps_dirs(tree.root):
            rel_libdir = libdir.relative_to(tree.root).as_posix()
            for sub in sorted(p for p in hwcaps.iterdir() if p.is_dir()):
                level = known.get(sub.name)
                if level is None:
                    self.findings.append(unknown_directory(self.arch, tree, sub))
                    continue
                self.findings += junk_files(tree, sub)
                self.findings += links_to_non_elf(tree, sub)
                for file in _real_files(sub):
                    build = self._build(tree, level, file)
                    if build is None:
                        continue
                    soname = self._group_name(libdir, file, build)
                    lib = self._library(tree, libdir, rel_libdir, soname)
                    if level.name in lib.variants:
                        other = lib.variants[level.name]
                        if other.package != tree.name:
                            self.findings.append(Finding(
                                "error", "duplicate-variant", tree.name, build.relpath,
                                f"{other.package} ships glibc-hwcaps/{level.name} of "
                                f"{soname} too: the packages conflict"))
                        continue  # two real files for one SONAME: the link decides, checked below
                    lib.variants[level.name] = build
                    entry = sub / soname
                    if entry.is_file() and is_elf(entry):
                        build.soname_path = entry
                    self.findings += soname_link(tree, sub, build, soname)

    def _group_name(self, libdir: Path, file: Path, build: LibraryFile) -> str:
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

    def _find_baseline(self, tree: PackageTree, libdir: Path, soname: str) -> LibraryFile | None:
        link = libdir / soname
        if link.exists():
            target = link.resolve()
            # a link out of the package (absolute, or ../ too far) is not this package's build
            if target.is_relative_to(tree.root) and target.is_file() and is_elf(target):
                build = self._build(tree, self.arch.baseline, target)
                if build is not None:
                    build.soname_path = link
                return build
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


def collect_libraries(
    arch: Architecture, trees: Sequence[PackageTree]
) -> tuple[list[Library], list[Finding]]:
    """Every library with variants in ``trees`` (debug packages left out), sorted by
    directory and SONAME, and the layout findings, in the order they were met."""
    packages = [t for t in trees if not t.is_debug]
    collector = LibraryCollector(arch, packages)
    for tree in packages:
        collector.collect(tree)
    collector.adopt_baselines(packages)
    libraries = sorted(collector.libraries.values(), key=lambda lib: (lib.libdir, lib.soname))
    return libraries, collector.findings


# --- the layout checks: what the loader would trip over in one level directory ---


def _rel(tree: PackageTree, path: Path) -> str:
    return path.relative_to(tree.root).as_posix()


def unknown_directory(arch: Architecture, tree: PackageTree, sub: Path) -> Finding:
    """A glibc-hwcaps subdirectory glibc never searches on ``arch``."""
    names = ", ".join(lv.name for lv in arch.search_order)
    return Finding("warning", "unknown-hwcaps-directory", tree.name, _rel(tree, sub),
                   f"glibc on {arch.arch} searches only {names}" if names else
                   f"glibc has no glibc-hwcaps subdirectories on {arch.arch}")


def junk_files(tree: PackageTree, sub: Path) -> list[Finding]:
    """Regular files in a level directory that are no ELF objects."""
    # named like a library, the loader would try it and fail; else harmless
    return [Finding("error" if ".so" in junk.name else "warning", "unreadable-file", tree.name,
                    _rel(tree, junk),
                    "not an ELF file: nothing but libraries belongs in glibc-hwcaps")
            for junk in sorted(p for p in sub.iterdir()
                               if p.is_file() and not p.is_symlink() and not is_elf(p))]


def links_to_non_elf(tree: PackageTree, sub: Path) -> list[Finding]:
    """A link in glibc-hwcaps/LEVEL to a file that is no ELF object: the loader opens
    it on every CPU of that level and fails (the real file's own checks are elsewhere)."""
    findings = []
    for link in sorted(p for p in sub.iterdir() if p.is_symlink() and p.exists()):
        target = link.resolve()
        if target.parent == sub.resolve() and ".so" in target.name:
            continue  # junk_files names that file itself, as an error
        if target.is_file() and not is_elf(target):
            findings.append(Finding(
                "error", "unloadable-variant", tree.name, _rel(tree, link),
                f"links to {os.readlink(link)}, which is no ELF object: the loader "
                f"picks it on every CPU of {sub.name} and fails (fatal)"))
    return findings


def soname_link(tree: PackageTree, sub: Path, build: LibraryFile, soname: str) -> list[Finding]:
    """The SONAME name in the variant's directory: the only name the loader looks up."""
    link = sub / soname
    if not link.exists() and not link.is_symlink():
        problem = (f"glibc-hwcaps/{sub.name} has no {soname}: the loader looks up the "
                   "SONAME and never uses this variant")
    elif not link.exists():
        problem = (f"{soname} in glibc-hwcaps/{sub.name} is a dangling link "
                   f"(-> {os.readlink(link)})")
    elif link.is_dir():
        problem = (f"{soname} in glibc-hwcaps/{sub.name} is a directory: the loader opens it, "
                   "cannot read it and fails (fatal)")
    elif link.resolve().parent != sub.resolve():
        problem = (f"{soname} in glibc-hwcaps/{sub.name} points outside it "
                   f"(-> {os.readlink(link)}): that is not this variant")
    else:
        return []
    return [Finding("error", "missing-soname-link", tree.name, build.relpath, problem)]
