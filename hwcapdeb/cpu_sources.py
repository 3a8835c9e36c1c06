"""Where CPU models come from: this machine, a CPU's name, a saved dump.

Models (:class:`hwcapdeb.cpu.CpuModel`) come from

* ``host``: the real loader's own view (``ld.so --list-diagnostics``), or
  py-cpuinfo when the loader cannot say; the model's ``source`` tells which;
* an archspec microarchitecture name (``haswell``, ``zen4``, ``x86_64_v2``);
* a saved ``/proc/cpuinfo`` or a saved ``ld.so --list-diagnostics`` output.

On ppc64el and s390x glibc (2.33+) decides from AT_HWCAP/AT_HWCAP2 bits
instead of CPUID: named CPUs are the level names (``power9``, ``z15``), dumps
are decoded with profiles/cpu-hwcap-bits.json, and there is no ISA marker.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import archspec.cpu
import jsonschema

from hwcapdeb.cpu import CpuModel, feature_table, isa_bits, usable_features
from hwcapdeb.errors import InputError, UsageError
from hwcapdeb.glibc_rules import host_arch, loader_env
from hwcapdeb.profiles import Architecture, architecture
from hwcapdeb.validate import read_bytes

HOST = "host"

#: the archspec names ``hwcapdeb cpus`` lists, oldest first, plus the generic levels
REPRESENTATIVE_CPUS = (
    "x86_64", "core2", "nehalem", "westmere", "sandybridge", "ivybridge", "haswell",
    "broadwell", "skylake", "skylake_avx512", "cascadelake", "icelake", "sapphirerapids",
    "k10", "bulldozer", "piledriver", "zen", "zen2", "zen3", "zen4",
    "x86_64_v2", "x86_64_v3", "x86_64_v4",
)  # fmt: skip


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
        key, arch, usable_features(features), f"archspec {archspec.__version__} ({target.vendor})",
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
    return _model(name, arch, usable_features(features), source,
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
