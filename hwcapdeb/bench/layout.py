"""What the packages offer bench: their libraries with variants, as the loader finds them.

The walk is the shared one (:class:`hwcapdeb.library.LibraryCollector`, the
same verify does); bench adds what running a program needs: the loader opens
the NEEDED name, i.e. the SONAME, so the file a forced level must map is
``DIR/glibc-hwcaps/LEVEL/SONAME`` (the baseline's ``DIR/SONAME``), and the
``--library-path`` directories that make the loader look there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwcapdeb.debfile import PackageTree
from hwcapdeb.library import Library, LibraryCollector
from hwcapdeb.profiles import BASELINE, Architecture


@dataclass
class Layout:
    """The libraries with variants found in the unpacked packages, and how to run them."""

    trees: list[PackageTree]
    arch: Architecture
    libraries: list[Library]  # every library the collector found, by (libdir, SONAME)
    libdirs: list[Path]  # --library-path entries, in order
    ignored: list[str] = field(default_factory=list)  # why some directories were not used

    @property
    def offered(self) -> list[Library]:
        """The libraries with at least one variant the loader can open (by its SONAME)."""
        return [lib for lib in self.libraries if any(v.soname_path for v in lib.variants.values())]

    def _paths(self, level: str) -> dict[str, Path]:
        """SONAME -> ``DIR/glibc-hwcaps/LEVEL/SONAME`` (``DIR/SONAME`` for the baseline)."""
        found: dict[str, Path] = {}
        for lib in self.offered:
            build = lib.baseline if level == BASELINE else lib.variants.get(level)
            if build is not None and build.soname_path is not None:
                found.setdefault(lib.soname, build.soname_path)
        return found

    @property
    def levels(self) -> list[str]:
        """The levels with at least one variant the loader can open, lowest first."""
        return [lv.name for lv in self.arch.levels if self._paths(lv.name)]

    def variant_files(self, level: str) -> dict[str, Path]:
        """SONAME -> the ``glibc-hwcaps/LEVEL/SONAME`` path of each library with that variant."""
        return self._paths(level) if level != BASELINE else {}

    def expected(self, level: str) -> dict[str, Path]:
        """SONAME -> the file the loader must map when ``level`` is forced."""
        return {**self._paths(BASELINE), **self.variant_files(level)}

    def added_bytes(self, level: str) -> int:
        """Bytes the level's builds add to the packages (links cost nothing)."""
        return sum(lib.variants[level].size for lib in self.libraries if level in lib.variants)


def discover(trees: Sequence[PackageTree], arch: Architecture) -> Layout:
    """Every library with variants in the packages, with what the loader needs to find it."""
    own = [t for t in trees if not t.is_debug]  # debug packages hold no loadable library
    collector = LibraryCollector(arch, own)
    for tree in own:
        collector.collect(tree)
    collector.adopt_baselines(own)  # a split layout ships the baseline in another package
    libraries = sorted(collector.libraries.values(), key=lambda lib: (lib.libdir, lib.soname))
    roots = {t.name: t.root for t in own}
    ignored = [
        f"{roots[f.package] / f.path}: not a glibc-hwcaps name of {arch.arch}"
        for f in collector.findings
        if f.tag == "unknown-hwcaps-directory" and f.package in roots
    ]
    hwcaps_libdirs: list[Path] = []
    for lib in libraries:
        for variant in lib.variants.values():
            if variant.soname_path is None:
                continue
            libdir = variant.soname_path.parents[2]  # DIR of DIR/glibc-hwcaps/LEVEL/SONAME
            hwcaps_libdirs.append(libdir)
            if lib.baseline is None or lib.baseline.soname_path is None:
                ignored.append(f"{variant.soname_path}: no baseline {libdir / lib.soname}")
    libdirs: list[Path] = []
    for tree in trees:  # in the order given, as the loader will search them
        libdirs += sorted({d for d in hwcaps_libdirs if d.is_relative_to(tree.root)} - {*libdirs})
    # other library directories of the packages, so their programs find every library
    for tree in trees:
        for rel in (f"lib/{arch.triplet}", f"usr/lib/{arch.triplet}", "lib", "usr/lib"):
            candidate = tree.root / rel
            if candidate.is_dir() and candidate not in libdirs:
                libdirs.append(candidate)
    return Layout(list(trees), arch, libraries, libdirs, ignored)
