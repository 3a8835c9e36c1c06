"""What each iced-x86 instruction form (``Code``) is to the instruction audit.

iced-x86's instruction table knows every form's CPUID features
(``Instruction.cpuid_features``); this module maps them to glibc-hwcaps level
ranks (:class:`LevelTable`, from ``profiles/arch``), drops the encodings that
never fault (hint space, ``TZCNT``), and precomputes, for every ``Code`` value,
the one flag word the hot loop of :mod:`hwcapdeb.isa_decode` reads: level
rank, control flow, CPU probe, legacy-encoded SSE.  Everything here is a
function of the ``Code`` alone, so it is computed once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from iced_x86 import Code, CpuidFeature, EncodingKind, FlowControl, Instruction, Mnemonic

from hwcapdeb import isa_decode
from hwcapdeb.profiles import Architecture, architecture


def _int_constants(namespace: object, lower: bool = False) -> dict[int, str]:
    """value -> name of an iced-x86 enum-like module (CpuidFeature, Code, Mnemonic)."""
    result = {}
    for name in dir(namespace):
        value = getattr(namespace, name)
        if not name.startswith("_") and isinstance(value, int):
            result[value] = name.lower() if lower else name
    return result


#: CpuidFeature value -> name ("AVX2")
FEATURE_NAMES = _int_constants(CpuidFeature)
_CODE_NAMES = _int_constants(Code)
_MNEMONIC_NAMES = _int_constants(Mnemonic, lower=True)

#: Features every x86-64 CPU has (the psABI baseline plus what x86-64 implies).
BASELINE_FEATURES = frozenset({
    "INTEL8086", "INTEL186", "INTEL286", "INTEL386", "INTEL486", "X64", "CPUID", "TSC",
    "CMOV", "CX8", "FPU", "FPU287", "FPU387", "MMX", "SSE", "SSE2", "FXSR", "SYSCALL",
    "CLFSH", "PAUSE",
})
#: Encodings that never fault on a CPU without the feature (hint/NOP space).
HINT_FEATURES = frozenset({"MULTIBYTENOP", "CET_IBT", "HLE", "MPX", "PREFETCHW"})
#: Instructions that never fault: TZCNT runs as BSF (GCC relies on it), the
#: shadow-stack reads are NOPs without CET.
HINT_MNEMONICS = frozenset({"tzcnt", "rdsspd", "rdsspq", "incsspd", "incsspq", "endbr64",
                            "endbr32"})
#: Instructions that are the CPU check itself: evidence of run-time dispatch.
PROBE_MNEMONICS = frozenset({"cpuid", "xgetbv"})

# Per-Code flags of the scan table (one small int per Code value), see isa_decode.
_RANK_MASK = isa_decode.RANK_MASK
_ENDER = isa_decode.ENDER
_CALL = isa_decode.CALL
_JUMP = isa_decode.JUMP
_PROBE = isa_decode.PROBE
_LEGACY_SSE = isa_decode.LEGACY_SSE

#: SSE/SSE2-era instructions that are no vector work: compilers emit them under any -m flags
_NOT_VECTOR = frozenset({
    "prefetchnta", "prefetcht0", "prefetcht1", "prefetcht2", "lfence", "mfence", "sfence",
    "pause", "clflush", "movnti", "fxsave", "fxrstor", "fxsave64", "fxrstor64",
})


@dataclass(frozen=True)
class LevelTable:
    """Feature name -> level rank for one architecture (``rank`` as in profiles.Level)."""

    arch: Architecture
    rank_of: dict[str, int]

    @property
    def beyond(self) -> int:
        """Rank of features no level guarantees (AES, SHA, AVX512_VNNI...)."""
        return len(self.arch.all_levels)

    def level_name(self, rank: int) -> str:
        if rank >= self.beyond:
            return "beyond every level"
        return self.arch.all_levels[rank].name

    def feature_rank(self, name: str) -> int:
        if name in BASELINE_FEATURES:
            return 0
        return self.rank_of.get(name, self.beyond)


@cache
def level_table(arch_name: str = "amd64") -> LevelTable:
    arch = architecture(arch_name)
    rank_of: dict[str, int] = {}
    for level in arch.all_levels:
        for feature in level.adds:
            rank_of.setdefault(feature, level.rank)
    return LevelTable(arch, rank_of)


@dataclass(frozen=True)
class CodeInfo:
    """What the audit knows about one ``Code`` (instruction form)."""

    mnemonic: str
    features: tuple[str, ...]  # CPUID features that count (hints dropped)
    rank: int
    vex: bool = False  # VEX or EVEX encoded
    legacy_sse: bool = False  # SSE/SSE2 vector work in the legacy encoding


@cache
def code_info(code: int, arch_name: str) -> CodeInfo:
    table = level_table(arch_name)
    ins = Instruction.create(code)  # type: ignore[arg-type]  # Code is an int
    mnemonic = _MNEMONIC_NAMES.get(ins.mnemonic, "?")
    names = tuple(FEATURE_NAMES.get(f, str(f)) for f in ins.cpuid_features())
    if mnemonic in HINT_MNEMONICS:
        counted: tuple[str, ...] = ()
    else:
        counted = tuple(n for n in names if n not in HINT_FEATURES and n not in BASELINE_FEATURES)
    rank = max((table.feature_rank(n) for n in counted), default=0)
    vex = ins.encoding in (EncodingKind.VEX, EncodingKind.EVEX)
    legacy_sse = (ins.encoding == EncodingKind.LEGACY and bool({"SSE", "SSE2"} & set(names))
                  and mnemonic not in _NOT_VECTOR)
    return CodeInfo(mnemonic, counted, rank, vex, legacy_sse)


@cache
def scan_table(arch_name: str) -> list[int]:
    """One flag word per Code value: rank, control flow, probe (bits of :mod:`isa_decode`)."""
    size = max(_CODE_NAMES) + 1
    flags = [0] * size
    for code in range(1, size):
        try:
            ins = Instruction.create(code)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            continue
        info = code_info(code, arch_name)
        word = min(info.rank, _RANK_MASK)
        flow = ins.flow_control
        if flow in (FlowControl.CONDITIONAL_BRANCH, FlowControl.INDIRECT_BRANCH,
                    FlowControl.RETURN, FlowControl.EXCEPTION, FlowControl.XBEGIN_XABORT_XEND):
            word |= _ENDER
        elif flow == FlowControl.UNCONDITIONAL_BRANCH:
            word |= _ENDER | _JUMP
        elif flow == FlowControl.CALL:
            word |= _CALL
        if info.mnemonic in PROBE_MNEMONICS:
            word |= _PROBE
        if info.legacy_sse:
            word |= _LEGACY_SSE
        flags[code] = word
    return flags
