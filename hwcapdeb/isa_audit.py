"""Instruction audit: which CPU features an object's code needs, and where.

The audit decodes every executable section with iced-x86, whose instruction
table knows each instruction's CPUID features (``Instruction.cpuid_features``),
maps the features to glibc-hwcaps levels and attributes every instruction
above the baseline to a function (``.symtab``/``.dynsym`` symbols, completed by
the ``.eh_frame_hdr`` function table of stripped objects).

The parts: :mod:`hwcapdeb.isa_codes` says what each iced ``Code`` is (its
features, level rank and the hot loop's flag word), :mod:`hwcapdeb.isa_decode`
decodes (on every core), :mod:`hwcapdeb.isa_producer` reads gcc's flags from
DWARF, and this module attributes the findings to functions and judges them.

Speed: iced decodes in Rust; the Python loop touches one attribute (``code``)
per instruction and looks it up in a table precomputed over every ``Code``
value, so the common baseline instruction costs a list index and nothing more.
A large object's code is cut at function starts and decoded on every core
(:mod:`hwcapdeb.isa_decode`, which proves the chunks' streams are the
single-decoder stream); the workers start as soon as the code is read, and
this process reads the symbols and does every step that needs no scan (rule
4's walk, IFUNC targets, DWARF) while they decode.

Dispatched or leaked?  Code above a level is harmless if nothing executes it
on a CPU below that level.  Proving that statically is undecidable; the
heuristic below is sound enough for compiler output and hand-written
dispatch (glibc IFUNCs, OpenSSL's capability vector, x265/dav1d pointer
tables, GCC target_clones), and says which rule applied:

1. a function whose symbol carries an ISA token (``foo.avx2``,
   ``__memmove_avx_unaligned``, ``foo.arch_x86_64_v3``, ``sha256_block_avx2``)
   is a dispatch target: compilers and assembler authors name clones so;
2. a function selected by an IFUNC resolver (its address is taken by the
   resolver's code) is dispatched;
3. an object with *no* run-time CPU detection at all (no ``cpuid``/``xgetbv``
   instruction, no IFUNC symbol, no import of ``__cpu_model`` and friends)
   cannot dispatch: any other code above the level is a leak (the classic
   "baseline built with -march=native");
4. in an object that does detect the CPU, code is a leak only if it runs
   unconditionally: it lies in the entry block (before the first conditional
   branch) of an exported function, of an ELF constructor, or of a function
   such an entry block calls directly (followed transitively).  Code behind a
   branch, or reached only through pointers, is taken as dispatched;
5. except when the object has not one SSE instruction in the legacy (non-VEX)
   encoding yet VEX code in functions callers enter directly: the compiler was
   told -mavx or more for everything (baseline code has thousands of legacy
   ``movdqu``/``pxor``: 1153 at least across a Debian system's libraries), so
   AVX-level code outside rules 1 and 2 is a leak.

With debug information, gcc's DW_AT_producer flags decide before rules 3-5:
when every compiled unit assumed more than the level, the code those flags
explain is a leak.

``TZCNT`` (``rep bsf``, which runs as ``BSF`` on older CPUs and which GCC emits
in baseline code on purpose), ``ENDBR64``, multi-byte ``NOP``s, ``PREFETCHW``
and other hint-space encodings never fault and never count.  ``LZCNT`` does
count: it silently computes ``BSR`` on old CPUs.
"""

from __future__ import annotations

import bisect
import gc
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iced_x86 import Decoder

from hwcapdeb import isa_decode
from hwcapdeb.elf_code import CodeFacts, CodeSection, read_code
from hwcapdeb.isa_codes import code_info, level_table, scan_table
from hwcapdeb.isa_producer import unit_ranks

#: Imports that mean "this object asks the CPU at run time".
PROBE_IMPORTS = frozenset({
    "__cpu_model", "__cpu_indicator_init", "__cpu_features2", "__get_cpu_features",
    "_dl_x86_get_cpu_features", "__x86_get_cpuid_feature_leaf", "__builtin_cpu_supports",
})

_ISA_TOKEN = re.compile(
    r"^(avx|sse[34]|ssse3|evex|fma|bmi|f16c|lzcnt|movbe|popcnt|aesni|pclmul|vpclmul|vaes|gfni|"
    r"shaext|sha_?ni|arch_[a-z0-9_]+|haswell|skylake|skx|icelake|icl|znver|x86_64_v[234]|x86-64-v[234]|"
    r"rtm|xop|avxvnni|amx)",
    re.IGNORECASE,
)

@dataclass
class FunctionAudit:
    """One function that contains instructions above the baseline."""

    name: str
    start: int
    end: int
    exported: bool = False
    hits: list[tuple[int, int]] = field(default_factory=list)  # (address, Code), address order
    entry_end: int = 0  # first block-ending instruction: hits before it run on every call
    dispatch_reason: str | None = None  # rules 1 and 2 of the module docstring

    def max_rank(self, arch_name: str = "amd64") -> int:
        return max((code_info(c, arch_name).rank for _, c in self.hits), default=0)



@dataclass(frozen=True)
class CodeAboveLevel:
    """Code above a level, with the verdict and its reason."""

    function: str
    address: int
    mnemonic: str
    features: tuple[str, ...]
    rank: int
    dispatched: bool
    reason: str


@dataclass
class IsaAudit:
    """The instruction audit of one object; level-independent until asked about a level."""

    path: Path
    arch: str
    code_size: int
    decoded_bytes: int
    functions: list[FunctionAudit]
    #: why this object is taken to detect the CPU at run time (empty: it cannot dispatch)
    dispatch_evidence: list[str]
    #: start addresses of functions that run unconditionally (rule 4)
    unconditional: set[int]
    #: DW_AT_producer strings of compile units, when debug info was at hand
    producers: tuple[str, ...] = ()
    #: (low, high, rank its flags allow, flags) per compiled (not assembled) unit
    unit_ranks: tuple[tuple[int, int, int, str], ...] = ()
    #: the lowest rank over the compiled units: the object's global build flags
    build_rank: int | None = None
    #: rule 5: VEX code where any caller enters and no legacy-encoded SSE anywhere
    avx_throughout: bool = False

    @property
    def features(self) -> frozenset[str]:
        """Every counted feature the code uses anywhere, dispatched or not."""
        return frozenset(
            f for fn in self.functions for _, c in fn.hits
            for f in code_info(c, self.arch).features
        )

    @property
    def max_rank(self) -> int:
        return max((fn.max_rank(self.arch) for fn in self.functions), default=0)

    def findings(self, rank: int) -> list[CodeAboveLevel]:
        """Every function with code above ``rank``, each judged leaked or dispatched.

        A leak names only the instructions its rule convicts (a -march=x86-64-v3
        unit's AVX2, not the AVX-512 its target attributes dispatch).
        """
        table = level_table(self.arch)
        result = []
        for fn in self.functions:
            above = [(a, c) for a, c in fn.hits if code_info(c, self.arch).rank > rank]
            if not above:
                continue
            dispatched, reason, convicted = self._judge(fn, rank, above)
            shown = above if dispatched else convicted
            address, code = shown[0]
            top = max(code_info(c, self.arch).rank for _, c in shown)
            features = _features_above(shown, rank, self.arch)
            result.append(CodeAboveLevel(
                function=fn.name,
                address=address,
                mnemonic=code_info(code, self.arch).mnemonic,
                features=features,
                rank=top,
                dispatched=dispatched,
                reason=f"{'/'.join(features)} {table.level_name(top)}: {reason}",
            ))
        return result

    def leaks(self, rank: int) -> list[CodeAboveLevel]:
        return [f for f in self.findings(rank) if not f.dispatched]

    def unguarded_features(self, rank: int) -> frozenset[str]:
        """Features of code above ``rank`` that runs without a dispatch (the leaks)."""
        return frozenset(f for leak in self.leaks(rank) for f in leak.features)

    def _judge(
        self, fn: FunctionAudit, rank: int, above: list[tuple[int, int]]
    ) -> tuple[bool, str, list[tuple[int, int]]]:
        """(dispatched, why, the instructions convicted if not)."""
        if fn.dispatch_reason:
            return True, fn.dispatch_reason, []

        def upto(cap: int) -> list[tuple[int, int]]:
            return [(a, c) for a, c in above if code_info(c, self.arch).rank <= cap]

        # DWARF: when *every* compiled unit assumed more than the level (the global flags:
        # "baseline built with -march=native"), code those flags explain cannot be dispatched;
        # code above even the flags came from intrinsics or target attributes.  Some units
        # above the level is the per-file dispatch pattern (-mavx2 for foo_avx2.c): heuristic.
        # Only code up to the global flags is convicted: a unit built with more (-mavx for
        # the AVX kernel of a -march=x86-64-v2 build) is that per-file pattern above them.
        if self.build_rank is not None and self.build_rank > rank:
            for low, high, unit_rank, flags in self.unit_ranks:
                cap = min(unit_rank, self.build_rank)
                if low <= fn.start < high and upto(cap):
                    return (False, f"its compile unit was built with {flags} (DW_AT_producer)",
                            upto(cap))
        if not self.dispatch_evidence:
            return (False, "nothing in this object detects the CPU (no cpuid, IFUNC or "
                    "__cpu_model)", above)
        avx_rank = level_table(self.arch).feature_rank("AVX")
        if self.avx_throughout and upto(avx_rank):
            return False, ("no SSE instruction in this object has the legacy encoding: it was "
                           "compiled for AVX throughout (-mavx, -march=x86-64-v3 or higher)"), \
                upto(avx_rank)
        in_entry = [(a, c) for a, c in above if a < fn.entry_end]
        if fn.start in self.unconditional and in_entry:
            how = "exported" if fn.exported else "called unconditionally"
            return False, f"runs before any branch of {how} function {fn.name}", in_entry
        evidence = ", ".join(self.dispatch_evidence)
        return (True, f"behind a branch or pointer in an object that detects the CPU "
                f"({evidence})", [])


def _features_above(hits: list[tuple[int, int]], rank: int, arch_name: str) -> tuple[str, ...]:
    table = level_table(arch_name)
    names = {n for _, c in hits for n in code_info(c, arch_name).features
             if table.feature_rank(n) > rank}
    return tuple(sorted(names))


#: crypto tokens name an algorithm, so they excuse a function only with its extension
_CRYPTO_TOKENS = {"aes": ("AES", "VAES"), "sha": ("SHA",), "gcm": ("PCLMULQDQ", "VPCLMULQDQ"),
                  "clmul": ("PCLMULQDQ", "VPCLMULQDQ"), "crc32": ("SSE4_2",)}
#: x86 vector function ABI (_ZGV<isa><mask>...): b SSE, c AVX, d AVX2, e AVX-512; the
#: caller picks the variant for the ISA it was compiled for
_VECTOR_ABI = re.compile(r"^_ZGV([bcde])[NM]")
#: a function taking or returning __m256/__m512 is only callable from code built for them
_VECTOR_TYPE = re.compile(r"(?:^|[^a-z])[mM](256|512)")


def isa_token(name: str, features: Iterable[str] = ()) -> str | None:
    """The ISA its name gives a function (``foo.avx2`` -> ``avx2``), if any.

    ``features`` (the function's counted CPUID features) lets algorithm names
    (``aes``, ``sha``) count only when the function uses that very extension.
    """
    vector = _VECTOR_ABI.match(name)
    if vector:
        return f"vector ABI variant {vector.group(0)}"
    raw = [t for t in re.split(r"[._]+", name) if t]
    windows = ["_".join(raw[i:i + n]) for i in range(len(raw)) for n in (4, 3, 2, 1)]
    camel = re.findall(r"[A-Z]?[a-z]+\d*|[A-Z]+\d*(?![a-z])", name)
    used = set(features)
    for token in [*windows, *(t.lower() for t in camel)]:
        isa = _ISA_TOKEN.match(token)
        if isa:
            word = isa.group(0)
            return word if "_" in word else re.split(r"[_]", token)[0]
        lowered = token.lower()
        for prefix, needs in _CRYPTO_TOKENS.items():
            if lowered.startswith(prefix) and used.intersection(needs):
                return f"{prefix} with {'/'.join(sorted(used.intersection(needs)))}"
    typed = _VECTOR_TYPE.search(name)
    if typed:
        return f"__m{typed.group(1)} interface"
    return None


class _Functions:
    """Where the object's functions start and end, and their names.

    Starts are symbols, the unwind table's entries (static functions of
    stripped objects) and section starts; a function ends at the next start
    or at its section's end.
    """

    def __init__(self, facts: CodeFacts) -> None:
        names: dict[int, tuple[str, bool]] = {}
        for fn in facts.functions:
            old = names.get(fn.start)
            # prefer an exported name, then the shortest (aliases: __foo vs foo)
            if old is None or (fn.exported and not old[1]) or (
                fn.exported == old[1] and len(fn.name) < len(old[0])
            ):
                names[fn.start] = (fn.name, fn.exported)
        self.names = names
        self.starts = sorted({*names, *facts.unwind_starts, *(s.address for s in facts.sections)})
        self.start_set = set(self.starts)
        self._sections = sorted((s.address, s.address + len(s.data)) for s in facts.sections)

    def index(self, address: int) -> int:
        """Index in ``starts`` of the function holding ``address`` (-1: before them all)."""
        return bisect.bisect_right(self.starts, address) - 1

    def end(self, index: int) -> int:
        starts = self.starts
        start = starts[index]
        nxt = starts[index + 1] if index + 1 < len(starts) else 2**64
        for lo, hi in self._sections:
            if lo <= start < hi:
                return min(nxt, hi)
        return nxt

    def name(self, index: int) -> tuple[str, bool]:
        """(name, exported) of the function at ``index``."""
        starts, names = self.starts, self.names
        start = starts[index]
        if start in names:
            return names[start]
        # a static function of a stripped object: name it after the nearest symbol
        for j in range(index - 1, max(index - 64, -1), -1):
            if starts[j] in names:
                return f"{names[starts[j]][0]}+0x{start - starts[j]:x}", False
        return f"fun_{start:x}", False


def audit(path: Path, *, arch_name: str = "amd64", debug_file: Path | None = None,
          facts: CodeFacts | None = None, jobs: int | None = None) -> IsaAudit:
    """Decode ``path``'s code and attribute every above-baseline instruction to a function.

    ``jobs``: processes that decode a large object's code (default: every core).
    """
    # the audit of a large library makes some 10^5 objects (symbols, entry blocks) that
    # hold no cycles; the cyclic collector's passes over them find nothing and cost a
    # tenth of the parent's time (measured on libLLVM: 0.5 s -> 0.4 s of CPU)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _audit(path, arch_name, debug_file, facts, jobs)
    finally:
        if collecting:
            gc.enable()


def _audit(path: Path, arch_name: str, debug_file: Path | None, facts: CodeFacts | None,
           jobs: int | None) -> IsaAudit:
    table = scan_table(arch_name)
    decoding: isa_decode.Decoding | None = None

    def start_decoding(sections: Sequence[CodeSection], unwind: Sequence[int],
                       elf_class: int) -> None:
        # the workers decode while this process reads the symbols: cut at the unwind
        # table's function starts (sorted), which are known already
        nonlocal decoding
        decoding = isa_decode.Decoding([isa_decode.Section(s.address, s.data) for s in sections],
                                       elf_class, table, jobs)
        decoding.start(unwind, more_cuts_coming=True)

    try:
        if facts is None:
            facts = read_code(path, debug_file=debug_file, on_code=start_decoding)
        else:
            start_decoding(facts.sections, facts.unwind_starts, facts.elf_class)
        assert decoding is not None
        functions = _Functions(facts)
        # rule 4's roots: exported functions and constructors
        roots = {f.start for f in facts.functions if f.exported and f.kind == "STT_FUNC"}
        roots |= set(facts.init_array)
        roots &= functions.start_set
        decoding.start(functions.starts)  # if the unwind table was too sparse to cut at

        # what needs no scan, while the workers decode: IFUNCs and their targets
        # (rule 2), probing imports (rule 3), rule 4's walk, the compiler's flags
        ifuncs = {f.start: f.name for f in facts.functions if f.kind == "STT_GNU_IFUNC"}
        resolver_targets = _resolver_targets(
            facts, {start: functions.end(functions.index(start)) for start in ifuncs}, ifuncs,
            functions.start_set)
        static_evidence = []
        if ifuncs:
            static_evidence.append(f"{len(ifuncs)} IFUNC resolver(s)")
        probe_imports = sorted(facts.imports & PROBE_IMPORTS)
        if probe_imports:
            static_evidence.append(f"imports {', '.join(probe_imports)}")
        # rule 4: functions that run unconditionally
        unconditional, entry_ends = decoding.reach(roots, functions.starts,
                                                   functions.start_set)
        producers = tuple(sorted({cu.producer for cu in facts.compile_units}))
        ranks, build_rank = unit_ranks(facts.compile_units, arch_name)
        code_size, decoded = facts.code_size, sum(len(s.data) for s in facts.sections)
        # freed now, while the workers decode, rather than after them (libLLVM: 37 000
        # symbols, 10 ms)
        del facts

        scanned = decoding.result()
    finally:
        if decoding is not None:
            decoding.close()

    # functions with above-baseline code
    audited: dict[int, FunctionAudit] = {}
    for address, code in scanned.hits:
        index = functions.index(address)
        if index < 0:
            continue
        fn = audited.get(index)
        if fn is None:
            name, exported = functions.name(index)
            start = functions.starts[index]
            end = functions.end(index)
            if start not in entry_ends:
                entry_ends[start] = decoding.entry_block(start, end)[0]
            fn = audited[index] = FunctionAudit(name, start, end, exported,
                                                entry_end=entry_ends[start])
        fn.hits.append((address, code))

    # dispatch evidence of the object (rule 3)
    evidence = []
    if scanned.probes:
        probing = len({functions.index(p) for p in scanned.probes})
        evidence.append(f"cpuid/xgetbv in {probing} function(s)")
    evidence.extend(static_evidence)

    # rules 1 and 2: named clones and IFUNC-selected functions
    for fn in audited.values():
        used = {n for _, c in fn.hits for n in code_info(c, arch_name).features}
        token = isa_token(fn.name, used) if fn.start in functions.names else None
        if token:
            fn.dispatch_reason = f"dispatch target named for its ISA ({token})"
        elif fn.start in resolver_targets:
            fn.dispatch_reason = f"selected by IFUNC resolver {resolver_targets[fn.start]}"

    # rule 5: no legacy-encoded SSE anywhere, yet VEX code in functions any caller
    # enters directly: the compiler was told -mavx or more for the whole object
    vex_everywhere = not scanned.legacy_sse and any(
        not fn.dispatch_reason and (fn.exported or fn.start in unconditional)
        and any(code_info(c, arch_name).vex for _, c in fn.hits)
        for fn in audited.values()
    )

    return IsaAudit(
        path=path,
        arch=arch_name,
        code_size=code_size,
        decoded_bytes=decoded,
        functions=sorted(audited.values(), key=lambda f: f.start),
        dispatch_evidence=evidence,
        unconditional=unconditional,
        producers=producers,
        unit_ranks=ranks,
        build_rank=build_rank,
        avx_throughout=vex_everywhere,
    )


def _resolver_targets(facts: CodeFacts, resolvers: dict[int, int], names: dict[int, str],
                      start_set: set[int]) -> dict[int, str]:
    """Function starts whose address an IFUNC resolver computes (``lea f(%rip)``).

    ``resolvers``: start -> end of each resolver; ``names``: start -> its name.
    """
    result: dict[int, str] = {}
    for resolver, end in sorted(resolvers.items()):
        for section in facts.sections:
            lo = section.address
            if not lo <= resolver < lo + len(section.data):
                continue
            # the resolver's own code, bounded by the next function start
            offset = resolver - lo
            length = min(end - resolver, 16384)
            decoder = Decoder(facts.elf_class, section.data[offset: offset + length], ip=resolver)
            for ins in decoder:
                if ins.is_ip_rel_memory_operand:
                    target = ins.ip_rel_memory_address
                    if target in start_set:
                        result.setdefault(target, names.get(resolver, f"0x{resolver:x}"))
    return result
