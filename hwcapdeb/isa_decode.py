"""The instruction audit's hot loop: decode code with iced-x86, on every core.

One flag word per iced ``Code`` value (built by :mod:`hwcapdeb.isa_codes`) says
what an instruction form is to the audit; the loop here touches one attribute
per instruction (``code``) and keeps the rare instructions whose word is not
zero.  Decoding is the cost (iced builds one Python object per instruction),
so a large object's sections are cut into chunks at function starts and the
chunks decoded by a pool of forked processes, one per core
(:class:`Decoding`): started as soon as the code is read, so that the caller
parses symbols and walks entry blocks (:meth:`Decoding.reach`) meanwhile,
with chunks that shrink towards the end so the workers finish together.

A chunk is decoded as its own stream from its first byte.  Function starts are
instruction boundaries in compiler output, but nothing guarantees it
(hand-written assembly may put a symbol inside an instruction, or data in
code): each chunk reports where its last instruction really ends (the one
crossing the chunk's end is decoded whole), and a chunk whose start is not
that address is decoded again, from there, in the calling process.  The
result is therefore the very stream a single decoder over the whole section
would have produced.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
from collections.abc import Container, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from iced_x86 import Code, Decoder

# Flag word of one Code value (built by isa_codes.scan_table)
RANK_MASK = 0x7
ENDER = 0x8  # ends the straight-line entry block: jcc, jmp, ret, indirect jump
CALL = 0x10  # direct call: an edge of the call graph
JUMP = 0x20  # direct jump: a tail call when it leaves the function
PROBE = 0x40  # cpuid / xgetbv
LEGACY_SSE = 0x80  # an SSE/SSE2 vector instruction in its legacy (non-VEX) encoding

#: below this much code, one process decodes it all (a pool costs ~10-20 ms to start)
PARALLEL_MIN_BYTES = 4 << 20
#: no chunk smaller than this (each costs a task)
_MIN_CHUNK = 1 << 18
#: longer than any x86 instruction (15 bytes): decoding a window this long is
#: the same as decoding with the rest of the section after it
_WINDOW = 64


@dataclass(frozen=True)
class Section:
    """The bytes of one executable section and its load address."""

    address: int
    data: bytes


@dataclass
class Scan:
    """What the loop keeps of one stream of instructions."""

    hits: list[tuple[int, int]]  # (address, Code) of instructions above the baseline
    probes: list[int]  # addresses of cpuid/xgetbv
    legacy_sse: bool  # at least one legacy-encoded SSE/SSE2 vector instruction
    end: int  # where the stream's last instruction ends


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def scan_range(section: Section, lo: int, hi: int, bitness: int, table: Sequence[int]) -> Scan:
    """Decode ``section`` from address ``lo`` up to the instruction that crosses ``hi``."""
    plain = _masks(table)[0]
    wanted = _masks(table)[1]
    base = section.address
    hits: list[tuple[int, int]] = []
    probes: list[int] = []
    legacy = False
    ins = None
    for ins in Decoder(bitness, section.data[lo - base: hi - base], ip=lo):
        if wanted[ins.code]:
            code = ins.code
            word = table[code]
            if word & LEGACY_SSE:
                legacy, wanted = True, plain
            if word & PROBE:
                probes.append(ins.ip)
            if word & RANK_MASK:
                hits.append((ins.ip, code))
    if ins is None:
        return Scan(hits, probes, legacy, lo)
    end = ins.next_ip
    section_end = base + len(section.data)
    if ins.code == Code.INVALID and end >= hi and hi < section_end:
        # cut by the chunk's end (iced then consumes the rest): decode it whole
        start = ins.ip
        window = section.data[start - base: min(section_end, start + _WINDOW) - base]
        whole = next(iter(Decoder(bitness, window, ip=start)))
        end = whole.next_ip
        word = table[whole.code]
        if word & LEGACY_SSE:
            legacy = True
        if word & PROBE:
            probes.append(start)
        if word & RANK_MASK:
            hits.append((start, whole.code))
    return Scan(hits, probes, legacy, end)


def entry_block(section: Section, start: int, end: int, bitness: int,
                table: Sequence[int]) -> tuple[int, list[int]]:
    """End of the straight-line block at ``start`` (in ``section``) and its direct targets.

    ``end`` is where the function ends; entry blocks are short: a bounded
    window, no copy of the whole section.
    """
    offset = start - section.address
    data = section.data[offset: offset + min(end - start, 512)]
    targets: list[int] = []
    for ins in Decoder(bitness, data, ip=start):
        word = table[ins.code]
        if word & (CALL | JUMP):
            targets.append(ins.near_branch_target)
        if word & ENDER:
            return ins.ip, targets
    return start + len(data), targets  # no end seen in the window: claim no more


_MASK_CACHE: dict[int, tuple[list[int], list[int]]] = {}


def _masks(table: Sequence[int]) -> tuple[list[int], list[int]]:
    """(plain, wanted): the words the loop keeps without and with the legacy-SSE look-out."""
    key = id(table)
    if key not in _MASK_CACHE:
        _MASK_CACHE[key] = ([w & (RANK_MASK | PROBE) for w in table],
                            [w & (RANK_MASK | PROBE | LEGACY_SSE) for w in table])
    return _MASK_CACHE[key]


def chunks(sections: Sequence[Section], starts: Sequence[int],
           jobs: int) -> list[tuple[int, int, int]]:
    """(section index, lo, hi) ranges cut at function ``starts``, large first, then smaller.

    Each is about what is left over ``2 * jobs`` (guided scheduling): few
    tasks, and the last ones so small that the workers finish together
    (equal chunks left one core idle for half a chunk on average).
    """
    remaining = sum(len(s.data) for s in sections)
    result = []
    for index, section in enumerate(sections):
        lo, end = section.address, section.address + len(section.data)
        while lo < end:
            size = max(remaining // (2 * max(jobs, 1)), _MIN_CHUNK)
            cut = bisect.bisect_left(starts, lo + size)
            hi = starts[cut] if cut < len(starts) and starts[cut] < end else end
            result.append((index, lo, hi))
            remaining -= hi - lo
            lo = hi
    return result


# The job of the forked workers: set before the pool starts, inherited by fork
# (the sections' bytes are never pickled).
_JOB: tuple[Sequence[Section], int, Sequence[int]] | None = None


def _scan_chunk(index: int, lo: int, hi: int) -> Scan:
    """One chunk's scan, in a worker."""
    assert _JOB is not None
    sections, bitness, table = _JOB
    return scan_range(sections[index], lo, hi, bitness, table)


class Decoding:
    """One object's scan, started as early as its code is known and collected at the end.

    :meth:`start` forks the workers and hands them the chunks as soon as the
    code is read; the caller reads the symbols and walks entry blocks
    (:meth:`reach`) meanwhile, and :meth:`result` waits and merges.  Small
    objects, one core, or no fork: nothing starts, and :meth:`result` decodes
    in this process.
    """

    def __init__(self, sections: Sequence[Section], bitness: int, table: Sequence[int],
                 jobs: int | None = None) -> None:
        self.sections = list(sections)
        self.bitness = bitness
        self.table = table
        self.jobs = default_jobs() if jobs is None else jobs
        self._by_address = sorted(self.sections, key=lambda s: s.address)
        self._bases = [s.address for s in self._by_address]
        self._pool: ProcessPoolExecutor | None = None
        self._parts: list[tuple[int, int, int]] = []
        self._chunks: list[Future[Scan]] = []

    def __enter__(self) -> Decoding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, cuts: Sequence[int], *, more_cuts_coming: bool = False) -> bool:
        """Hand the chunks, cut at sorted ``cuts`` (function starts), to forked workers.

        False when not started: the code is too small, one core, no fork, or
        (with ``more_cuts_coming``) ``cuts`` too sparse to give every worker
        its share (call again with more).
        """
        total = sum(len(s.data) for s in self.sections)
        if self._pool is not None or self.jobs < 2 or total < PARALLEL_MIN_BYTES:
            return self._pool is not None
        parts = chunks(self.sections, cuts, self.jobs)
        first = max(total // (2 * self.jobs), _MIN_CHUNK)  # the largest chunk's size
        if more_cuts_coming and max(hi - lo for _, lo, hi in parts) > 2 * first:
            return False  # e.g. no .eh_frame_hdr: wait for the symbols' starts
        started = _fork_pool(self.sections, self.bitness, self.table, parts,
                             min(self.jobs, len(parts)))
        if started is None:
            return False
        self._pool, self._chunks = started
        self._parts = parts
        return True

    def entry_block(self, start: int, end: int) -> tuple[int, list[int]]:
        """:func:`entry_block` of the function at ``start`` (ending at ``end``), in this process."""
        index = bisect.bisect_right(self._bases, start) - 1
        if index < 0:
            return start, []
        section = self._by_address[index]
        if start >= section.address + len(section.data):
            return start, []
        return entry_block(section, start, end, self.bitness, self.table)

    def reach(self, roots: Iterable[int], starts: Sequence[int],
              start_set: Container[int]) -> tuple[set[int], dict[int, int]]:
        """The functions ``roots`` reach through direct calls and jumps in entry blocks,
        and where each entry block decoded on the way ends (start -> block end).

        ``starts``: every function start, sorted (a function ends at the next one
        or at its section's end), and ``start_set`` the same as a set.  A call or
        jump counts when it targets a function's start other than its own.  The
        blocks are :func:`entry_block`'s, decoded in one loop: a large library has
        tens of thousands of them, a few instructions each, and a call apiece
        would cost as much as their decoding.
        """
        bitness, table, bases = self.bitness, self.table, self._bases
        flow = [w & (CALL | JUMP | ENDER) for w in table]
        spans = [(s.address, s.address + len(s.data), s.data) for s in self._by_address]
        right = bisect.bisect_right
        ends: dict[int, int] = {}
        reached: set[int] = set()
        todo = list(roots)
        while todo:
            start = todo.pop()
            if start in reached:
                continue
            reached.add(start)
            k = right(bases, start) - 1
            if k < 0 or start >= spans[k][1]:
                ends[start] = start
                continue
            lo, hi, data = spans[k]
            after = right(starts, start)
            end = min(starts[after], hi) if after < len(starts) else hi
            window = data[start - lo: start - lo + min(end - start, 512)]
            targets: list[int] = []
            block_end = start + len(window)  # no end seen in the window: claim no more
            for ins in Decoder(bitness, window, ip=start):
                if flow[ins.code]:  # most instructions: one look-up, no bit tests
                    word = table[ins.code]
                    if word & (CALL | JUMP):
                        targets.append(ins.near_branch_target)
                    if word & ENDER:
                        block_end = ins.ip
                        break
            ends[start] = block_end
            todo.extend(t for t in targets if t in start_set and t != start)
        return reached, ends

    def result(self) -> Scan:
        """The merged scan: the single decoder's stream over every section."""
        results: list[Scan] = []
        if self._pool is not None:
            try:
                results = [f.result() for f in self._chunks]
            except (OSError, BrokenProcessPool):
                results = []
            self.close()
        parts = self._parts
        if not results:  # small, one core, or no pool to be had
            parts = [(i, s.address, s.address + len(s.data)) for i, s in enumerate(self.sections)]
            results = [scan_range(s, lo, hi, self.bitness, self.table)
                       for s, (_, lo, hi) in zip(self.sections, parts, strict=True)]
        return _merge(self.sections, self.bitness, self.table, parts, results)

    def close(self) -> None:
        """Stop the workers (the next fork must not inherit this pool's thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _merge(sections: Sequence[Section], bitness: int, table: Sequence[int],
           parts: Sequence[tuple[int, int, int]], results: Sequence[Scan]) -> Scan:
    """The chunks' scans as one; a chunk that does not start where the last one ended is
    decoded again from there."""
    merged = Scan([], [], False, 0)
    previous: tuple[int, int] | None = None  # (section index, end) of the last chunk
    for (index, lo, hi), result in zip(parts, results, strict=True):
        if previous is not None and previous[0] == index and previous[1] != lo:
            # the last chunk's final instruction did not end where this chunk starts
            result = scan_range(sections[index], previous[1], max(hi, previous[1]), bitness,
                                table)
        merged.hits.extend(result.hits)
        merged.probes.extend(result.probes)
        merged.legacy_sse = merged.legacy_sse or result.legacy_sse
        merged.end = result.end
        previous = (index, result.end)
    return merged


def scan(sections: Sequence[Section], bitness: int, table: Sequence[int], starts: Sequence[int],
         jobs: int | None = None) -> Scan:
    """Decode every section, in parallel when there is enough code and more than one core.

    ``starts`` are sorted function start addresses (where chunks may be cut).
    The result's ``end`` is meaningless for several sections.
    """
    with Decoding(sections, bitness, table, jobs) as decoding:
        decoding.start(starts)
        return decoding.result()


def _fork_pool(sections: Sequence[Section], bitness: int, table: Sequence[int],
               parts: Sequence[tuple[int, int, int]], workers: int
               ) -> tuple[ProcessPoolExecutor, list[Future[Scan]]] | None:
    """``workers`` forked processes, given ``parts``; None when no pool can be had."""
    global _JOB
    if multiprocessing.current_process().daemon:
        return None  # a daemonic worker of someone else's pool may not have children
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None
    _JOB = (sections, bitness, table)
    pool = None
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        # the first submit forks every worker: they inherit _JOB as it is now
        return pool, [pool.submit(_scan_chunk, *part) for part in parts]
    except (OSError, BrokenProcessPool):
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        return None
    finally:
        _JOB = None
