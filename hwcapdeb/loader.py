"""glibc's library search, as a pure function: which file does a CPU load for a SONAME?

Written by hand because no library models it (auditwheel's lddtree knows
nothing of glibc-hwcaps); every rule was read in glibc 2.36 (elf/dl-load.c,
elf/dl-hwcaps.c, elf/dl-cache.c, sysdeps/x86/dl-prop.h) and is checked against
the real loader by tests/test_loader_*.py (host, GLIBC_TUNABLES masks,
qemu-user CPUs, ``ldconfig -r`` sysroots, ppc64el/s390x cross loaders).  This
module owns the order of the search; each step's rules have one home:

* Directories in glibc's order (_dl_map_object): DT_RPATH (unless there is a
  DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, ld.so.cache, the system
  directories.  How a path string becomes directories (separators, empty
  entries, $ORIGIN, $LIB, $PLATFORM) is :mod:`hwcapdeb.dl_paths`.
* The glibc-hwcaps names tried in each directory: :mod:`hwcapdeb.dl_hwcaps`.
* What the loader tries in one directory, which files it skips, refuses or
  loads (header checks, ISA marker, legacy subdirectories): :mod:`hwcapdeb.dl_search`.
* ld.so.cache (only when ``ROOT/etc/ld.so.cache`` exists; without a hit, or
  without a cache, the system directories are searched directly):
  :mod:`hwcapdeb.dl_cache`.
* A DT_NEEDED of the picked file that cannot be loaded (searched like the
  SONAME, with the picked file's own run paths) makes the load fail.
* ``isa_1`` is computed before GLIBC_TUNABLES is applied, so masks change the
  directories searched but not the ISA marker check.  (``ld.so --list`` skips
  that check; a real run does not.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hwcapdeb.cpu import CpuModel
from hwcapdeb.dl_cache import cache_dirs, cache_lookup
from hwcapdeb.dl_hwcaps import hwcaps_names, split_list
from hwcapdeb.dl_paths import DST, LIBRARY_PATH_SEPARATORS, RPATH_SEPARATORS, search_path
from hwcapdeb.dl_search import ABSENT, LOADED, NOTE, Resolution, Search
from hwcapdeb.elf import ElfFacts
from hwcapdeb.errors import InputError
from hwcapdeb.glibc_rules import parse_version
from hwcapdeb.profiles import Architecture


def system_dirs(root: Path, arch: Architecture) -> list[Path]:
    """Debian's built-in search directories (path.system_dirs of ld.so --list-diagnostics)."""
    return [root / d for d in (f"lib/{arch.triplet}", f"usr/lib/{arch.triplet}", "lib", "usr/lib")]


def _expand(
    entries: Sequence[str], root: Path, origin: Path | None, search: Search
) -> list[Path]:
    """DT_RPATH/DT_RUNPATH entries (split on ':' only) as directories under ``root``;
    tokens expanded by :func:`search_path` ($ORIGIN to ``origin``, an outside path)."""
    result = []
    for value in entries:
        for raw in value.split(RPATH_SEPARATORS):
            if "ORIGIN" in raw and origin is None and DST.search(raw):
                search.step(raw, NOTE, "$ORIGIN needs the requesting object's directory: skipped")
                continue
            for entry in search_path(raw, RPATH_SEPARATORS, origin=str(origin),
                                     lib=search.lib, platform=search.platform):
                if "ORIGIN" in raw or not entry.startswith("/"):
                    result.append(Path(entry))  # relative: to the current directory, like glibc
                else:
                    result.append(root / entry.lstrip("/"))
    return [d for i, d in enumerate(result) if d not in result[:i]]


#: objects every program has loaded before a preloaded library's DT_NEEDED is searched
#: (the C library and the loader itself: a NEEDED naming them is satisfied without search)
_ALWAYS_LOADED = ("libc.so.6",)
_NEEDED_DEPTH = 16


def resolve(
    soname: str,
    cpu: CpuModel,
    *,
    library_path: Sequence[str | Path] = (),
    root: Path | None = None,
    hwcaps_prepend: str | Sequence[str] | None = None,
    hwcaps_mask: str | Sequence[str] | None = None,
    system: bool = True,
    rpath: Sequence[str] = (),
    runpath: Sequence[str] = (),
    origin: Path | None = None,
    glibc: str | None = None,
    program_origin: Path | None = None,
    check_needed: bool = True,
    _loaded: frozenset[str] = frozenset(),
) -> Resolution:
    """Which file the loader maps for ``soname`` on ``cpu``: a pure function of its inputs.

    The order is glibc's (elf/dl-load.c _dl_map_object): ``rpath`` (the
    requesting object's DT_RPATH, ignored when it has a DT_RUNPATH), then
    ``library_path`` (LD_LIBRARY_PATH / ``ld.so --library-path``), then
    ``runpath`` (DT_RUNPATH), then, if ``system``, the ld.so.cache model (only
    when ``ROOT/etc/ld.so.cache`` exists) and the system directories of
    ``root`` (default ``/``).  ``rpath``/``runpath`` are paths of the target
    system (prefixed with ``root``); ``$ORIGIN`` in them expands to ``origin``
    (the requesting object's directory).  A ``str`` item of ``library_path``
    is a search path string read as glibc reads LD_LIBRARY_PATH (``:`` and
    ``;`` separate, an empty entry is the current directory, ``$ORIGIN`` is
    ``program_origin``, the running program's directory); a ``Path`` item is
    one directory.  ``$LIB`` is the multiarch directory, ``$PLATFORM``
    :func:`hwcapdeb.dl_paths.dl_platform`.  With ``check_needed`` the picked file's DT_NEEDED
    are resolved the same way (system directories included): one that cannot
    be loaded makes the whole load fail, as it does for the loader.  ``cpu``
    should already carry any tunables (:func:`hwcapdeb.cpu.apply_tunables`).
    Nothing is read from the environment.  ``glibc`` names the loader's
    release when it matters (glibc-hwcaps names newer than it are not
    searched); None: the CPU model's own (known when it came from a real
    loader), else all names.
    """
    if not soname:
        raise InputError("an empty SONAME names no library",
                         hint="give the DT_SONAME, e.g. libz.so.1")
    prepend = split_list(hwcaps_prepend) or []
    mask = split_list(hwcaps_mask)
    release = glibc or cpu.glibc
    if release is not None:
        parse_version(release)  # a non-version is a usage error, not "no directory"
    search = Search(soname, cpu, hwcaps_names(cpu, prepend, mask, release), release)
    base = Path(root) if root is not None else Path("/")
    if check_needed and len(_loaded) < _NEEDED_DEPTH:
        loaded = _loaded | {soname}

        def dependencies(facts: ElfFacts, path: Path) -> str | None:
            for name in facts.needed:
                if not name or name in loaded or name in _ALWAYS_LOADED or (
                        name == Path(search.arch.loader or "").name):
                    continue
                dep = resolve(
                    name, cpu, library_path=library_path, root=root,
                    hwcaps_prepend=hwcaps_prepend, hwcaps_mask=hwcaps_mask, system=True,
                    rpath=facts.rpath, runpath=facts.runpath, origin=path.parent, glibc=glibc,
                    program_origin=program_origin, _loaded=loaded)
                if dep.path is None:
                    return f"its DT_NEEDED {name} cannot be loaded ({dep.error})"
            return None

        search.dependencies = dependencies
    rtld = Path(search.arch.loader) if search.arch.loader else None
    if rtld is not None and soname == rtld.name:
        # the loader itself answers to its SONAME: already loaded, nothing is searched
        path = base / str(rtld).lstrip("/")
        search.step(path, LOADED, "the dynamic loader itself (always loaded)")
        return search.done(path, search.arch.baseline)
    if "/" in soname:  # dlopen("dir/libfoo.so.1") and DT_NEEDED with a slash: no search at all
        found = search.take(Path(soname), None, "a name with '/' is opened as is, without search")
        return found or search.done(None, None, f"{soname}: cannot open shared object file")
    if not base.is_dir():
        raise InputError(f"root directory {base} does not exist", hint="pass an unpacked sysroot")
    rpath_dirs = [] if runpath else _expand(rpath, base, origin, search)
    runpath_dirs = _expand(runpath, base, origin, search)
    env_dirs: list[Path] = []
    for item in library_path:
        if isinstance(item, Path):
            env_dirs.append(item)
            continue
        if not item:
            continue  # an empty LD_LIBRARY_PATH is no path at all (_dl_init_paths)
        for entry in search_path(item, LIBRARY_PATH_SEPARATORS, lib=search.lib,
                                 platform=search.platform,
                                 origin=str(program_origin) if program_origin else None):
            if Path(entry) not in env_dirs:
                env_dirs.append(Path(entry))
    for directory in [*rpath_dirs, *env_dirs, *runpath_dirs]:
        found = search.search_dir(directory)
        if found:
            return found
    if system:
        sysdirs = system_dirs(base, search.arch)
        cache = base / "etc" / "ld.so.cache"
        if cache.is_file():
            found = cache_lookup(search, cache_dirs(base, sysdirs))
            if found:
                return found
            search.step(cache, ABSENT, f"no entry for {soname} (modelled)")
        else:
            search.step(cache, ABSENT, "no ld.so.cache: the loader searches the system "
                        "directories only")
        for directory in sysdirs:
            found = search.search_dir(directory)
            if found:
                return found
    return search.done(None, None, f"{soname}: cannot open shared object file: not found")
