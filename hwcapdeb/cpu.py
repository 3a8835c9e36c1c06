"""CPU models and glibc's rules over them: which glibc-hwcaps levels a CPU reaches.

A :class:`CpuModel` is a set of glibc feature names (``AVX2``,
``LAHF64_SAHF64``, ``CMPXCHG16B``: the spelling of glibc's
``cpu-features.h``, tabled in profiles/cpu-features.json) with *usable*
semantics: AVX counts only when the OS saves its state (OSXSAVE), as glibc
decides (:func:`usable_features`).  Where models come from (the host's loader,
archspec names, saved dumps) is :mod:`hwcapdeb.cpu_sources`.

:func:`supported_levels` follows glibc 2.33+'s cumulative level checks
(``_dl_hwcaps_subdirs_active``); :func:`why_not` says what a level misses.

:func:`apply_tunables` applies ``GLIBC_TUNABLES=glibc.cpu.hwcaps=...`` the way
glibc 2.36 does (sysdeps/x86/cpu-tunables.c, measured against the real
loader): only names in glibc's list are masked, ``+NAME`` never enables a CPU
feature, unknown names are ignored.  Masks change which glibc-hwcaps
directories are searched but *not* the ISA level the loader checks x86 ISA
markers against (``isa_1`` is computed before the tunables are read); the
model keeps both.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from hwcapdeb.errors import UsageError
from hwcapdeb.profiles import Architecture, Level, architecture

#: features that need the OS to save the AVX/AVX-512 register state
#: (glibc cpu-features.c clears them when neither XSAVE nor XSAVEC is usable)
_XSAVE_DEPENDENT = frozenset(
    {
        "AVX", "AVX2", "AVX_VNNI", "FMA", "VAES", "VPCLMULQDQ", "XOP", "F16C", "AVX512F",
        "AVX512CD", "AVX512ER", "AVX512PF", "AVX512VL", "AVX512DQ", "AVX512BW",
        "AVX512_4FMAPS", "AVX512_4VNNIW", "AVX512_BITALG", "AVX512_IFMA", "AVX512_VBMI",
        "AVX512_VBMI2", "AVX512_VNNI", "AVX512_VPOPCNTDQ", "AVX512_VP2INTERSECT",
        "AVX512_BF16", "AVX512_FP16", "AMX_BF16", "AMX_TILE", "AMX_INT8", "FMA4",
    }
)  # fmt: skip
_OSXSAVE_DEPENDENT = frozenset({"XSAVE", "XSAVEOPT", "XSAVEC", "XGETBV_ECX_1", "XFD"})


@dataclass(frozen=True)
class FeatureInfo:
    glibc: str
    cpuid_index: int
    register: int  # 0 eax .. 3 edx, as ld.so --list-diagnostics numbers them
    bit: int
    cpuinfo: str | None
    archspec: str | None


@dataclass(frozen=True)
class FeatureTable:
    """profiles/cpu-features.json: glibc name <-> CPUID bit <-> /proc/cpuinfo <-> archspec."""

    features: tuple[FeatureInfo, ...]
    maskable: frozenset[str]
    preferred: frozenset[str]  # glibc "preferred" flags: accept + and -, no effect on hwcaps
    preferred_off: frozenset[str]
    qemu_models: dict[str, str]
    glibc: str

    @functools.cached_property
    def by_cpuinfo(self) -> dict[str, str]:
        return {f.cpuinfo: f.glibc for f in self.features if f.cpuinfo}

    @functools.cached_property
    def by_archspec(self) -> dict[str, str]:
        return {f.archspec: f.glibc for f in self.features if f.archspec}

    @functools.cached_property
    def names(self) -> frozenset[str]:
        return frozenset(f.glibc for f in self.features)


@functools.cache
def feature_table() -> FeatureTable:
    root = Path(str(resources.files("hwcapdeb.profile_data")))
    data: dict[str, Any] = json.loads((root / "cpu-features.json").read_text())
    jsonschema.validate(data, json.loads((root / "cpu-features.schema.json").read_text()))
    registers = data["registers"]
    return FeatureTable(
        features=tuple(
            FeatureInfo(
                f["glibc"], f["cpuid_index"], registers.index(f["register"]), f["bit"],
                f["cpuinfo"], f["archspec"],
            )
            for f in data["features"]
        ),
        maskable=frozenset(data["tunables"]["maskable"]),
        preferred=frozenset(data["tunables"]["preferred"]),
        preferred_off=frozenset(data["tunables"]["preferred_off"]),
        qemu_models=dict(data["qemu_models"]),
        glibc=data["glibc"],
    )


@dataclass(frozen=True)
class CpuModel:
    """What the loader knows about one CPU.

    ``features`` decide which glibc-hwcaps subdirectories are searched (after
    any tunables); ``isa_1`` is the GNU_PROPERTY_X86_ISA_1 bit set the loader
    computed at start-up, *before* tunables, and is what ISA markers are
    checked against.
    """

    name: str
    arch: str
    features: frozenset[str]
    source: str
    isa_1: int = 0
    qemu_cpu: str | None = None
    tunables: str | None = None
    ignored_tunables: tuple[str, ...] = field(default=())
    glibc: str | None = None  # the loader's release when the model comes from a real loader
    vendor: str | None = None  # "intel", "amd"...: glibc <= 2.36 chose legacy hwcaps dirs by it

    @property
    def isa_level(self) -> Level | None:
        """The highest level in ``isa_1`` (the marker check's view), None below baseline."""
        return _level_for_bits(architecture(self.arch), self.isa_1)

    def to_json(self) -> dict[str, Any]:
        arch = architecture(self.arch)
        best = highest_level(self)
        nxt = next((lv for lv in arch.all_levels if lv.rank == best.rank + 1), None)
        return {
            "name": self.name,
            "arch": self.arch,
            "source": self.source,
            "features": sorted(self.features),
            "highest_level": best.name,
            "isa_level": self.isa_level.name if self.isa_level else None,
            "next_level": nxt.name if nxt else None,
            "missing_for_next": why_not(self, nxt) if nxt else [],
            "qemu_cpu": self.qemu_cpu,
            "tunables": self.tunables,
            "ignored_tunables": list(self.ignored_tunables),
            "glibc": self.glibc,
            "vendor": self.vendor,
        }


def _level_for_bits(arch: Architecture, bits: int) -> Level | None:
    found = None
    for level in arch.all_levels:
        if level.marker_bit is None or not bits & level.marker_bit:
            break
        found = level
    return found


def isa_bits(features: frozenset[str], arch: str = "amd64") -> int:
    """glibc's get_isa_level(): cumulative GNU_PROPERTY_X86_ISA_1 bits the features reach.

    Cumulative like glibc's: a CPU without a baseline feature (SSE2 masked)
    reaches no level at all, so no glibc-hwcaps subdirectory is searched.
    """
    bits = 0
    for level in architecture(arch).all_levels:
        if level.marker_bit is None or not level.features <= features:
            break
        bits |= level.marker_bit
    return bits


def supported_levels(model: CpuModel) -> list[Level]:
    """Levels whose directory the loader searches for this CPU, lowest first.

    The baseline is always included: the plain directory is searched without
    any CPU check.  glibc-hwcaps levels follow glibc's
    ``_dl_hwcaps_subdirs_active``: cumulative, stopping at the first level
    the (tunables-masked) features do not reach.
    """
    arch = architecture(model.arch)
    if arch.marker is None:
        # ppc64el and s390x: cumulative over the glibc-hwcaps levels, the baseline
        # is not checked (sysdeps/*/dl-hwcaps-subdirs.c)
        result = [arch.baseline]
        for level in arch.levels:
            if not set(level.adds) <= model.features:
                break
            result.append(level)
        return result
    bits = isa_bits(model.features, model.arch)
    return [arch.baseline] + [lv for lv in arch.levels if lv.marker_bit and bits & lv.marker_bit]


def highest_level(model: CpuModel) -> Level:
    return supported_levels(model)[-1]


def why_not(model: CpuModel, level: Level) -> list[str]:
    """Features ``level`` needs that the CPU lacks (glibc names, level order); [] if it has them."""
    arch = architecture(model.arch)
    missing: list[str] = []
    for lv in arch.all_levels:
        if lv.rank > level.rank:
            break
        if lv.is_baseline and arch.marker is None:
            continue  # glibc does not check the baseline there
        missing.extend(f for f in lv.adds if f not in model.features)
    return missing


def usable_features(features: set[str]) -> frozenset[str]:
    """Apply glibc's usable rules the OS decides (XSAVE state for AVX and friends)."""
    if "OSXSAVE" not in features:
        features -= _OSXSAVE_DEPENDENT
    if "OSXSAVE" not in features or not features & {"XSAVE", "XSAVEC"}:
        features -= _XSAVE_DEPENDENT
    return frozenset(features)


# -- GLIBC_TUNABLES ---------------------------------------------------------------------

def hwcaps_tunable(tunables: str) -> str | None:
    """The glibc.cpu.hwcaps value of a GLIBC_TUNABLES string (None if absent), read as
    glibc 2.36's parse_tunables() reads it (elf/dl-tunables.c): items separated by
    ``:``, an item without ``=`` skipped, other tunables ignored, a trailing ``:``
    harmless, the value running to the next ``:``; the last occurrence wins.

    Only a string glibc would read nothing from because it holds no ``name=value``
    at all (the common slip of passing the mask alone, ``-AVX2``) is a UsageError.
    """
    value = None
    p = tunables
    while True:
        cut = min((i for i in (p.find("="), p.find(":")) if i >= 0), default=-1)
        if cut < 0:
            break  # a name without '=' at the end: glibc stops there
        if p[cut] == ":":
            p = p[cut + 1:]
            continue
        name, rest = p[:cut], p[cut + 1:]
        val, more, p = rest.partition(":")
        if name == "glibc.cpu.hwcaps":
            value = val
        if not more:
            break
    if value is None and "=" not in tunables and tunables.strip(":"):
        hint = (
            f"write 'glibc.cpu.hwcaps={tunables}'"
            if re.match(r"^[-+]?[A-Za-z0-9_]+(,|$)", tunables)
            else "the form is 'glibc.cpu.hwcaps=-AVX2,-AVX512F'"
        )
        raise UsageError(f"malformed GLIBC_TUNABLES string '{tunables}'", hint=hint)
    return value


def apply_tunables(model: CpuModel, tunables: str | None) -> CpuModel:
    """``model`` as glibc sees it under GLIBC_TUNABLES=``tunables`` (glibc 2.36 rules).

    ``-NAME`` clears NAME only if glibc's list has it (case-sensitive, exact
    length); ``+NAME`` and unknown names are ignored, as glibc does (recorded
    in ``ignored_tunables``).  Clearing OSXSAVE, or both XSAVE and XSAVEC,
    clears AVX and everything that needs the saved state, as glibc does after
    reading the tunable.  ``isa_1`` is left alone: the loader computed it first.
    """
    if not tunables:
        return model
    value = hwcaps_tunable(tunables)
    if value is None:
        return replace(model, tunables=tunables)
    if model.arch != "amd64":
        # measured under qemu: glibc.cpu.hwcaps changes string-function choices there,
        # never AT_HWCAP/AT_HWCAP2, so glibc-hwcaps selection is unchanged
        note = f"glibc.cpu.hwcaps={value} (does not change glibc-hwcaps on {model.arch})"
        return replace(model, tunables=tunables,
                       ignored_tunables=(*model.ignored_tunables, note))
    table = feature_table()
    features = set(model.features)
    ignored = []
    for item in value.split(","):
        if not item:
            continue
        disable = item.startswith("-")
        name = item[1:] if item[0] in "+-" else item
        if disable and name in table.maskable:
            features.discard(name)
        elif name in table.preferred or (disable and name in table.preferred_off):
            continue  # a tuning preference: changes string functions, not hwcaps
        else:
            why = "glibc never enables a CPU feature" if not disable and name in table.names \
                else "not a feature glibc.cpu.hwcaps can mask"
            ignored.append(f"{item} ({why})")
    return replace(
        model,
        name=f"{model.name} with GLIBC_TUNABLES",
        features=usable_features(features),
        tunables=tunables,
        ignored_tunables=model.ignored_tunables + tuple(ignored),
    )
