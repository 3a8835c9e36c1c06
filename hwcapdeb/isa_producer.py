"""The compiler's own word on a unit's CPU level: gcc's flags in DW_AT_producer.

gcc records its command line in each compile unit's ``DW_AT_producer``
(``-grecord-gcc-switches``, Debian's default); the ISA options there
(``-march=haswell``, ``-mavx2``) say what level the compiler was allowed to
assume for that unit's code.  Which level a set of flags means is asked of gcc
itself (its predefined feature macros), never guessed from the flag names.
The audit (:mod:`hwcapdeb.isa_audit`) weighs this evidence before its
heuristic rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from hwcapdeb.elf_code import CompileUnit
from hwcapdeb.isa_codes import level_table

#: ISA options of a DW_AT_producer string (gcc records them, -grecord-gcc-switches)
_PRODUCER_ISA = re.compile(
    r"(?<!\S)(-march=\S+|-m(?:no-)?(?:avx\S*|sse\S*|ssse3|fma\S*|bmi\S*|popcnt|lzcnt|movbe|"
    r"f16c|aes|pclmul|sha|adx|rdrnd|rdseed|vaes|vpclmulqdq|gfni|xop|abm))(?!\S)"
)
#: gcc macro name -> CPUID feature name, where they differ
_MACRO_FEATURE = {"BMI": "BMI1", "PCLMUL": "PCLMULQDQ", "RDRND": "RDRAND", "SHA": "SHA"}


def producer_isa_flags(producer: str) -> tuple[str, ...]:
    """The ISA options (``-march=haswell``, ``-mavx2``) of one DW_AT_producer string."""
    return tuple(_PRODUCER_ISA.findall(producer))


@cache
def flags_rank(flags: tuple[str, ...], arch_name: str = "amd64") -> int:
    """Level rank the compiler may assume with ``flags``: the compiler itself says.

    -1 when the compiler is missing or rejects the flags (no evidence then).
    """
    from hwcapdeb.errors import HwcapdebError
    from hwcapdeb.profiles import compiler_feature_macros

    if not flags:
        return 0
    try:
        macros = compiler_feature_macros("gcc", flags)
    except HwcapdebError:
        return -1
    table = level_table(arch_name)
    # only level features count: those gcc emits on its own (vectorizing, bit tricks);
    # -march=x86-64-v3 also enables XSAVE, which no compiler emits unasked
    features = {_MACRO_FEATURE.get(m, m) for m in macros} & set(table.rank_of)
    return max((table.feature_rank(f) for f in features), default=0)


def unit_ranks(units: Iterable[CompileUnit], arch_name: str = "amd64") -> tuple[
        tuple[tuple[int, int, int, str], ...], int | None]:
    """((low, high, rank its flags allow, flags shown) per range of a compiled unit, build rank).

    The build rank is the lowest over the compiled units: the object's global
    build flags; None without such units (no debug information, or assembler only).
    """
    ranks: list[tuple[int, int, int, str]] = []
    for cu in units:
        if cu.producer.startswith("GNU AS") or not cu.ranges:
            continue  # assembler units record no -march; they follow their own dispatch
        flags = producer_isa_flags(cu.producer)
        rank = flags_rank(flags, arch_name)
        if rank < 0:
            continue  # flags this compiler does not know: no evidence either way
        march = [f for f in flags if f.startswith("-march=")]
        shown = " ".join(march or list(flags[:4]))
        ranks.extend((lo, hi, rank, shown) for lo, hi in cu.ranges)
    return tuple(ranks), min((r for _, _, r, _ in ranks), default=None)
