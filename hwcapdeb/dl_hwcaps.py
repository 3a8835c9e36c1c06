"""Which glibc-hwcaps subdirectories the loader tries, in its order.

Part of the loader model (:mod:`hwcapdeb.loader`), read in glibc's
elf/dl-hwcaps.c (2.33+): first the ``--glibc-hwcaps-prepend`` names (no CPU
check), then the built-in subdirectories of ``profiles/arch/<arch>.json`` the
CPU supports (cumulatively, :func:`hwcapdeb.cpu.supported_levels`) that
``--glibc-hwcaps-mask`` (an allow-list) keeps.  A glibc release does not search
the names it does not know yet (s390x z16: 2.36, z17: 2.42).  The legacy
subdirectories of glibc <= 2.36 are built by
:func:`hwcapdeb.glibc_rules.legacy_subdirs`;
:func:`hwcapdeb.glibc_rules.legacy_dir_names` recognises them in a tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwcapdeb.cpu import CpuModel, supported_levels, why_not
from hwcapdeb.glibc_rules import parse_version
from hwcapdeb.profiles import Architecture, Level, architecture

#: where glibc 2.33+ looks for the hwcaps subdirectories of a search directory
HWCAPS_DIR = "glibc-hwcaps"


@dataclass(frozen=True)
class HwcapsName:
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


def hwcaps_names(
    cpu: CpuModel,
    prepend: Sequence[str] = (),
    mask: Sequence[str] | None = None,
    glibc: str | None = None,
) -> list[HwcapsName]:
    """glibc-hwcaps names in the order the loader tries them (elf/dl-hwcaps.c).

    ``glibc`` (e.g. "2.36") drops names that release does not know (z17: 2.42).
    """
    arch = architecture(cpu.arch)
    names = [
        HwcapsName(n, True, "prepended with --glibc-hwcaps-prepend (no CPU check)", _level(arch, n))
        for n in dict.fromkeys(prepend)
    ]
    supported = supported_levels(cpu)
    for level in arch.search_order:
        if glibc and level.glibc_min and parse_version(level.glibc_min) > parse_version(glibc):
            names.append(HwcapsName(level.name, False,
                               f"glibc {glibc} has no such directory (added in {level.glibc_min})",
                               level))
        elif level not in supported:
            missing = why_not(cpu, level)
            reason = (
                f"CPU lacks {', '.join(missing)}"
                if missing
                else "a lower level is not supported (glibc checks levels cumulatively)"
            )
            names.append(HwcapsName(level.name, False, reason, level))
        elif mask is not None and level.name not in mask:
            names.append(HwcapsName(level.name, False, "not in --glibc-hwcaps-mask", level))
        elif level.name in prepend:
            continue
        else:
            names.append(HwcapsName(level.name, True, "supported by the CPU", level))
    return names


def _level(arch: Architecture, name: str) -> Level | None:
    return next((lv for lv in arch.levels if lv.name == name), None)
