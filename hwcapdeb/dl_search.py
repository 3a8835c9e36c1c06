"""One search of glibc's loader in progress: what it tries in a directory, and its trace.

Part of the loader model (:mod:`hwcapdeb.loader`), read in glibc 2.36's
elf/dl-load.c (open_path, open_verify, _dl_map_object_from_fd) and
sysdeps/x86/dl-prop.h:

* For each directory the loader tries ``DIR/glibc-hwcaps/NAME/SONAME`` for
  each name of :func:`hwcapdeb.dl_hwcaps.hwcaps_names`, then the legacy
  subdirectories, then ``DIR/SONAME``.  The name looked up is the SONAME: a
  hwcaps directory holding only ``libfoo.so.1.2.3`` is not used.
* A file of the wrong ELF class or machine is skipped and the search goes
  on; a file that is not ELF at all stops it with an error, and so do the
  other header checks of open_verify() (byte order, ELF version, OS ABI and
  ABI version, e_ident padding, e_type, e_phentsize; an ET_EXEC fails
  later, in _dl_map_object_from_fd: :func:`hwcapdeb.glibc_rules.header_verdict`)
  and a *directory* named like the SONAME (open() succeeds, read() fails:
  "cannot read file data").  A file open() refuses with EACCES is skipped and
  the search goes on.
* A picked file that _dl_map_object_from_fd() refuses is fatal: a misaligned
  or no PT_LOAD, no PT_DYNAMIC, a PIE (:mod:`hwcapdeb.dl_object`); so is a
  DT_NEEDED that cannot be loaded (the caller's check, :func:`hwcapdeb.loader.resolve`).
* After loading, an object whose GNU_PROPERTY_X86_ISA_1_NEEDED bits exceed
  the CPU's ``isa_1`` is refused (glibc 2.33+): fatal, there is no fallback to
  the next directory (:func:`hwcapdeb.glibc_rules.marker_refusal`).
* Legacy hwcaps directories (``tls/``, ``x86_64/``, ``haswell/``...) are
  searched after glibc-hwcaps/ and before the directory itself by the
  releases of rule ``legacy-hwcaps`` in profiles/glibc.json (glibc <= 2.36),
  in the order :func:`hwcapdeb.glibc_rules.legacy_subdirs` builds; newer
  releases do not search them.  When the release is unknown (``glibc=None``
  and a CPU model that did not come from a real loader) they are only noted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwcapdeb.cpu import CpuModel
from hwcapdeb.dl_hwcaps import HWCAPS_DIR, HwcapsName
from hwcapdeb.dl_object import mapping_problem, open_like_loader
from hwcapdeb.dl_paths import dl_platform
from hwcapdeb.elf import ElfFacts, is_elf, read_elf
from hwcapdeb.errors import InputError
from hwcapdeb.glibc_rules import (
    REFUSED,
    SKIPPED,
    applies,
    header_verdict,
    identity_problem,
    legacy_dir_names,
    legacy_subdirs,
    marker_refusal,
    rule,
)
from hwcapdeb.profiles import Level, architecture

# verdicts of a TraceStep; the verdicts of glibc's file checks, SKIPPED (the search goes
# on) and REFUSED (fatal), live with those checks in glibc_rules
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
            "legacy_dir": self.legacy_dir,
            "error": self.error,
            "trace": [step.to_json() for step in self.trace],
        }


def read_facts(path: Path) -> ElfFacts | str:
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


class Search:
    """Mutable state of one resolve() call: the trace so far."""

    def __init__(self, soname: str, cpu: CpuModel, names: list[HwcapsName],
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
        facts = read_facts(contents or path)
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


def fs_test(test: Callable[[], bool]) -> bool:
    """A file test that is False when the loader's user may not look (EACCES on a
    directory on the way), as open(2) would fail there too."""
    try:
        return test()
    except OSError:
        return False


def listing(directory: Path, pattern: str | None = None) -> list[Path]:
    """Sorted entries of a directory, none if it cannot be read."""
    try:
        return sorted(directory.glob(pattern) if pattern else directory.iterdir())
    except OSError:
        return []


def _legacy_copies(directory: Path, soname: str) -> list[Path]:
    """SONAME under legacy hwcaps subdirectories (tls/haswell/x86_64/... combinations)."""
    found: list[Path] = []
    for name in legacy_dir_names():
        sub = directory / name
        if fs_test(sub.is_dir) and not fs_test(sub.is_symlink):
            try:
                found.extend(p for p in sorted(sub.rglob(soname)) if p.name == soname)
            except OSError:
                continue
    return found


def _real_names(path: Path) -> str:
    """Other files of the same library beside a missing SONAME (libfoo.so.1.2.3)."""
    if not fs_test(path.parent.is_dir):
        return ""
    others = [p.name for p in listing(path.parent, path.name + ".*")]
    return ", ".join(others)
