"""The instruction audit on real gcc output and on this machine's own libraries."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hwcapdeb import isa_decode
from hwcapdeb.elf_code import debug_file_for, read_code, shared_objects
from hwcapdeb.isa_audit import audit, isa_token
from hwcapdeb.isa_codes import scan_table
from hwcapdeb.isa_producer import flags_rank, producer_isa_flags
from tests.elfbuild import compile_library

CTZ_CLZ = "int hw_ctz(unsigned x) { return __builtin_ctz(x); }\n" \
          "int hw_clz(unsigned x) { return __builtin_clz(x); }\n"
CPUID_FN = "#include <cpuid.h>\n" \
           "int hw_has_avx2(void) { unsigned a, b, c, d; __cpuid_count(7, 0, a, b, c, d);" \
           " return (b >> 5) & 1; }\n"
#: one legacy-encoded SSE instruction, whatever -march says: hides rule 5's evidence
LEGACY_ASM = '__asm__(".text\\nhw_legacy_stub:\\n\\tpxor %xmm1, %xmm1\\n\\tret\\n");\n'


def multiarch_dir() -> Path:
    out = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                         text=True, check=True).stdout.strip()
    return Path("/usr/lib") / out


def test_tzcnt_is_not_a_leak_but_lzcnt_is(tmp_path: Path) -> None:
    plain = compile_library(tmp_path / "plain.so", source=CTZ_CLZ)
    objdump = subprocess.run(["objdump", "-d", str(plain)], capture_output=True, text=True).stdout
    assert "tzcnt" in objdump  # GCC's baseline 'rep bsf': runs as BSF on any x86-64
    assert audit(plain).findings(0) == []
    lz = compile_library(tmp_path / "lz.so", source=CTZ_CLZ, cflags=["-march=x86-64", "-mlzcnt"])
    (leak,) = audit(lz).leaks(0)
    assert (leak.function, leak.mnemonic, leak.features) == ("hw_clz", "lzcnt", ("LZCNT",))


def test_march_v3_baseline_leaks_and_names_the_function(tmp_path: Path) -> None:
    lib = compile_library(tmp_path / "v3.so", cflags=["-march=x86-64-v3"])
    result = audit(lib)
    assert result.dispatch_evidence == []
    leaked = {f.function for f in result.leaks(0)}
    assert leaked == {"hw_dot", "hw_saxpy"}
    assert result.leaks(2) == []  # nothing above x86-64-v3: fine in the v3 directory


def test_variant_code_is_judged_against_its_level(tmp_path: Path) -> None:
    lib = compile_library(tmp_path / "v4.so", variant="x86-64-v4")
    result = audit(lib)
    assert result.max_rank == 3
    assert result.leaks(3) == []
    assert {f.function for f in result.leaks(2)} >= {"hw_saxpy"}  # AVX-512 in a v3 directory


def test_avx_throughout_without_debug_info(tmp_path: Path) -> None:
    # a cpuid somewhere, but not one SSE instruction in the legacy encoding: -mavx or more
    lib = compile_library(tmp_path / "v3c.so", cflags=["-march=x86-64-v3"], extra_source=CPUID_FN)
    result = audit(lib)
    assert result.dispatch_evidence and result.avx_throughout
    leaks = result.leaks(0)
    assert {f.function for f in leaks} == {"hw_dot", "hw_saxpy"}
    assert "compiled for AVX throughout" in leaks[0].reason
    assert result.leaks(2) == []  # the same file is fine as a v3 variant


def test_dwarf_producer_is_exact_evidence(tmp_path: Path) -> None:
    # a cpuid and a legacy SSE instruction make the heuristic give the benefit of the doubt;
    # the producer string says the whole compile unit assumed x86-64-v3
    source_flags = ["-march=x86-64-v3", "-g"]
    lib = compile_library(tmp_path / "g.so", cflags=source_flags,
                          extra_source=CPUID_FN + LEGACY_ASM)
    assert audit(lib, debug_file=None).avx_throughout is False
    result = audit(lib)
    assert result.dispatch_evidence
    leaks = result.leaks(0)
    assert leaks and all("DW_AT_producer" in f.reason for f in leaks)
    assert "-march=x86-64-v3" in leaks[0].reason


def test_per_file_flags_are_the_dispatch_pattern(tmp_path: Path) -> None:
    """One unit built with -mavx2 and reached through a pointer: dispatched, even with -g."""
    (tmp_path / "fast.c").write_text(
        "int fast_sum(const int *a, int n) { int s = 0;"
        " for (int i = 0; i < n; i++) s += a[i] * a[i]; return s; }\n")
    (tmp_path / "api.c").write_text(
        "int fast_sum(const int *a, int n);\n"
        "static int plain_sum(const int *a, int n) { int s = 0;"
        " for (int i = 0; i < n; i++) s += a[i]; return s; }\n"
        "static int (*impl)(const int *, int);\n"
        "int hw_sum(const int *a, int n) { if (!impl) impl = __builtin_cpu_supports(\"avx2\")"
        " ? fast_sum : plain_sum; return impl(a, n); }\n")
    objects = []
    for name, flags in (("fast", ["-mavx2"]), ("api", [])):
        obj = tmp_path / f"{name}.o"
        subprocess.run(["gcc", "-O3", "-g", "-fPIC", "-c", *flags, str(tmp_path / f"{name}.c"),
                        "-o", str(obj)], check=True)
        objects.append(str(obj))
    lib = tmp_path / "libsplit.so"
    subprocess.run(["gcc", "-shared", "-o", str(lib), *objects], check=True)
    result = audit(lib)
    assert result.build_rank == 0  # the global flags are baseline
    judged = result.findings(0)
    assert any(f.function == "fast_sum" for f in judged)
    assert result.leaks(0) == []


def test_separate_debug_file_found_by_build_id(tmp_path: Path) -> None:
    lib = compile_library(tmp_path / "s.so", cflags=["-march=x86-64-v3", "-g"],
                          extra_source=CPUID_FN + LEGACY_ASM)
    build_id = read_code(lib).build_id
    assert build_id
    root = tmp_path / "dbgsym"
    debug = root / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
    subprocess.run(["strip", "--strip-debug", str(lib)], check=True)
    assert debug_file_for(build_id, [root]) == debug
    assert audit(lib).leaks(0) == []  # stripped: only the heuristic, which is fooled here
    found = audit(lib, debug_file=debug).leaks(0)
    assert found and "DW_AT_producer" in found[0].reason


def test_isa_tokens() -> None:
    assert isa_token("hw_tc_sum.avx2") == "avx2"
    assert isa_token("foo.arch_x86_64_v3") == "arch_x86_64_v3"
    assert isa_token("__memmove_avx512_unaligned_erms") == "avx512"
    assert isa_token("_ZGVdN8v_expf")  # x86 vector function ABI, AVX2 variant
    assert isa_token("_ITM_RM256")  # takes __m256: callable only from AVX code
    assert isa_token("aes_encrypt", ["AES"]) and not isa_token("aes_encrypt", ["AVX2"])
    assert isa_token("hw_dot") is None and isa_token("sum_sse2") is None
    assert producer_isa_flags("GNU C17 12.2.0 -march=x86-64-v3 -mtune=generic -O2 -mavx2") == (
        "-march=x86-64-v3", "-mavx2")


def test_flags_rank_asks_the_compiler() -> None:
    assert flags_rank(("-march=x86-64",)) == 0
    assert flags_rank(("-march=x86-64-v2",)) == 1
    assert flags_rank(("-march=x86-64-v3",)) == 2  # its XSAVE does not make it "beyond"
    assert flags_rank(("-march=x86-64-v4",)) == 3
    assert flags_rank(("-march=haswell",)) == 2
    assert flags_rank(("-march=no-such-cpu",)) == -1  # no evidence, not an error


SAMPLE = ("libc.so.6", "libm.so.6", "libz.so.1", "libstdc++.so.6", "libcrypto.so.3")


@pytest.mark.parametrize("name", SAMPLE)
def test_debian_libraries_do_not_leak(name: str) -> None:
    path = multiarch_dir() / name
    if not path.exists():
        pytest.skip(f"{name} is not installed")
    result = audit(path.resolve())
    assert result.leaks(0) == [], [f"{f.mnemonic} in {f.function}: {f.reason}"
                                   for f in result.leaks(0)[:5]]
    if name in ("libc.so.6", "libm.so.6"):
        # the audit does see glibc's AVX2/AVX-512 code: it is judged dispatched, not missed
        judged = result.findings(0)
        assert any(f.rank >= 2 for f in judged) and all(f.dispatched for f in judged)


def test_every_system_library_is_free_of_leaks() -> None:
    """Debian's own baseline builds: any leak here is a false positive of the heuristic."""
    root = multiarch_dir()
    leaks: list[str] = []
    files = [p for p in shared_objects(root) if p.parent == root]
    for path in files:
        result = audit(path)
        leaks.extend(f"{path.name}: {f.mnemonic} in {f.function} ({f.reason})"
                     for f in result.leaks(0))
    assert files
    assert leaks == []


# --- the parallel decoder (hwcapdeb.isa_decode) ------------------------------


def _libc_text() -> tuple[list[isa_decode.Section], list[int], int]:
    facts = read_code((multiarch_dir() / "libc.so.6").resolve())
    sections = [isa_decode.Section(s.address, s.data) for s in facts.sections]
    starts = sorted({f.start for f in facts.functions} | set(facts.unwind_starts))
    return sections, starts, facts.elf_class


def test_parallel_scan_is_the_single_decoder_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """libc's code on 2 processes, cut at its function starts, equals one decoder's."""
    sections, starts, bitness = _libc_text()
    table = scan_table("amd64")
    serial = isa_decode.scan(sections, bitness, table, starts, jobs=1)
    monkeypatch.setattr(isa_decode, "PARALLEL_MIN_BYTES", 0)
    parallel = isa_decode.scan(sections, bitness, table, starts, jobs=2)
    assert serial.hits and serial.legacy_sse  # glibc: AVX2/AVX-512 code, and SSE2
    assert (parallel.hits, parallel.probes, parallel.legacy_sse) == (
        serial.hits, serial.probes, serial.legacy_sse)


def test_decoding_waits_for_cuts_dense_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """Too few function starts to share the code out: no pool until the caller has more."""
    sections, starts, bitness = _libc_text()
    monkeypatch.setattr(isa_decode, "PARALLEL_MIN_BYTES", 0)
    with isa_decode.Decoding(sections, bitness, scan_table("amd64"), jobs=2) as decoding:
        assert not decoding.start(starts[:1], more_cuts_coming=True)
        assert decoding.start(starts)
        assert decoding.result().hits


def test_chunks_cut_inside_instructions_resynchronize(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bogus 'function starts' in the middle of instructions: the result does not change."""
    sections, starts, bitness = _libc_text()
    table = scan_table("amd64")
    serial = isa_decode.scan(sections, bitness, table, starts, jobs=1)
    # every 40001st byte: nearly always inside an instruction, never a real boundary
    bogus = sorted({s.address + off for s in sections for off in range(1, len(s.data), 40001)})
    monkeypatch.setattr(isa_decode, "PARALLEL_MIN_BYTES", 0)
    parts = isa_decode.chunks(sections, bogus, 32)
    assert len(parts) >= 8
    ends = [isa_decode.scan_range(sections[i], lo, hi, bitness, table).end
            for i, lo, hi in parts[:-1]]
    # the cuts really fall inside instructions: a chunk's last instruction runs past the next
    # chunk's start, so the merge decodes that chunk again from where the stream really is
    assert any(end != nxt[1] for end, part, nxt in zip(ends, parts, parts[1:], strict=True)
               if part[0] == nxt[0])
    parallel = isa_decode.scan(sections, bitness, table, bogus, jobs=2)
    assert (parallel.hits, parallel.probes, parallel.legacy_sse) == (
        serial.hits, serial.probes, serial.legacy_sse)


def test_large_library_audit_is_the_same_on_one_and_two_processes() -> None:
    """The audit's verdicts do not depend on how many processes decoded the code."""
    files = sorted(shared_objects(multiarch_dir()), key=lambda p: p.stat().st_size)
    big = [p for p in files if p.stat().st_size > 2 * isa_decode.PARALLEL_MIN_BYTES]
    if not big:
        pytest.skip("no library large enough for the parallel decoder")
    path = big[len(big) // 2]  # a large one, not the largest: keeps the test short
    one, two = audit(path, jobs=1), audit(path, jobs=2)
    assert [(f.name, f.hits, f.entry_end, f.dispatch_reason) for f in one.functions] == \
        [(f.name, f.hits, f.entry_end, f.dispatch_reason) for f in two.functions]
    assert one.unconditional == two.unconditional
    assert [f.reason for f in one.findings(0)] == [f.reason for f in two.findings(0)]


def test_debug_file_for_names_no_file_for_a_corrupt_build_id(tmp_path: Path) -> None:
    """A build-id is hex: a corrupt note (too long for a file name, or not hex) names no
    debug file instead of failing the lookup; a real one is found under its root."""
    build_id = "ab" + "cd" * 19
    debug = tmp_path / "usr/lib/debug/.build-id/ab" / f"{build_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    debug.write_bytes(b"\x7fELF")
    assert debug_file_for(build_id, [tmp_path]) == debug
    assert debug_file_for("ab" * 300, [tmp_path]) is None
    assert debug_file_for("../../etc/passwd", [tmp_path]) is None
    assert debug_file_for(None, [tmp_path]) is None
