"""The checks of ``hwcapdeb verify``: each a small function over the model
(:mod:`hwcapdeb.library`, the dispatch matrix) returning its findings.

Every tag named here has its severity, explanation and references in the
catalogue (``profiles/tags/*.tag``, ``hwcapdeb verify --explain TAG``); the
severities written beside each tag are checked against it (tests/test_tags.py).
The layout checks (SONAME links, junk, unknown directories) run while the
libraries are collected, in :mod:`hwcapdeb.library`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

from hwcapdeb.elf_code import read_code
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.findings import Finding
from hwcapdeb.glibc_rules import decode_isa_needed, isa_needed_rank
from hwcapdeb.isa_codes import level_table
from hwcapdeb.library import Library, LibraryFile
from hwcapdeb.profiles import Architecture
from hwcapdeb.target_loader import TargetLoader
from hwcapdeb.verify.matrix import NEWER_GLIBC, Cell

# --- one library and its builds ------------------------------------------------


def _symbol_text(keys: Iterable[tuple[str, str | None]], limit: int = 3) -> str:
    items = sorted(f"{n}@{v}" if v else n for n, v in keys)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_abi(base: LibraryFile, var: LibraryFile) -> list[Finding]:
    """A variant must be the baseline's ABI: SONAME, class, machine, versioned exports."""
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
    return [Finding("error", "abi-mismatch", var.package, var.relpath, problem)
            for problem in problems]


def check_marker(arch: Architecture, build: LibraryFile) -> list[Finding]:
    """The x86 ISA marker against the build's directory: above it glibc refuses the file."""
    if not arch.has_isa_marker:
        return []
    bits = build.facts.isa_needed
    rank = isa_needed_rank(bits)
    level = build.level
    names = "/".join(decode_isa_needed(bits or 0))
    where = (build.package, build.relpath)
    if level.is_baseline:
        if rank > 0:
            return [Finding("error", "isa-marker-mismatch", *where,
                            f"the baseline's ISA marker needs {names}: glibc refuses to load "
                            "it on baseline CPUs")]
        return []
    if bits is None:
        return [Finding("warning", "isa-marker-mismatch", *where,
                        f"no ISA marker: the {level.name} flags may not have reached the "
                        f"compiler (link with -Wl,-z,{level.name}, as hwcapdeb's profiles do)")]
    if rank > level.rank:
        return [Finding("error", "isa-marker-mismatch", *where,
                        f"ISA marker needs {names}, above glibc-hwcaps/{level.name}: glibc "
                        f"picks this directory on {level.name} CPUs and then refuses the file "
                        "(fatal)")]
    if rank < level.rank:
        return [Finding("warning", "isa-marker-mismatch", *where,
                        f"ISA marker says {names}, below its directory {level.name}: was it "
                        f"built with the {level.name} flags?")]
    return []


def check_isa_leak(arch: Architecture, build: LibraryFile) -> list[Finding]:
    """Code above the build's level that nothing dispatches (from the instruction audit)."""
    result = build.audit
    if result is None:
        return []
    leaks = result.leaks(build.level.rank)
    if not leaks:
        return []
    first = leaks[0]
    features = "/".join(first.features)
    where = "baseline" if build.level.is_baseline else build.level.name
    message = f"{first.mnemonic} in {first.function}: {features} above {where}"
    if first.rank >= level_table(arch.arch).beyond:
        message = f"{first.mnemonic} in {first.function}: {features}, beyond every level"
    if len(leaks) > 1:
        message += f"; {len(leaks) - 1} more function(s)"
    message += f"; {first.reason.split(': ', 1)[1]}"
    return [Finding("error", "isa-leak", build.package, build.relpath, message)]


def _text_bytes(build: LibraryFile) -> bytes:
    try:
        facts = read_code(build.file)
    except HwcapdebError:
        return b""
    return b"".join(s.data for s in facts.sections if s.name == ".text")


def check_adds_nothing(arch: Architecture, lib: Library) -> list[Finding]:
    """A variant identical to the next lower build, or using nothing above it: bloat."""
    findings = []
    ordered = sorted(lib.builds, key=lambda b: b.level.rank)
    for lower, var in itertools.pairwise(ordered):
        if var.audit is None or lower.audit is None:
            continue
        if _text_bytes(var) == _text_bytes(lower):
            findings.append(Finding(
                "warning", "variant-adds-nothing", var.package, var.relpath,
                f"its code is identical to {lower.relpath}: {var.size} bytes of pure bloat"))
            continue
        top = var.audit.max_rank
        if top <= lower.level.rank:
            used = level_table(arch.arch).level_name(top) if top else "baseline"
            findings.append(Finding(
                "warning", "variant-adds-nothing", var.package, var.relpath,
                f"uses no instruction above {lower.level.name} (its highest: {used}): "
                f"{var.size} bytes of pure bloat"))
    return findings


def check_without_baseline(lib: Library) -> list[Finding]:
    """Variants whose baseline no package ships: CPUs below them load nothing."""
    if lib.baseline is not None:
        return []
    return [Finding("error", "variant-without-baseline", var.package, var.relpath,
                    f"no baseline {lib.soname} in {lib.libdir}: CPUs below "
                    f"{var.level.name} cannot load the library at all")
            for var in lib.variants.values()]


def check_library(arch: Architecture, lib: Library) -> list[Finding]:
    """Every check of one (audited) library: the baseline's, then each variant's."""
    findings = check_without_baseline(lib)
    base = lib.baseline
    if base is not None:
        findings += check_marker(arch, base) + check_isa_leak(arch, base)
    for var in lib.variants.values():
        if base is not None:
            findings += check_abi(base, var)
        findings += check_marker(arch, var) + check_isa_leak(arch, var)
    return findings + check_adds_nothing(arch, lib)


# --- the dispatch matrix ---------------------------------------------------------


def check_target_loader(libraries: Sequence[Library], target: TargetLoader | None
                        ) -> list[Finding]:
    """The build's own loader could not be had: the host's answered for every library."""
    if target is None or not target.warning:
        return []
    return [Finding("warning", "target-loader-unavailable", lib.package, lib.soname,
                    target.warning) for lib in libraries]


#: findings that already say why the loader fails in their directory
_FATAL_TAGS = ("unloadable-variant", "isa-marker-mismatch", "unreadable-file",
               "missing-soname-link")


def check_matrix(cells: Sequence[Cell], earlier: Sequence[Finding],
                 target: TargetLoader | None) -> list[Finding]:
    """What the matrix shows: legacy copies loaded, unsafe or refused picks, and the real
    loader disagreeing with the model.  ``earlier``: the findings so far, so that a file
    already flagged as an error (a leak, a marker) is not flagged again per CPU."""
    findings = []
    flagged = {(f.package, f.path) for f in earlier if f.severity == "error"}
    legacy_seen: set[tuple[str, str]] = set()
    # a refused file is named once, unless a finding in its directory already says why
    fatal = {os.path.dirname(f.path) for f in earlier
             if f.severity == "error" and f.tag in _FATAL_TAGS}
    for cell in cells:
        if cell.level and cell.level.startswith("legacy ") and cell.resolved and (
            (cell.package, cell.resolved) not in legacy_seen
        ):
            legacy_seen.add((cell.package, cell.resolved))
            findings.append(Finding(
                "warning", "legacy-hwcaps-directory", cell.package, cell.resolved,
                f"on {cell.cpu} glibc {target.glibc if target else '<= 2.36'} loads this "
                f"{cell.level} copy; glibc >= 2.37 never searches there"))
        if not cell.safe and cell.resolved is not None and (
            (cell.package, cell.resolved) not in flagged
        ):
            flagged.add((cell.package, cell.resolved))
            findings.append(Finding(
                "error", "unsafe-resolution", cell.package, cell.resolved,
                f"on {cell.cpu} the loader picks this file, but {cell.reason}"))
        if cell.refused is not None and os.path.dirname(cell.refused) not in fatal:
            fatal.add(os.path.dirname(cell.refused))
            findings.append(Finding(
                "error", "unloadable-variant", cell.package, cell.refused,
                f"on {cell.cpu} the loader picks this file and fails: {cell.reason}"))
        if cell.agrees is False:
            findings.append(_disagreement(cell))
    return findings


def _disagreement(cell: Cell) -> Finding:
    note = f"; the model notes {cell.model_note}" if cell.model_note else ""
    if cell.real and NEWER_GLIBC.search(cell.real):
        note += ("; the library needs a newer glibc than this loader's: pass "
                 "--loader-root with a root or chroot tarball of the target release")
    return Finding("error", "loader-disagrees", cell.package, cell.resolved or cell.library,
                   f"on {cell.cpu} the real loader picks {cell.real} but the model says "
                   f"{cell.resolved}{note}")
