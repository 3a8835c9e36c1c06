"""Search-path syntax of glibc's loader, part of the loader model (:mod:`hwcapdeb.loader`).

How a DT_RPATH/DT_RUNPATH or LD_LIBRARY_PATH string becomes directories, and the
values of its dynamic string tokens; read in glibc 2.36's elf/dl-load.c
(fillin_rpath, _dl_dst_substitute, is_dst) and sysdeps/x86/cpu-features.c
($PLATFORM), checked against the real loader by tests/test_loader_differential.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwcapdeb.cpu import CpuModel

#: DT_RPATH/DT_RUNPATH split on ':' only; LD_LIBRARY_PATH and --library-path on ':' and
#: ';' (elf/dl-load.c fillin_rpath callers, glibc 2.36)
RPATH_SEPARATORS = ":"
LIBRARY_PATH_SEPARATORS = ":;"
DST = re.compile(r"\$(\{(ORIGIN|PLATFORM|LIB)\}|(ORIGIN|PLATFORM|LIB)(?![A-Za-z0-9_]))")


def expand_tokens(entry: str, origin: str | None, lib: str, platform: str | None) -> str | None:
    """One path entry with glibc's dynamic string tokens replaced (_dl_dst_substitute):
    ``$ORIGIN``/``${ORIGIN}`` (the requesting object's directory), ``$LIB``,
    ``$PLATFORM``; a token followed by an identifier character is not one
    (``$LIBX`` stays).  None when a token has no value: glibc drops the entry."""
    missing = False

    def value(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(2) or m.group(3)
        found = {"ORIGIN": origin, "LIB": lib, "PLATFORM": platform}[name]
        if found is None:
            missing = True
            return ""
        return found

    result = DST.sub(value, entry)
    return None if missing else result


def search_path(
    value: str, separators: str, *, origin: str | None, lib: str, platform: str | None
) -> list[str]:
    """A search path string as glibc's fillin_rpath() reads it (glibc 2.36): split on
    ``separators``; an empty entry is the current directory (``:dir``, ``dir:``, ``a::b``);
    tokens expanded (an entry whose token has no value, or that expands to nothing, is
    dropped); trailing slashes removed; a directory already in the list is not repeated."""
    result: list[str] = []
    for raw in re.split(f"[{re.escape(separators)}]", value):
        entry: str | None = raw
        if raw:
            entry = expand_tokens(raw, origin, lib, platform)
            if not entry:
                continue
            entry = entry.rstrip("/") or "/"
        if entry is not None and entry not in result:
            result.append(entry)
    return result


def dl_platform(cpu: CpuModel) -> str | None:
    """$PLATFORM: on x86_64 glibc 2.36 (sysdeps/x86/cpu-features.c) says ``haswell`` for an
    Intel CPU with AVX2, FMA, BMI1, BMI2, LZCNT, MOVBE and POPCNT usable (after tunables),
    ``xeon_phi`` for one with AVX512CD+ER+PF, else the kernel's AT_PLATFORM, ``x86_64``.
    The vendor comes from the model's source (archspec, a cpuinfo dump) or this machine."""
    if cpu.arch != "amd64":
        return None
    if _cpu_vendor(cpu) == "GenuineIntel":
        f = cpu.features
        if {"AVX512CD", "AVX512ER", "AVX512PF"} <= f:
            return "xeon_phi"
        if {"AVX2", "FMA", "BMI1", "BMI2", "LZCNT", "MOVBE", "POPCNT"} <= f:
            return "haswell"
    return "x86_64"


def _cpu_vendor(cpu: CpuModel) -> str | None:
    m = re.search(r"GenuineIntel|AuthenticAMD|HygonGenuine|CentaurHauls", cpu.source)
    if m:
        return m.group(0)
    if cpu.source.startswith(("real loader", "py-cpuinfo")):
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")[:65536]
        except OSError:
            return None
        found = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M)
        return found.group(1) if found else None
    return None
