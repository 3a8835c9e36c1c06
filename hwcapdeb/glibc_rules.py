"""glibc's rules that are not a search: what its loader accepts, and what changes by release.

One home for each rule, with the glibc version it belongs to; the rest of
hwcapdeb asks here:

- the x86 ISA marker (GNU_PROPERTY_X86_ISA_1_NEEDED, checked since 2.33): its bits
  (decoded by hand: pyelftools returns the raw word) and the loader's refusal of a
  file whose marker exceeds the CPU's ISA level (:func:`marker_exceeds`,
  :func:`marker_refusal`); the build-time mirror of that check is shell, in
  ``dh-hwcaps/hwcaps-variants.sh``, because hwcapdeb is not installed in build chroots;
- the ELF header checks of open_verify() (2.36, :func:`header_verdict`) over each
  architecture's identity (``profiles/arch/*.json``, ``elf``);
- the environment that changes what the loader does (:func:`loader_env`) and the
  Debian architecture of this machine (:func:`host_arch`);
- the version-dependent rules, written once in ``profiles/glibc.json`` with the
  releases they belong to: :func:`applies` answers "does the rule hold for glibc V",
  :func:`legacy_subdirs` builds the legacy hwcaps subdirectories a glibc <= 2.36
  loader tries (elf/dl-hwcaps.c, power set construction), in its order.
"""

from __future__ import annotations

import functools
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwcapdeb.errors import UnsupportedArchitecture, UsageError
from hwcapdeb.profiles import (
    _data_root,
    _load_json,
    architecture,
    architectures,
    e_machine_name,
)

if TYPE_CHECKING:
    from hwcapdeb.cpu import CpuModel
    from hwcapdeb.elf import ElfFacts

# -- the x86 ISA marker (glibc 2.33+, sysdeps/x86/dl-prop.h) -----------------------------

#: bit -> name, binutils include/elf/common.h GNU_PROPERTY_X86_ISA_1_*
ISA_1_BITS = {1: "x86-64-baseline", 2: "x86-64-v2", 4: "x86-64-v3", 8: "x86-64-v4"}


def decode_isa_needed(bits: int) -> list[str]:
    """Names of the ISA levels set in a GNU_PROPERTY_X86_ISA_1_NEEDED value."""
    names = [name for bit, name in ISA_1_BITS.items() if bits & bit]
    unknown = bits & ~sum(ISA_1_BITS)
    if unknown:
        names.append(f"unknown(0x{unknown:x})")
    return names


def isa_needed_rank(bits: int | None) -> int:
    """Highest level rank the marker demands (0 baseline .. 3 v4); -1 for no marker."""
    if not bits:
        return -1
    return max(i for i, bit in enumerate(ISA_1_BITS) if bits & bit)


def marker_exceeds(needed: int | None, cpu: CpuModel) -> bool:
    """Whether the loader refuses a file with ISA marker ``needed`` on ``cpu``: every
    needed bit must be in the CPU's isa_1 (sysdeps/x86/dl-prop.h, a fatal error since
    2.33).  Architectures without the marker never refuse."""
    if not needed or not architecture(cpu.arch).has_isa_marker:
        return False
    return needed & cpu.isa_1 != needed


def marker_refusal(needed: int | None, cpu: CpuModel) -> str | None:
    """The loader's complaint when it refuses the file on ``cpu`` (None: accepted)."""
    if not marker_exceeds(needed, cpu):
        return None
    have = cpu.isa_level.name if cpu.isa_level else "below baseline"
    return (
        f"CPU ISA level is lower than required: the file's ISA marker needs "
        f"{decode_isa_needed(needed or 0)[-1]}, the CPU's ISA level is {have}"
    )


# -- the ELF header (glibc 2.36 elf/dl-load.c open_verify) ------------------------------

SKIPPED = "skipped"  # the search goes on
REFUSED = "refused"  # fatal: the file was picked

#: EI_OSABI values glibc accepts (SYSV, GNU) and the first invalid GNU EI_ABIVERSION
#: (LIBC_ABI_MAX: 4 in glibc 2.35+, measured on 2.36)
_ELFOSABI_SYSV, _ELFOSABI_GNU, _LIBC_ABI_MAX = 0, 3, 4


def header_verdict(path: Path, arch: str) -> tuple[str, str] | None:
    """glibc's open_verify() on the ELF header, in its order (elf/dl-load.c):
    (SKIPPED, why) for another class or machine, the search goes on; (REFUSED,
    complaint) for the fatal checks; None if the header passes (or the file is too
    short or not ELF: the caller's reader says so).  Read raw, before any parser
    that might choke on what glibc merely skips."""
    want = architecture(arch).elf if arch in architectures() else None
    try:
        with path.open("rb") as fh:
            raw = fh.read(64)
    except OSError:
        return None
    if want is None or len(raw) < 64 or raw[:4] != b"\x7fELF":
        return None
    if raw[4] != 2:  # ELFCLASS64
        return SKIPPED, f"wrong ELF class: {'ELFCLASS32' if raw[4] == 1 else raw[4]}"
    data, osabi, abiversion = raw[5], raw[7], raw[8]
    if data != want.ei_data:
        endian = "little" if want.little_endian else "big"
        return REFUSED, f"ELF file data encoding not {endian}-endian"
    if raw[6] != 1:
        return REFUSED, "ELF file version ident does not match current one"
    if osabi not in (_ELFOSABI_SYSV, _ELFOSABI_GNU):
        return REFUSED, "ELF file OS ABI invalid"
    if abiversion != 0 and not (osabi == _ELFOSABI_GNU and abiversion < _LIBC_ABI_MAX):
        return REFUSED, "ELF file ABI version invalid"
    if any(raw[9:16]):
        return REFUSED, "nonzero padding in e_ident"
    order = "<" if data == 1 else ">"
    e_type, e_machine, e_version = struct.unpack_from(order + "HHI", raw, 16)
    (e_phentsize,) = struct.unpack_from(order + "H", raw, 54)
    if e_version != 1:
        return REFUSED, "ELF file version does not match current one"
    if e_machine != want.e_machine:
        return SKIPPED, f"wrong ELF machine: {e_machine_name(e_machine)}"
    if e_type not in (2, 3):  # ET_EXEC, ET_DYN
        return REFUSED, "only ET_DYN and ET_EXEC can be loaded"
    if e_phentsize != 56:  # sizeof (Elf64_Phdr)
        return REFUSED, "ELF file's phentsize not the expected size"
    if e_type == 2:  # accepted by open_verify, refused by _dl_map_object_from_fd
        return REFUSED, "cannot dynamically load executable"
    return None


def identity_problem(facts: ElfFacts, arch: str) -> str | None:
    """Why the loader of ``arch`` skips a file of another class or machine (None: same)."""
    want = architecture(arch).elf if arch in architectures() else None
    if want is None:
        return None
    if facts.elf_class != want.elf_class:
        return f"wrong ELF class: ELFCLASS{facts.elf_class}"
    if facts.machine != want.machine:
        return f"wrong ELF machine: {facts.machine}"
    return None


# -- this machine -------------------------------------------------------------------------

#: what changes which file the loader picks or what it reports: the search path,
#: preloads, tunables (glibc.cpu.hwcaps masks, 2.33+), LD_HWCAP_MASK (legacy
#: subdirectories, <= 2.36), debugging output; and, for a loader run under
#: qemu-user, the emulated CPU and sysroot
LOADER_ENV = ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT", "GLIBC_TUNABLES", "LD_HWCAP_MASK",
              "LD_DEBUG", "LD_DEBUG_OUTPUT", "QEMU_CPU", "QEMU_LD_PREFIX")


def loader_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that changes what a loader does,
    plus ``extra`` (the one change the caller means)."""
    env = {k: v for k, v in os.environ.items() if k not in LOADER_ENV}
    env.update(extra or {})
    return env


def host_arch() -> str | None:
    """The Debian architecture this machine runs natively (None if hwcapdeb does not
    know its ``uname -m``)."""
    machine = os.uname().machine
    return next((a.arch for a in architectures().values() if a.uname_machine == machine), None)


def require_host_arch() -> str:
    """:func:`host_arch`, or one line saying hwcapdeb cannot run programs here."""
    arch = host_arch()
    if arch is None:
        raise UnsupportedArchitecture(
            f"hwcapdeb does not know this machine's architecture ({os.uname().machine})",
            hint="run it on amd64, ppc64el or s390x")
    return arch


# -- rules that depend on the glibc release (profiles/glibc.json) ------------------------

_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)$")


def parse_version(text: str, what: str = "--glibc") -> tuple[int, int]:
    """``2.36`` -> (2, 36); anything else is a usage error (one line, exit 2)."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise UsageError(f"{what} '{text}' is not a glibc release",
                         hint="give MAJOR.MINOR, e.g. 2.36 or 2.43")
    return int(m.group(1)), int(m.group(2))


def glibc_release(text: str) -> str:
    """A ``--glibc`` value as a release ``2.N`` (Debian's ``2.36-9+deb12u4`` is read as
    2.36); anything else is a UsageError rather than a silently empty set of names."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:[.~+-][0-9A-Za-z.~+-]*)?\s*", text)
    if not m or m.group(1) != "2":
        raise UsageError(f"'{text}' is not a glibc release",
                         hint="give one like 2.36 (glibc 2.33 or later has glibc-hwcaps)")
    return f"2.{int(m.group(2))}"


@functools.cache
def _data() -> dict[str, Any]:
    return _load_json(_data_root() / "glibc.json", "glibc.schema.json")


@dataclass(frozen=True)
class Rule:
    id: str
    glibc_min: str | None
    glibc_max: str | None
    source: str
    summary: str


def rule(rule_id: str) -> Rule:
    raw = next(r for r in _data()["rules"] if r["id"] == rule_id)
    return Rule(raw["id"], raw.get("glibc_min"), raw.get("glibc_max"), raw["source"],
                raw["summary"])


def applies(rule_id: str, glibc: str) -> bool:
    """Whether ``rule_id`` holds for glibc release ``glibc``."""
    found = rule(rule_id)
    version = parse_version(glibc)
    if found.glibc_min and version < parse_version(found.glibc_min):
        return False
    return not (found.glibc_max and version > parse_version(found.glibc_max))


def _matches(cond: dict[str, Any], features: frozenset[str], vendor: str | None) -> bool:
    if cond["vendor"] is not None and cond["vendor"] != vendor:
        return False
    return all(f in features for f in cond["all"]) and not any(
        f in features for f in cond["none"])


def _tunable_mask(tunables: str | None, name: str) -> int | None:
    """The value of tunable ``name`` in a GLIBC_TUNABLES string (the last one), parsed
    like glibc 2.36's _dl_strtoul: 0x hex, leading 0 octal, the leading digits only,
    no digits at all is 0 (measured: ``banana`` and the empty value act as 0, ``2zz``
    as 2); None if the tunable is absent."""
    value = None
    for item in (tunables or "").split(":"):
        key, sep, raw = item.partition("=")
        if sep and key == name:
            value = raw
    if value is None:
        return None
    base, digits = 10, "0123456789"
    if value[:2].lower() == "0x":
        base, digits, value = 16, "0123456789abcdefABCDEF", value[2:]
    elif value.startswith("0"):
        base, digits = 8, "01234567"
    prefix = ""
    for char in value:
        if char not in digits:
            break
        prefix += char
    return int(prefix, base) if prefix else 0


@functools.cache
def legacy_dir_names() -> tuple[str, ...]:
    """The first component of every legacy hwcaps subdirectory a glibc <= 2.36 tries on
    any architecture of the data (``tls``, its platform and hwcap names): a library
    below one of them is a legacy copy."""
    names: list[str] = []
    for spec in _data()["legacy_hwcaps"].values():
        if spec["tls"]:
            names.append("tls")
        names += [p["name"] for p in spec["platforms"]]
        names += [c["name"] for c in spec["hwcaps"]]
        if spec["at_platform"]:
            names.append(spec["at_platform"])
    return tuple(dict.fromkeys(names))


def legacy_subdirs(arch: str, features: frozenset[str], vendor: str | None,
                   tunables: str | None = None) -> list[str]:
    """Legacy hwcaps subdirectories in glibc 2.36's search order, e.g. on an AMD CPU
    ``tls/x86_64/x86_64, tls/x86_64, tls/x86_64, tls, x86_64/x86_64, x86_64, x86_64``
    (platform x86_64 from AT_PLATFORM, hwcap x86_64; duplicates are searched twice).

    The elements are the dl_hwcap names in bit order, then the platform, then
    ``tls``; every subset is tried, the one with the highest bits first, and a
    path lists its elements highest first (elf/dl-hwcaps.c).  The empty subset
    (the directory itself) is not included.  [] when the architecture has no data.
    ``tunables``: a GLIBC_TUNABLES string; its ``glibc.cpu.hwcap_mask`` replaces the
    default mask (measured on 2.36: ``=0`` leaves ``tls/x86_64, tls, x86_64``).
    """
    spec = _data()["legacy_hwcaps"].get(arch)
    if spec is None:
        return []
    mask = _tunable_mask(tunables, spec["hwcap_mask_tunable"])
    if mask is None:
        mask = sum(1 << c["bit"] for c in spec["hwcaps"] if c["name"] in spec["hwcap_mask"])
    elements = [c["name"] for c in sorted(spec["hwcaps"], key=lambda c: c["bit"])
                if mask & (1 << c["bit"]) and _matches(c, features, vendor)]
    platform = next((c["name"] for c in spec["platforms"] if _matches(c, features, vendor)),
                    spec["at_platform"])
    if platform:
        elements.append(platform)
    if spec["tls"]:
        elements.append("tls")
    count = len(elements)
    result = []
    for subset in range((1 << count) - 1, 0, -1):
        parts = [elements[n] for n in reversed(range(count)) if subset & (1 << n)]
        result.append("/".join(parts))
    return result
