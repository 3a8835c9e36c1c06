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


def legacy_subdirs(arch: str, features: frozenset[str], vendor: str | None) -> list[str]:
    """Legacy hwcaps subdirectories in glibc 2.36's search order, e.g. on an AMD CPU
    ``tls/x86_64/x86_64, tls/x86_64, tls/x86_64, tls, x86_64/x86_64, x86_64, x86_64``
    (platform x86_64 from AT_PLATFORM, hwcap x86_64; duplicates are searched twice).

    The elements are the dl_hwcap names in bit order, then the platform, then
    ``tls``; every subset is tried, the one with the highest bits first, and a
    path lists its elements highest first (elf/dl-hwcaps.c).  The empty subset
    (the directory itself) is not included.  [] when the architecture has no data.
    """
    spec = _data()["legacy_hwcaps"].get(arch)
    if spec is None:
        return []
    elements = [c["name"] for c in spec["hwcaps"]
                if c["name"] in spec["hwcap_mask"] and _matches(c, features, vendor)]
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
