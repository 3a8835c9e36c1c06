"""CPU models: which glibc CPU features a (real, named or saved) CPU has.

A :class:`CpuModel` is a set of glibc feature names (``AVX2``,
``LAHF64_SAHF64``, ``CMPXCHG16B``: the spelling of glibc's
``cpu-features.h``) with *usable* semantics: AVX counts only when the OS
saves its state (OSXSAVE), as glibc decides.  Models come from

* ``host``: the real loader's own view (``ld.so --list-diagnostics``), or
  py-cpuinfo when the loader cannot say; the model's ``source`` tells which;
* an archspec microarchitecture name (``haswell``, ``zen4``, ``x86_64_v2``);
* a saved ``/proc/cpuinfo`` or a saved ``ld.so --list-diagnostics`` output.

On ppc64el and s390x glibc decides from AT_HWCAP/AT_HWCAP2 bits instead of
CPUID: named CPUs are the level names (``power9``, ``z15``), dumps are
decoded with profiles/cpu-hwcap-bits.json, and there is no ISA marker.

:func:`apply_tunables` applies ``GLIBC_TUNABLES=glibc.cpu.hwcaps=...`` the way
glibc 2.36 does (sysdeps/x86/cpu-tunables.c, measured against the real
loader): only names in glibc's list are masked, ``+NAME`` never enables a CPU
feature, unknown names are ignored.  Masks change which glibc-hwcaps
directories are searched but *not* the ISA level the loader checks x86 ISA
markers against (``isa_1`` is computed before the tunables are read); the
model keeps both.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import archspec.cpu
import jsonschema

from hwcapdeb.errors import InputError, UsageError
from hwcapdeb.glibc_rules import host_arch, loader_env
from hwcapdeb.profiles import Architecture, Level, architecture
from hwcapdeb.validate import read_bytes

HOST = "host"

#: the archspec names ``hwcapdeb cpus`` lists, oldest first, plus the generic levels
REPRESENTATIVE_CPUS = (
    "x86_64", "core2", "nehalem", "westmere", "sandybridge", "ivybridge", "haswell",
    "broadwell", "skylake", "skylake_avx512", "cascadelake", "icelake", "sapphirerapids",
    "k10", "bulldozer", "piledriver", "zen", "zen2", "zen3", "zen4",
    "x86_64_v2", "x86_64_v3", "x86_64_v4",
)  # fmt: skip

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
class HwcapTable:
    """profiles/cpu-hwcap-bits.json for one non-x86 architecture: glibc-hwcaps there is
    decided by AT_HWCAP/AT_HWCAP2 bits (no CPUID, no ISA marker)."""

    arch: str
    hwcap: dict[str, int]
    hwcap2: dict[str, int]
    cpuinfo_field: str
    cpuinfo_models: dict[str, str]  # ppc64el: "cpu : POWER9" -> named CPU
    cpuinfo_flags: dict[str, str]  # s390x: "features : vx vxd" -> glibc names
    named: dict[str, str]  # CPU name -> the level it implements
    aliases: dict[str, str]
    qemu_models: dict[str, str]


@functools.cache
def hwcap_tables() -> dict[str, HwcapTable]:
    root = Path(str(resources.files("hwcapdeb.profile_data")))
    data: dict[str, Any] = json.loads((root / "cpu-hwcap-bits.json").read_text())
    jsonschema.validate(data, json.loads((root / "cpu-hwcap-bits.schema.json").read_text()))
    return {
        arch: HwcapTable(
            arch, raw["hwcap"], raw["hwcap2"], raw["cpuinfo"]["field"],
            raw["cpuinfo"].get("models", {}), raw["cpuinfo"].get("flags", {}),
            raw["named"], raw["aliases"], raw["qemu_models"],
        )
        for arch, raw in data["arches"].items()
    }


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


def _require_models(arch_name: str) -> Architecture:
    arch = architecture(arch_name)
    arch.require_hwcaps()
    if arch.marker is None and arch_name not in hwcap_tables():
        raise UsageError(
            f"hwcapdeb has no CPU models for {arch_name}",
            hint=f"add it to profiles/cpu-hwcap-bits.json (known: amd64, "
                 f"{', '.join(sorted(hwcap_tables()))})",
        )
    return arch


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


def _finish(features: set[str]) -> frozenset[str]:
    """Apply glibc's usable rules the OS decides (XSAVE state for AVX and friends)."""
    if "OSXSAVE" not in features:
        features -= _OSXSAVE_DEPENDENT
    if "OSXSAVE" not in features or not features & {"XSAVE", "XSAVEC"}:
        features -= _XSAVE_DEPENDENT
    return frozenset(features)


def _model(name: str, arch: str, features: frozenset[str], source: str, **kw: Any) -> CpuModel:
    return CpuModel(name, arch, features, source, isa_1=isa_bits(features, arch), **kw)


# -- archspec names ----------------------------------------------------------------------


def _archspec_names() -> list[str]:
    return sorted(n for n, t in archspec.cpu.TARGETS.items() if t.family.name == "x86_64")


def from_level_name(name: str, arch: str) -> CpuModel:
    """A named CPU of a non-x86 architecture (power9, z15...): exactly its level's features."""
    table = hwcap_tables()[arch]
    key = table.aliases.get(name, name)
    if key not in table.named:
        names = sorted([*table.named, *table.aliases])
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(names)}"
        raise UsageError(f"unknown {arch} CPU '{name}'", hint=hint)
    level = architecture(arch).level(table.named[key])
    return CpuModel(
        key, arch, level.features, f"the {level.name} level of profiles/arch/{arch}.json",
        qemu_cpu=table.qemu_models.get(key),
    )


def from_archspec(name: str, arch: str = "amd64") -> CpuModel:
    """A named microarchitecture; an OS that enables XSAVE (Linux) is assumed."""
    key = name.lower().replace("-", "_")
    target = archspec.cpu.TARGETS.get(key)
    if target is None or target.family.name != "x86_64":
        names = [HOST, *_archspec_names()]
        close = difflib.get_close_matches(key, names, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else "use 'host', an archspec name ('hwcapdeb cpus' lists some) or a saved dump"
        )
        raise UsageError(f"unknown CPU '{name}'", hint=hint)
    table = feature_table()
    features = set(architecture(arch).baseline.adds)  # every x86-64 CPU has them
    features |= {table.by_archspec[f] for f in target.features if f in table.by_archspec}
    if "XSAVE" in features or "AVX" in features:
        features |= {"XSAVE", "OSXSAVE"}  # archspec omits xsave on some AVX parts
    return _model(
        key, arch, _finish(features), f"archspec {archspec.__version__} ({target.vendor})",
        qemu_cpu=table.qemu_models.get(key), vendor=_VENDORS.get(target.vendor),
    )


# -- saved dumps ------------------------------------------------------------------------

_DIAG_LINE = re.compile(r"^x86\.cpu_features\.features\[0x([0-9a-f]+)\]\.(cpuid|active)\[0x([0-3])\]=0x([0-9a-f]+)$", re.M)  # noqa: E501
_ISA_LINE = re.compile(r"^x86\.cpu_features\.isa_1=0x([0-9a-f]+)$", re.M)
_TUNABLES_ENV = re.compile(r'^env\[0x[0-9a-f]+\]="GLIBC_TUNABLES=(.*)"$', re.M)


def parse_diagnostics(
    text: str, name: str = "ld.so --list-diagnostics", arch: str = "amd64"
) -> CpuModel:
    """A model from ``ld.so --list-diagnostics`` output: the loader's own usable bits.

    Uses the ``active`` words (glibc's usable bits) plus FPU from the raw
    CPUID word (glibc checks FPU that way too), and ``isa_1`` as printed.
    """
    _check_dump_arch(text, name, arch)
    if arch in hwcap_tables():
        return _parse_hwcap_diagnostics(text, name, arch)
    words: dict[tuple[str, int, int], int] = {}
    for m in _DIAG_LINE.finditer(text):
        words[(m.group(2), int(m.group(1), 16), int(m.group(3)))] = int(m.group(4), 16)
    if not words:
        raise InputError(
            f"{name}: no x86 CPU features in this ld.so --list-diagnostics output",
            hint="save it on an x86-64 machine with glibc >= 2.33",
        )
    features = set()
    for info in feature_table().features:
        kind = "cpuid" if info.glibc == "FPU" else "active"
        if words.get((kind, info.cpuid_index, info.register), 0) >> info.bit & 1:
            features.add(info.glibc)
    isa = _ISA_LINE.search(text)
    source = "ld.so --list-diagnostics"
    env = _TUNABLES_ENV.search(text)
    if env:
        source += f" (taken with GLIBC_TUNABLES={env.group(1)})"
    frozen = frozenset(features)
    return CpuModel(
        name, arch, frozen, source,
        isa_1=int(isa.group(1), 16) if isa else isa_bits(frozen, arch),
        glibc=_glibc_version(text), vendor=_diagnostics_vendor(text),
    )


#: CPUID vendor strings, and glibc's enum cpu_features_kind (sysdeps/x86/include/cpu-features.h)
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}
_KINDS = {1: "intel", 2: "amd", 3: "zhaoxin", 4: "other"}


def _diagnostics_vendor(text: str) -> str | None:
    kind = re.search(r"^x86\.cpu_features\.basic\.kind=0x([0-9a-f]+)$", text, re.M)
    return _KINDS.get(int(kind.group(1), 16)) if kind else None


def _dump_arch(text: str) -> str | None:
    """The architecture a diagnostics dump comes from, by its glibc-hwcaps names."""
    m = re.search(r'^dl_hwcaps_subdirs="([^"]*)"$', text, re.M)
    if not m:
        return "amd64" if "x86.cpu_features." in text else None
    names = set(m.group(1).split(":"))
    for candidate in ("amd64", "ppc64el", "s390x"):
        if names & {lv.name for lv in architecture(candidate).levels}:
            return candidate
    return None


def _check_dump_arch(text: str, name: str, arch: str) -> None:
    found = _dump_arch(text)
    if found is not None and found != arch:
        raise InputError(f"{name} was saved on {found}, not {arch}",
                         hint=f"pass --arch {found}")


def _glibc_version(text: str) -> str | None:
    m = re.search(r'^version\.version="([^"]+)"$', text, re.M)
    return m.group(1) if m else None


def _parse_hwcap_diagnostics(text: str, name: str, arch: str) -> CpuModel:
    table = hwcap_tables()[arch]
    words = {}
    for key in ("dl_hwcap", "dl_hwcap2"):
        m = re.search(rf"^{key}=0x([0-9a-f]+)$", text, re.M)
        words[key] = int(m.group(1), 16) if m else 0
    if not re.search(r"^dl_hwcap=", text, re.M):
        raise InputError(f"{name}: no dl_hwcap in this ld.so --list-diagnostics output",
                         hint=f"save it on a {arch} machine with glibc >= 2.33")
    features = {f for f, bit in table.hwcap.items() if words["dl_hwcap"] & bit}
    features |= {f for f, bit in table.hwcap2.items() if words["dl_hwcap2"] & bit}
    return CpuModel(name, arch, frozenset(features), "ld.so --list-diagnostics",
                    glibc=_glibc_version(text))


def _parse_hwcap_cpuinfo(text: str, name: str, arch: str) -> CpuModel:
    table = hwcap_tables()[arch]
    m = re.search(rf"^{table.cpuinfo_field}\s*:\s*(.*)$", text, re.M)
    if m is None:
        raise InputError(f"{name}: no '{table.cpuinfo_field}' line: not a {arch} /proc/cpuinfo",
                         hint=f"save /proc/cpuinfo of a {arch} machine")
    value = m.group(1)
    if table.cpuinfo_models:
        model = next((cpu for tag, cpu in table.cpuinfo_models.items()
                      if re.match(rf"{tag}\b", value)), None)
        if model is None:
            raise InputError(f"{name}: unknown {arch} CPU '{value.strip()}'",
                             hint=f"known: {', '.join(table.cpuinfo_models)}")
        named = from_level_name(model, arch)
        return replace(named, name=name, source=f"saved /proc/cpuinfo ({value.strip()})",
                       qemu_cpu=None)
    features = {table.cpuinfo_flags[f] for f in value.split() if f in table.cpuinfo_flags}
    return CpuModel(name, arch, frozenset(features), "saved /proc/cpuinfo")


def parse_cpuinfo(text: str, name: str = "/proc/cpuinfo", arch: str = "amd64") -> CpuModel:
    """A model from a saved ``/proc/cpuinfo`` (the first processor's flags).

    Linux lists ``avx`` only when it saves the AVX state, so the flags are
    already "usable"; OSXSAVE, which Linux does not list, follows from ``xsave``.
    """
    if arch in hwcap_tables():
        return _parse_hwcap_cpuinfo(text, name, arch)
    flags = re.search(r"^flags\s*:(.*)$", text, re.M)
    if flags is None:
        raise InputError(
            f"{name}: no 'flags' line: not an x86 /proc/cpuinfo",
            hint="save /proc/cpuinfo of an x86-64 machine",
        )
    table = feature_table()
    features = {table.by_cpuinfo[f] for f in flags.group(1).split() if f in table.by_cpuinfo}
    if "XSAVE" in features:
        features.add("OSXSAVE")
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    source = "saved /proc/cpuinfo" + (f" ({model.group(1).strip()})" if model else "")
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M)
    return _model(name, arch, _finish(features), source,
                  vendor=_VENDORS.get(vendor.group(1)) if vendor else None)


def load_dump(path: Path, arch: str = "amd64") -> CpuModel:
    """A model from a saved file; the kind (cpuinfo or diagnostics) is detected from its text."""
    # a regular file of bounded size: a FIFO or /dev/zero given as --cpu is refused
    text = read_bytes(path, what="CPU dump").decode("utf-8", errors="replace")
    if "x86.cpu_features." in text or "dl_hwcaps_subdirs" in text:
        return parse_diagnostics(text, str(path), arch)
    if re.search(r"^(processor|flags|features|cpu)\s*:", text, re.M):
        return parse_cpuinfo(text, str(path), arch)
    raise InputError(
        f"{path}: neither a /proc/cpuinfo nor an 'ld.so --list-diagnostics' output",
        hint="save one with 'cat /proc/cpuinfo' or 'ld.so --list-diagnostics'",
    )


# -- the host ---------------------------------------------------------------------------


@functools.cache
def host_model(arch: str = "amd64") -> CpuModel:
    """This machine's CPU as the real loader sees it; py-cpuinfo if the loader cannot say.

    GLIBC_TUNABLES is removed from the loader's environment: masks are
    applied explicitly with :func:`apply_tunables`.
    """
    loader = architecture(arch).loader
    if loader and Path(loader).exists():
        try:
            out = subprocess.run(
                [loader, "--list-diagnostics"], capture_output=True, text=True,
                env=loader_env(), timeout=30, check=True,
            ).stdout
            model = parse_diagnostics(out, HOST, arch)
            version = f", glibc {model.glibc}" if model.glibc else ""
            return replace(model, source=f"real loader ({loader} --list-diagnostics{version})")
        except (OSError, subprocess.SubprocessError, InputError):
            pass  # older glibc or a foreign loader: ask the CPU instead
    return host_model_from_py_cpuinfo(arch)


def host_model_from_py_cpuinfo(arch: str = "amd64") -> CpuModel:
    """This machine's CPU from py-cpuinfo (CPUID/cpuinfo flags, Linux spelling)."""
    import cpuinfo  # py-cpuinfo; imported late, it is slow to import

    info = cpuinfo.get_cpu_info()
    flags = " ".join(info.get("flags", []))
    model = parse_cpuinfo(f"flags\t: {flags}\n", HOST, arch)
    return replace(model, source=f"py-cpuinfo ({info.get('brand_raw', 'unknown CPU')})")


def cpu_model(spec: str, arch: str = "amd64") -> CpuModel:
    """``host``, a CPU name (archspec's for amd64, levels' elsewhere) or a saved dump's path."""
    _require_models(arch)
    if spec == HOST:
        if host_arch() != arch:
            raise UsageError(f"this machine is not {arch}: --cpu host is meaningless there",
                             hint="name a CPU or pass a saved dump")
        return host_model(arch)
    # A spec with '/' is a saved dump; otherwise a CPU name wins, and a file of that name
    # in the current directory is read only when no CPU has the name (``--cpu haswell``
    # means the CPU even beside a directory called haswell; ``./haswell`` is the file).
    path = Path(spec)
    if os.sep in spec:
        if not path.exists() and not path.is_symlink():
            raise InputError(f"CPU dump {spec} does not exist")
        return load_dump(path, arch)
    try:
        if arch in hwcap_tables():
            return from_level_name(spec, arch)
        return from_archspec(spec, arch)
    except UsageError:
        if path.is_file():
            return load_dump(path, arch)
        raise


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
        features=_finish(features),
        tunables=tunables,
        ignored_tunables=model.ignored_tunables + tuple(ignored),
    )
