"""ld.so.cache as ldconfig would write it, and the loader's lookup in it.

Part of the loader model (:mod:`hwcapdeb.loader`), read in glibc 2.36's
elf/dl-cache.c (search_cache) and ldconfig, measured with ``ldconfig -r`` and
the real loader: the cache is modelled from ``ROOT/etc/ld.so.conf`` (with its
``include`` globs) and the multiarch system directories.  Files in
``glibc-hwcaps/*`` (2.33+) are indexed by DT_SONAME under their real names (no
SONAME link needed), compete by priority across all directories, and are
*skipped* when their ISA marker exceeds the CPU's level; then the first
directory's plain entry.  Legacy hwcaps subdirectories are not indexed.
"""

from __future__ import annotations

import glob
from pathlib import Path

from hwcapdeb.dl_hwcaps import HWCAPS_DIR
from hwcapdeb.dl_search import (
    NOT_SEARCHED,
    NOTE,
    Resolution,
    Search,
    fs_test,
    listing,
    read_facts,
)
from hwcapdeb.elf import ElfFacts
from hwcapdeb.glibc_rules import SKIPPED, identity_problem, marker_refusal
from hwcapdeb.profiles import Level


def ld_so_conf_dirs(root: Path) -> list[Path]:
    """Directories of ROOT/etc/ld.so.conf, following ``include`` globs (ldconfig's parser)."""
    result: list[Path] = []

    def parse(conf: Path, depth: int) -> None:
        try:
            lines = conf.read_text(errors="replace").splitlines()
        except OSError:
            return
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("hwcap "):
                continue
            if line.startswith("include") and line[7:8] in (" ", "\t"):
                for pattern in line[8:].split():
                    if not pattern.startswith("/"):
                        pattern = str(conf.parent.relative_to(root) / pattern)
                    for match in sorted(glob.glob(str(root / pattern.lstrip("/")))):
                        if depth < 10:
                            parse(Path(match), depth + 1)
                continue
            for item in line.replace(",", " ").replace(":", " ").split():
                if item.startswith("/"):
                    result.append(root / item.lstrip("/"))

    parse(root / "etc" / "ld.so.conf", 0)
    return result


def _dedupe(dirs: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for d in dirs:
        key = d.resolve() if fs_test(d.exists) else d
        if key not in seen:
            seen.add(key)
            result.append(d)
    return result


def cache_dirs(root: Path, system: list[Path]) -> list[Path]:
    """The directories ldconfig indexes: ld.so.conf's, then the system ones, each once."""
    return _dedupe([*ld_so_conf_dirs(root), *system])


def _indexed(search: Search, path: Path) -> ElfFacts | None:
    """The file's facts if ldconfig would index it under the SONAME we look for."""
    if fs_test(path.is_symlink) or not fs_test(path.is_file):
        return None
    facts = read_facts(path)
    if isinstance(facts, str) or facts.soname != search.soname:
        return None
    if identity_problem(facts, search.cpu.arch):
        search.step(path, SKIPPED, f"ld.so.cache: {identity_problem(facts, search.cpu.arch)}")
        return None
    return facts


def cache_lookup(search: Search, dirs: list[Path]) -> Resolution | None:
    """ld.so.cache as ``ldconfig`` would build it from ``dirs`` (elf/dl-cache.c search_cache).

    Measured with ``ldconfig -r`` and the real loader: ldconfig indexes every
    file in every ``glibc-hwcaps/*`` subdirectory by its DT_SONAME and records
    the *real* file name (no SONAME link needed there); those entries compete
    by hwcaps priority across all directories, and one whose ISA marker
    exceeds the CPU's level is skipped (not fatal).  Otherwise the first
    directory with a plain SONAME entry wins.
    """
    priority = {n.name: i for i, n in enumerate(search.names) if n.searched}
    best: tuple[int, Path, Level | None] | None = None
    plain: Path | None = None
    for directory in dirs:
        hwcaps = directory / HWCAPS_DIR
        subdirs = [p for p in listing(hwcaps) if fs_test(p.is_dir)]
        for sub in subdirs:
            for path in listing(sub):
                facts = _indexed(search, path)
                if facts is None:
                    continue
                if sub.name not in priority:
                    why = next((n.reason for n in search.names if n.name == sub.name), None)
                    search.step(path, NOT_SEARCHED, f"ld.so.cache: glibc-hwcaps/{sub.name}: "
                                f"{why or 'not a glibc-hwcaps name of this CPU'}")
                    continue
                marker = marker_refusal(facts.isa_needed, search.cpu)
                if marker:
                    search.step(path, SKIPPED, f"ld.so.cache: entry skipped: {marker}")
                    continue
                if best is None or priority[sub.name] < best[0]:
                    level = next((n.level for n in search.names if n.name == sub.name), None)
                    best = (priority[sub.name], path, level)
        if plain is None:
            link = directory / search.soname
            if fs_test(link.exists):
                linked = read_facts(link)
                if not isinstance(linked, str) and not identity_problem(linked, search.cpu.arch):
                    plain = link
            elif any(_indexed(search, p) for p in listing(directory, search.soname + ".*")):
                plain = link  # ldconfig creates the SONAME link in plain directories
                search.step(link, NOTE, "no SONAME link yet: ldconfig creates it")
    if best is not None:
        return search.take(best[1], best[2], "ld.so.cache: best glibc-hwcaps entry")
    if plain is not None:
        real = None
        if not fs_test(plain.exists):
            real = next(p for p in listing(plain.parent, search.soname + ".*")
                        if fs_test(p.is_file))
        return search.take(plain, search.arch.baseline, "ld.so.cache", contents=real)
    return None
