"""The shared model: a library and its variants in a package tree.

A :class:`Library` is one SONAME in one library directory: its baseline
``DIR/SONAME`` and its ``DIR/glibc-hwcaps/LEVEL/`` builds, each a
:class:`LibraryFile` with its ELF facts.  :class:`LibraryCollector` walks the
unpacked packages (several packages may hold one library's builds) and
reports, as findings, what the loader would trip over in the layout.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwcapdeb.debfile import PackageTree
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
        if "glibc-hwcaps" in dirs:
            yield Path(dirpath), Path(dirpath) / "glibc-hwcaps"
        # debug files are evidence, never audited as libraries
        dirs[:] = [d for d in dirs if d != "glibc-hwcaps" and not (
            Path(dirpath) == root / "usr/lib" and d == "debug")]


def _real_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and not p.is_symlink() and is_elf(p)
    )


class LibraryCollector:
    """Finds every library with variants in package trees, and what is wrong with
    how they are laid out (findings: junk, unknown directories, SONAME links)."""


    def __init__(self, arch: Architecture, trees: Sequence[PackageTree] = ()) -> None:
        self.arch = arch
        self.trees = list(trees)  # every non-debug package: a split layout spreads a library
        self.findings: list[Finding] = []
        self.libraries: dict[tuple[str, str], Library] = {}

    def add(self, severity: str, tag: str, package: str, path: str, message: str) -> None:
        self.findings.append(Finding(severity, tag, package, path, message))

    def _build(self, tree: PackageTree, level: Level, file: Path) -> LibraryFile | None:
        rel = file.relative_to(tree.root).as_posix()
        try:
            facts = read_elf(file)
        except HwcapdebError as err:
            self.add("error", "unreadable-file", tree.name, rel, err.message)
            return None
        return LibraryFile(tree.name, level, file, rel, facts, file.stat().st_size)

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
                    entry = sub / soname
                    if entry.is_file() and is_elf(entry):
                        build.soname_path = entry
                    self._check_soname_link(tree, sub, build, soname)

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

    def _check_soname_link(self, tree: PackageTree, sub: Path, build: LibraryFile,
                           soname: str) -> None:
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
