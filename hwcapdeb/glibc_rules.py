"""The loader rules that depend on the glibc release (profiles/glibc.json).

Each version-dependent rule is written once, in the data, with the releases
it belongs to; this module only reads it.  :func:`applies` answers "does the
rule hold for glibc V", :func:`legacy_subdirs` builds the legacy hwcaps
subdirectories a glibc <= 2.36 loader tries (elf/dl-hwcaps.c, power set
construction), in its order.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from hwcapdeb.errors import UsageError
from hwcapdeb.profiles import _data_root, _load_json

_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)$")


def parse_version(text: str, what: str = "--glibc") -> tuple[int, int]:
    """``2.36`` -> (2, 36); anything else is a usage error (one line, exit 2)."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise UsageError(f"{what} '{text}' is not a glibc release",
                         hint="give MAJOR.MINOR, e.g. 2.36 or 2.43")
    return int(m.group(1)), int(m.group(2))


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
