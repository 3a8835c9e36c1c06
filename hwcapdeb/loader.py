"""glibc's library search, as a pure function: which file does a CPU load for a SONAME?

This is the ONE place glibc's search rules live.  It is written by hand
because no library models them (auditwheel's lddtree knows nothing of
glibc-hwcaps); every rule below was read in glibc 2.36 (elf/dl-load.c,
elf/dl-hwcaps.c, elf/dl-cache.c, sysdeps/x86/dl-prop.h) and checked against
the real loader by tests/test_loader_*.py (host, GLIBC_TUNABLES masks,
qemu-user CPUs, ``ldconfig -r`` sysroots, ppc64el/s390x cross loaders):

* Directories in glibc's order: DT_RPATH (unless there is a DT_RUNPATH),
  LD_LIBRARY_PATH, DT_RUNPATH, ld.so.cache, the system directories.  How a
  path string becomes directories (separators, empty entries, $ORIGIN, $LIB,
  $PLATFORM) is :mod:`hwcapdeb.dl_paths`.
* For each directory the loader tries ``DIR/glibc-hwcaps/NAME/SONAME`` for
  each hwcaps name in priority order, then ``DIR/SONAME``.  Names: first the
  ``--glibc-hwcaps-prepend`` ones (no CPU check), then the built-in
  subdirectories the CPU supports (cumulatively, see
  :func:`hwcapdeb.cpu.supported_levels`) that ``--glibc-hwcaps-mask`` (an
  allow-list) keeps.
* In a directory search the name looked up is the SONAME: a hwcaps
  directory holding only ``libfoo.so.1.2.3`` is not used.
* A file of the wrong ELF class or machine is skipped and the search goes
  on; a file that is not ELF at all stops it with an error, and so do the
  other header checks of open_verify() (byte order, ELF version, OS ABI and
  ABI version, e_ident padding, e_type, e_phentsize; an ET_EXEC fails
  later, in _dl_map_object_from_fd) and a *directory* named like the SONAME
  (open() succeeds, read() fails: "cannot read file data").  A file open()
  refuses with EACCES is skipped and the search goes on.
* A picked file that _dl_map_object_from_fd() refuses is fatal: a misaligned
  or no PT_LOAD, no PT_DYNAMIC, a PIE (:mod:`hwcapdeb.dl_object`); so is a
  DT_NEEDED that cannot be loaded (searched like the SONAME, with the picked
  file's own run paths).
* After loading, an object whose GNU_PROPERTY_X86_ISA_1_NEEDED bits exceed
  the CPU's ``isa_1`` is refused: fatal, there is no fallback to the next
  directory.  ``isa_1`` is computed before GLIBC_TUNABLES is applied, so
  masks change the directories searched but not this check.  (``ld.so
  --list`` skips this check; a real run does not.)
* ld.so.cache is modelled as ldconfig would write it from
  ``ROOT/etc/ld.so.conf`` (with its ``include`` globs) and the multiarch
  system directories: files in ``glibc-hwcaps/*`` are indexed by DT_SONAME
  under their real names (no SONAME link needed), compete by priority across
  all directories, and are *skipped* when their ISA marker exceeds the CPU's
  level; then the first directory's plain entry.  Without a cache hit, or
  without a ``ROOT/etc/ld.so.cache`` at all, the system directories are
  searched directly.
* Legacy hwcaps directories (``tls/``, ``x86_64/``, ``haswell/``...) are
  searched after glibc-hwcaps/ and before the directory itself by the
  releases of rule ``legacy-hwcaps`` in profiles/glibc.json (glibc <= 2.36),
  in the order :func:`hwcapdeb.glibc_rules.legacy_subdirs` builds; newer
  releases do not search them.  When the release is unknown (``glibc=None``
  and a CPU model that did not come from a real loader) they are only noted.
  The ld.so.cache model does not index them.
"""
from __future__ import annotations

import functools
import glob
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwcapdeb.cpu import CpuModel, supported_levels, why_not
from hwcapdeb.dl_object import mapping_problem, open_like_loader
from hwcapdeb.dl_paths import (
    DST,
    LIBRARY_PATH_SEPARATORS,
    RPATH_SEPARATORS,
    dl_platform,
    search_path,
)
from hwcapdeb.elf import ElfFacts, is_elf, read_elf
from hwcapdeb.errors import InputError, UsageError
from hwcapdeb.glibc_rules import (
    REFUSED,
    SKIPPED,
    applies,
    header_verdict,
    identity_problem,
    legacy_subdirs,
    marker_refusal,
    parse_version,
    rule,
)
from hwcapdeb.profiles import Architecture, Level, architecture

HWCAPS_DIR = "glibc-hwcaps"
LEGACY_HWCAPS_DIRS = ("tls", "haswell", "xeon_phi", "avx512_1", "x86_64")


# verdicts of a TraceStep
LOADED = "loaded"
ABSENT = "absent"
NOT_SEARCHED = "not-searched"
NOTE = "note"


@dataclass(frozen=True)
class TraceStep:
    """One thing the loader looked at, and why it did or did not take it."""

    path: str
    verdict: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "verdict": self.verdict, "reason": self.reason}


@dataclass(frozen=True)
class Resolution:
    """The outcome of one search: the file loaded (None if loading fails) and why."""

    soname: str
    path: Path | None
    level: Level | None
    trace: list[TraceStep] = field(default_factory=list)
    error: str | None = None
    legacy_dir: str | None = None  # the legacy hwcaps subdirectory it came from (glibc <= 2.36)

    @property
    def loaded(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "soname": self.soname,
            "path": str(self.path) if self.path else None,
            "level": self.level.name if self.level else None,
            "error": self.error,
            "legacy_dir": self.legacy_dir,
            "trace": [step.to_json() for step in self.trace],
        }


@dataclass(frozen=True)
class _Name:
    """One glibc-hwcaps subdirectory name with its place in the search."""

    name: str
    searched: bool
    reason: str
    level: Level | None


def split_list(value: str | Sequence[str] | None) -> list[str] | None:
    """``--glibc-hwcaps-prepend``/``-mask`` lists: split on ``:`` only, empty names
    skipped (elf/dl-hwcaps_split.c, glibc 2.33+); None stays None."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return [n for item in items for n in item.split(":") if n]


def glibc_release(text: str) -> str:
    """A ``--glibc`` value as a release ``2.N`` (Debian's ``2.36-9+deb12u4`` is read as
    2.36); anything else is a UsageError rather than a silently empty set of names."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:[.~+-][0-9A-Za-z.~+-]*)?\s*", text)
    if not m or m.group(1) != "2":
        raise UsageError(f"'{text}' is not a glibc release",
                         hint="give one like 2.36 (glibc 2.33 or later has glibc-hwcaps)")
    return f"2.{int(m.group(2))}"


def hwcaps_names(
    cpu: CpuModel,
    prepend: Sequence[str] = (),
    mask: Sequence[str] | None = None,
    glibc: str | None = None,
) -> list[_Name]:
    """glibc-hwcaps names in the order the loader tries them (elf/dl-hwcaps.c).

    ``glibc`` (e.g. "2.36") drops names that release does not know (z17: 2.42).
    """
    arch = architecture(cpu.arch)
    names = [
        _Name(n, True, "prepended with --glibc-hwcaps-prepend (no CPU check)", _level(arch, n))
        for n in dict.fromkeys(prepend)
    ]
    supported = supported_levels(cpu)
    for level in arch.search_order:
        if glibc and level.glibc_min and parse_version(level.glibc_min) > parse_version(glibc):
            names.append(_Name(level.name, False,
                               f"glibc {glibc} has no such directory (added in {level.glibc_min})",
                               level))
        elif level not in supported:
            missing = why_not(cpu, level)
            reason = (
                f"CPU lacks {', '.join(missing)}"
                if missing
                else "a lower level is not supported (glibc checks levels cumulatively)"
            )
            names.append(_Name(level.name, False, reason, level))
        elif mask is not None and level.name not in mask:
            names.append(_Name(level.name, False, "not in --glibc-hwcaps-mask", level))
        elif level.name in prepend:
            continue
        else:
            names.append(_Name(level.name, True, "supported by the CPU", level))
    return names


def _level(arch: Architecture, name: str) -> Level | None:
    return next((lv for lv in arch.levels if lv.name == name), None)


def _read(path: Path) -> ElfFacts | str:
    """ElfFacts, or the loader's complaint about a file that is not ELF."""
    try:
        st = path.stat()
    except OSError as err:
        return f"cannot read: {err.strerror}"
    # keyed by the file's identity, so a changed file is read again: resolve() stays pure
    return _read_file(str(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4096)
def _read_file(path: str, dev: int, ino: int, mtime_ns: int, size: int) -> ElfFacts | str:
    if not is_elf(Path(path)):
        return "invalid ELF header"
    try:
        return read_elf(Path(path), with_exports=False)
    except InputError as err:
        return str(err)


class _Search:
    """Mutable state of one resolve() call: the trace so far."""

    def __init__(self, soname: str, cpu: CpuModel, names: list[_Name],
                 glibc: str | None = None) -> None:
        self.soname = soname
        self.cpu = cpu
        self.names = names
        self.trace: list[TraceStep] = []
        self.arch = architecture(cpu.arch)
        self.glibc = glibc
        #: legacy hwcaps subdirectories this release searches (None: release unknown)
        self.legacy: list[str] | None = None
        if glibc is not None:
            self.legacy = (legacy_subdirs(cpu.arch, cpu.features, cpu.vendor, cpu.tunables)
                           if applies("legacy-hwcaps", glibc) else [])
        #: checks a picked object's DT_NEEDED (None: not checked); returns the failure
        self.dependencies: Callable[[ElfFacts, Path], str | None] | None = None
        self.lib = f"lib/{self.arch.triplet}"  # $LIB (Debian's glibc: the multiarch dir)
        self.platform = dl_platform(cpu)

    def step(self, path: Path | str, verdict: str, reason: str) -> None:
        self.trace.append(TraceStep(str(path), verdict, reason))

    def done(self, path: Path | None, level: Level | None, error: str | None = None,
             legacy_dir: str | None = None) -> Resolution:
        return Resolution(self.soname, path, level, self.trace, error, legacy_dir)

    def take(
        self, path: Path, level: Level | None, how: str, contents: Path | None = None
    ) -> Resolution | None:
        """Open ``path`` like the loader: None means 'not this one, keep searching'.

        ``contents`` is the file to read when ``path`` is a link ldconfig would create.
        """
        opened: str | None = open_like_loader(path if contents is None else contents)
        if opened == "fifo":
            # the loader's blocking open() waits for a writer: the program hangs there
            hang = "a FIFO: the loader's open() blocks until something writes to it"
            self.step(path, REFUSED, f"{hang} (fatal)")
            return self.done(None, level, f"{path}: {hang}")
        if contents is not None and opened != "ok":
            opened = None  # a link ldconfig would make: its own checks follow
        if opened == "directory":
            # open(2) succeeds on a directory; the loader's read() then fails: fatal
            unreadable = "cannot read file data: Is a directory"
            self.step(path, REFUSED, f"a directory; {unreadable} (fatal)")
            return self.done(None, level, f"{path}: {unreadable}")
        if opened == "denied":
            # open_path() goes on after EACCES (elf/dl-load.c)
            self.step(path, SKIPPED, "cannot open: permission denied (the loader goes on)")
            return None
        if opened == "absent":
            self.step(path, ABSENT, "no such file" + (
                f" (only {_real_names(path)} here: the loader looks up the SONAME)"
                if _real_names(path) else ""
            ))
            return None
        header = header_verdict(contents or path, self.cpu.arch)
        if header and header[0] == SKIPPED:
            self.step(path, SKIPPED, header[1])
            return None
        if header:
            self.step(path, REFUSED, f"{header[1]} (fatal: no fallback to the next directory)")
            return self.done(None, level, f"{path}: {header[1]}")
        facts = _read(contents or path)
        if isinstance(facts, str):
            self.step(path, REFUSED, facts)
            return self.done(None, level, f"{path}: {facts}")
        problem = identity_problem(facts, self.cpu.arch)
        if problem:
            self.step(path, SKIPPED, problem)
            return None
        mapping = mapping_problem(contents or path, self.cpu.arch)
        if mapping is None and self.dependencies is not None:
            mapping = self.dependencies(facts, path)
        marker = mapping or marker_refusal(facts.isa_needed, self.cpu)
        if marker:
            self.step(path, REFUSED, f"{how}; {marker} (fatal: no fallback to the next directory)")
            return self.done(None, level, f"{path}: {marker}")
        self.step(path, LOADED, how)
        return self.done(path, level)

    def search_dir(self, directory: Path) -> Resolution | None:
        """DIR/glibc-hwcaps/NAME/SONAME for each name, then DIR/SONAME (dl-load.c open_path)."""
        for name in self.names:
            candidate = directory / HWCAPS_DIR / name.name / self.soname
            if not name.searched:
                self.step(candidate, NOT_SEARCHED, name.reason)
                continue
            found = self.take(candidate, name.level, f"glibc-hwcaps/{name.name}: {name.reason}")
            if found:
                return found
        found = self.search_legacy(directory)
        if found:
            return found
        return self.take(directory / self.soname, self.arch.baseline, "the directory itself")

    def search_legacy(self, directory: Path) -> Resolution | None:
        """DIR/tls/x86_64/SONAME... for a glibc <= 2.36 (rule legacy-hwcaps)."""
        if self.legacy is None or not self.legacy:
            copies = _legacy_copies(directory, self.soname)
            if copies:
                why = (f"glibc {self.glibc} does not search it (rule legacy-hwcaps: "
                       f"glibc <= {_legacy_max()})" if self.legacy is not None else
                       f"searched only by glibc <= {_legacy_max()}; the loader's release is "
                       "unknown (pass --glibc)")
                self.step(copies[0], NOTE if self.legacy is None else NOT_SEARCHED,
                          f"legacy hwcaps directory: {why}")
            return None
        for sub in dict.fromkeys(self.legacy):  # glibc tries a repeated name twice: same file
            candidate = directory / sub / self.soname
            if not candidate.exists() and not candidate.is_symlink():
                continue  # absent legacy paths are not worth a trace line each
            found = self.take(candidate, None, f"legacy hwcaps directory {sub}/ "
                              f"(glibc {self.glibc} searches it: rule legacy-hwcaps)")
            if found:
                return replace(found, legacy_dir=sub) if found.path else found
        return None


def _legacy_max() -> str:
    return rule("legacy-hwcaps").glibc_max or "?"


def _fs(test: Callable[[], bool]) -> bool:
    """A file test that is False when the loader's user may not look (EACCES on a
    directory on the way), as open(2) would fail there too."""
    try:
        return test()
    except OSError:
        return False


def _listing(directory: Path, pattern: str | None = None) -> list[Path]:
    """Sorted entries of a directory, none if it cannot be read."""
    try:
        return sorted(directory.glob(pattern) if pattern else directory.iterdir())
    except OSError:
        return []


def _legacy_copies(directory: Path, soname: str) -> list[Path]:
    """SONAME under legacy hwcaps subdirectories (tls/haswell/x86_64/... combinations)."""
    found: list[Path] = []
    for name in LEGACY_HWCAPS_DIRS:
        sub = directory / name
        if _fs(sub.is_dir) and not _fs(sub.is_symlink):
            try:
                found.extend(p for p in sorted(sub.rglob(soname)) if p.name == soname)
            except OSError:
                continue
    return found


def _real_names(path: Path) -> str:
    """Other files of the same library beside a missing SONAME (libfoo.so.1.2.3)."""
    if not _fs(path.parent.is_dir):
        return ""
    others = [p.name for p in _listing(path.parent, path.name + ".*")]
    return ", ".join(others)


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


def system_dirs(root: Path, arch: Architecture) -> list[Path]:
    """Debian's built-in search directories (path.system_dirs of ld.so --list-diagnostics)."""
    return [root / d for d in (f"lib/{arch.triplet}", f"usr/lib/{arch.triplet}", "lib", "usr/lib")]


def _expand(
    entries: Sequence[str], root: Path, origin: Path | None, search: _Search
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


def _dedupe(dirs: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for d in dirs:
        key = d.resolve() if _fs(d.exists) else d
        if key not in seen:
            seen.add(key)
            result.append(d)
    return result


def _indexed(search: _Search, path: Path) -> ElfFacts | None:
    """The file's facts if ldconfig would index it under the SONAME we look for."""
    if _fs(path.is_symlink) or not _fs(path.is_file):
        return None
    facts = _read(path)
    if isinstance(facts, str) or facts.soname != search.soname:
        return None
    if identity_problem(facts, search.cpu.arch):
        search.step(path, SKIPPED, f"ld.so.cache: {identity_problem(facts, search.cpu.arch)}")
        return None
    return facts


def _cache_lookup(search: _Search, dirs: list[Path]) -> Resolution | None:
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
        subdirs = [p for p in _listing(hwcaps) if _fs(p.is_dir)]
        for sub in subdirs:
            for path in _listing(sub):
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
            if _fs(link.exists):
                linked = _read(link)
                if not isinstance(linked, str) and not identity_problem(linked, search.cpu.arch):
                    plain = link
            elif any(_indexed(search, p) for p in _listing(directory, search.soname + ".*")):
                plain = link  # ldconfig creates the SONAME link in plain directories
                search.step(link, NOTE, "no SONAME link yet: ldconfig creates it")
    if best is not None:
        return search.take(best[1], best[2], "ld.so.cache: best glibc-hwcaps entry")
    if plain is not None:
        real = None
        if not _fs(plain.exists):
            real = next(p for p in _listing(plain.parent, search.soname + ".*")
                        if _fs(p.is_file))
        return search.take(plain, search.arch.baseline, "ld.so.cache", contents=real)
    return None


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
    :func:`dl_platform`.  With ``check_needed`` the picked file's DT_NEEDED
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
    search = _Search(soname, cpu, hwcaps_names(cpu, prepend, mask, release), release)
    base = Path(root) if root is not None else Path("/")
    if check_needed and len(_loaded) < _NEEDED_DEPTH:
        loaded = _loaded | {soname}

        def dependencies(facts: ElfFacts, path: Path) -> str | None:
            for name in facts.needed:
                if not name or name in loaded or name in _ALWAYS_LOADED or (
                        cpu.arch == "amd64" and name == Path(search.arch.loader or "").name):
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
            found = _cache_lookup(search, _dedupe([*ld_so_conf_dirs(base), *sysdirs]))
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
