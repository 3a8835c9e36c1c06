"""``hwcapdeb verify`` on real packages broken on purpose, one problem at a time.

Every library is compiled by gcc (tests/elfbuild.py), laid out as a package
installs it, and packed into a real .deb with ``dpkg-deb --build``; the host
rows of the dispatch matrix ask the real loader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.verify import Report, verify_paths
from tests.elfbuild import KERNEL_C, compile_library, install_variant_tree

MULTIARCH = "usr/lib/x86_64-linux-gnu"
LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
FAST_CPUS = ["x86_64", "nehalem", "haswell", "skylake_avx512"]


def make_deb(
    tmp: Path,
    name: str = "libhwtest1",
    *,
    levels: Sequence[str] = LEVELS,
    soname_links: bool = True,
    flags_for: Mapping[str, Sequence[str]] | None = None,
    tweak: Callable[[Path], None] | None = None,
    soname: str = "libhwtest.so.1",
) -> Path:
    """A real .deb of a baseline + glibc-hwcaps library, built with dpkg-deb."""
    staging = tmp / f"{name}-staging"
    libdir = staging / MULTIARCH
    install_variant_tree(libdir, levels=levels, soname_links=soname_links,
                         flags_for=dict(flags_for) if flags_for else None,
                         soname=soname, realname=f"{soname}.0.0")
    if tweak:
        tweak(libdir)
    (staging / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (staging / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: Test <test@example.org>\nDescription: test library\n"
    )
    deb = tmp / f"{name}_1.0-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(staging),
                    str(deb)], check=True, capture_output=True)
    return deb


def tags(report: Report, severity: str = "error") -> set[str]:
    return {f.tag for f in report.findings if f.severity == severity}


@pytest.fixture(scope="module")
def clean_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_deb(tmp_path_factory.mktemp("clean"))


def test_clean_package_has_no_finding(clean_deb: Path) -> None:
    report = verify_paths([clean_deb], cpus=FAST_CPUS, ask_real_loader=False)
    assert report.findings == []
    assert report.exit_code == 0
    assert [lib.soname for lib in report.libraries] == ["libhwtest.so.1"]
    assert set(report.libraries[0].variants) == set(LEVELS)
    variants = [b.size for b in report.libraries[0].variants.values()]
    assert report.added_bytes() == {"libhwtest1": sum(variants)} and min(variants) > 1000
    assert len(report.sizes) == 4


def test_clean_package_matrix_picks_each_level(clean_deb: Path) -> None:
    report = verify_paths([clean_deb], cpus=FAST_CPUS, ask_real_loader=False)
    picked = {c.cpu: c.level for c in report.matrix}
    assert picked == {"x86_64": "baseline", "nehalem": "x86-64-v2", "haswell": "x86-64-v3",
                      "skylake_avx512": "x86-64-v4"}
    assert all(c.safe for c in report.matrix)
    assert all(c.resolved and c.resolved.startswith(MULTIARCH) for c in report.matrix)


def test_host_rows_agree_with_the_real_loader(clean_deb: Path) -> None:
    report = verify_paths([clean_deb])  # default rows: the host and its tunables masks
    host = [c for c in report.matrix if c.cpu.startswith("host")]
    assert host, "the host row is always in the default matrix"
    assert all(c.agrees is True for c in host), [(c.cpu, c.resolved, c.real) for c in host]
    # the masks step the host down: more than one level appears among the host rows
    if len({c.level for c in host}) == 1:
        pytest.skip("this CPU supports no glibc-hwcaps level above baseline")
    assert report.exit_code == 0


def test_cli_is_quiet_on_success_and_json_has_version(
    clean_deb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--no-probe", "--cpu", "haswell", str(clean_deb)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["verify", "--json", "--no-probe", "--cpu", "haswell", str(clean_deb)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1
    assert doc["findings"] == []
    assert doc["matrix"][0]["level"] == "x86-64-v3"


def test_missing_soname_link(tmp_path: Path) -> None:
    report = verify_paths([make_deb(tmp_path, soname_links=False)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert tags(report) == {"missing-soname-link"}
    paths = {f.path for f in report.findings}
    assert paths == {f"{MULTIARCH}/glibc-hwcaps/{lv}/libhwtest.so.1.0.0" for lv in LEVELS}


def test_abi_mismatch_extra_symbol(tmp_path: Path) -> None:
    def add_symbol(libdir: Path) -> None:
        compile_library(libdir / "glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0",
                        variant="x86-64-v3", extra_source="int hw_only_here(void) { return 3; }\n")

    report = verify_paths([make_deb(tmp_path, tweak=add_symbol)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert tags(report) == {"abi-mismatch"}
    (finding,) = report.errors
    assert "hw_only_here" in finding.message and "x86-64-v3" in finding.path


def test_abi_mismatch_soname(tmp_path: Path) -> None:
    def other_soname(libdir: Path) -> None:
        # the file answers to libhwtest.so.1 (the link) but says it is libhwtest.so.2
        compile_library(libdir / "glibc-hwcaps/x86-64-v2/libhwtest.so.1.0.0",
                        soname="libhwtest.so.2", variant="x86-64-v2")
        os.symlink("libhwtest.so.1.0.0", libdir / "glibc-hwcaps/x86-64-v2/libhwtest.so.2")

    report = verify_paths([make_deb(tmp_path, tweak=other_soname)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert "abi-mismatch" in tags(report)
    assert any("SONAME" in f.message for f in report.errors)


def test_marker_above_directory_is_fatal(tmp_path: Path) -> None:
    # v3 code, but linked with a v4 marker: glibc picks the directory on a v3 CPU, then refuses
    flags = {"x86-64-v3": ["-march=x86-64-v3", "-Wl,-z,x86-64-v4"]}
    report = verify_paths([make_deb(tmp_path, flags_for=flags)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert tags(report) == {"isa-marker-mismatch"}
    (finding,) = report.errors
    assert "x86-64-v3" in finding.path and "refuses" in finding.message
    haswell = next(c for c in report.matrix if c.cpu == "haswell")
    assert not haswell.safe  # the loader model refuses it too


def test_baseline_marker_above_baseline(tmp_path: Path) -> None:
    flags = {"baseline": ["-march=x86-64", "-Wl,-z,x86-64-v2"]}
    report = verify_paths([make_deb(tmp_path, flags_for=flags)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert tags(report) == {"isa-marker-mismatch"}
    assert report.errors[0].path == f"{MULTIARCH}/libhwtest.so.1.0.0"


def test_variant_without_marker_is_a_warning(tmp_path: Path) -> None:
    flags = {"x86-64-v3": ["-march=x86-64-v3"]}  # no -mneeded: no marker
    report = verify_paths([make_deb(tmp_path, flags_for=flags)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert report.exit_code == 0
    assert tags(report, "warning") == {"isa-marker-mismatch"}


def test_isa_leak_in_baseline(tmp_path: Path) -> None:
    flags = {"baseline": ["-march=x86-64-v3"]}  # the classic: baseline built for the build host
    deb = make_deb(tmp_path, flags_for=flags)
    report = verify_paths([deb], cpus=FAST_CPUS, ask_real_loader=False)
    assert tags(report) == {"isa-leak"}
    (finding,) = report.errors
    assert finding.path == f"{MULTIARCH}/libhwtest.so.1.0.0"
    assert "above baseline" in finding.message and " in hw_" in finding.message
    x86_64 = next(c for c in report.matrix if c.cpu == "x86_64")
    assert not x86_64.safe and "AVX" in x86_64.reason


def test_isa_leak_in_variant(tmp_path: Path) -> None:
    # a v2 directory holding v3 code (marker claims v2, so the loader takes it on Nehalem)
    flags = {"x86-64-v2": ["-march=x86-64-v3", "-Wl,-z,x86-64-v2"]}
    report = verify_paths([make_deb(tmp_path, flags_for=flags)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert tags(report) == {"isa-leak"}
    assert "above x86-64-v2" in report.errors[0].message


def test_variant_adds_nothing(tmp_path: Path) -> None:
    flags = {"x86-64-v3": ["-march=x86-64", "-Wl,-z,x86-64-v3"]}  # marker right, flags lost
    deb = make_deb(tmp_path, levels=("x86-64-v3",), flags_for=flags)
    report = verify_paths([deb], cpus=FAST_CPUS, ask_real_loader=False)
    assert report.exit_code == 0
    assert tags(report, "warning") == {"variant-adds-nothing"}


def test_dispatched_code_in_baseline_is_not_a_leak(tmp_path: Path) -> None:
    source = KERNEL_C + r"""
__attribute__((target_clones("avx2", "default")))
int hw_tc_sum(const int *a, size_t n)
{ int s = 0; for (size_t i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((target("avx2"))) static int sum_fast(const int *a, size_t n)
{ int s = 0; for (size_t i = 0; i < n; i++) s += a[i] * a[i]; return s; }
static int sum_plain(const int *a, size_t n)
{ int s = 0; for (size_t i = 0; i < n; i++) s += a[i] * a[i]; return s; }
int hw_guarded(const int *a, size_t n)
{ return __builtin_cpu_supports("avx2") ? sum_fast(a, n) : sum_plain(a, n); }
"""

    def dispatching_baseline(libdir: Path) -> None:
        compile_library(libdir / "libhwtest.so.1.0.0", source=source)
        for level in LEVELS:
            compile_library(libdir / f"glibc-hwcaps/{level}/libhwtest.so.1.0.0", variant=level,
                            source=source)

    report = verify_paths([make_deb(tmp_path, tweak=dispatching_baseline)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert report.errors == []
    baseline = report.libraries[0].baseline
    assert baseline is not None and baseline.audit is not None
    judged = baseline.audit.findings(0)
    assert judged and all(f.dispatched for f in judged)
    reasons = {f.function: f.reason for f in judged}
    assert "(avx2)" in reasons["hw_tc_sum.avx2"]  # the target_clones clone, by name
    assert "detects the CPU" in reasons["sum_fast"]  # behind __builtin_cpu_supports


def test_changes_file_lists_the_debs(tmp_path: Path) -> None:
    good = make_deb(tmp_path, "libhwtest1")
    bad = make_deb(tmp_path, "libhwother1", flags_for={"baseline": ["-march=x86-64-v3"]},
                   soname="libhwother.so.1")
    changes = tmp_path / "hwtest_1.0-1_amd64.changes"
    lines = [f" 0123456789abcdef0123456789abcdef {p.stat().st_size} libs optional {p.name}"
             for p in (good, bad)]
    changes.write_text(
        "Format: 1.8\nSource: hwtest\nBinary: libhwtest1 libhwother1\nArchitecture: amd64\n"
        "Version: 1.0-1\nFiles:\n" + "\n".join(lines) + "\n"
    )
    report = verify_paths([changes], cpus=FAST_CPUS, ask_real_loader=False)
    assert {lib.package for lib in report.libraries} == {"libhwtest1", "libhwother1"}
    assert {(f.package, f.tag) for f in report.errors} == {("libhwother1", "isa-leak")}
    assert main(["verify", "--no-probe", "--cpu", "x86_64", str(changes)]) == 1
    # the output directory itself: its .changes
    for staging in tmp_path.glob("*-staging"):
        shutil.rmtree(staging)
    report = verify_paths([tmp_path], cpus=FAST_CPUS, ask_real_loader=False)
    assert {(f.package, f.tag) for f in report.errors} == {("libhwother1", "isa-leak")}


def test_staging_directory_with_control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_deb(tmp_path, soname_links=False)
    monkeypatch.chdir(tmp_path)  # a relative path, as in 'hwcapdeb verify debian/libfoo1'
    staging = Path("libhwtest1-staging")
    report = verify_paths([staging], cpus=FAST_CPUS, ask_real_loader=False)
    assert tags(report) == {"missing-soname-link"}
    assert {f.package for f in report.findings} == {"libhwtest1"}


def test_lintian_line_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deb = make_deb(tmp_path, flags_for={"baseline": ["-march=x86-64-v3"]})
    assert main(["verify", "--no-probe", "--cpu", "x86_64", str(deb)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"E: libhwtest1: isa-leak {MULTIARCH}/libhwtest.so.1.0.0 (")
    assert line.endswith(")")


@pytest.mark.parametrize("content", [b"", b"!<arch>\ngarbage", b"not a deb at all" * 10])
def test_broken_deb_is_one_line_exit_2(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    deb = tmp_path / "broken_1.0_amd64.deb"
    deb.write_bytes(content)
    assert main(["verify", str(deb)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwcapdeb: error: ") and err.count("\n") == 1


def test_truncated_variant_is_a_finding(tmp_path: Path) -> None:
    def truncate(libdir: Path) -> None:
        path = libdir / "glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0"
        path.write_bytes(path.read_bytes()[:300])

    report = verify_paths([make_deb(tmp_path, tweak=truncate)], cpus=FAST_CPUS,
                          ask_real_loader=False)
    assert "unreadable-file" in tags(report)


def test_non_elf_file_in_a_level_directory(tmp_path: Path) -> None:
    def junk(libdir: Path) -> None:
        (libdir / "glibc-hwcaps/x86-64-v2/README").write_text("not a library\n")
        (libdir / "glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0").write_text("INPUT(-lfoo)\n")

    report = verify_paths([make_deb(tmp_path, tweak=junk)], cpus=FAST_CPUS, ask_real_loader=False)
    assert tags(report) == {"unreadable-file"} == tags(report, "warning")
    assert [f.path.split("/")[-2:] for f in report.findings] == [
        ["x86-64-v3", "libhwtest.so.1.0.0"], ["x86-64-v2", "README"]]


def test_unknown_level_directory_is_a_warning(tmp_path: Path) -> None:
    def legacy(libdir: Path) -> None:
        compile_library(libdir / "glibc-hwcaps/haswell/libhwtest.so.1.0.0", variant="x86-64-v3")

    report = verify_paths([make_deb(tmp_path, tweak=legacy)], cpus=FAST_CPUS, ask_real_loader=False)
    assert report.exit_code == 0
    assert tags(report, "warning") == {"unknown-hwcaps-directory"}


def test_dbgsym_package_makes_the_leak_exact(tmp_path: Path) -> None:
    """A stripped baseline fools the heuristic (a cpuid, a legacy SSE instruction); its -dbgsym
    .deb does not."""
    cpuid = ("#include <cpuid.h>\nint hw_has_avx2(void) { unsigned a, b, c, d;"
             " __cpuid_count(7, 0, a, b, c, d); return (b >> 5) & 1; }\n"
             '__asm__(".text\\nhw_legacy_stub:\\n\\tpxor %xmm1, %xmm1\\n\\tret\\n");\n')
    dbg = tmp_path / "libhwtest1-dbgsym-staging"

    def stripped_with_dbgsym(libdir: Path) -> None:
        for level in LEVELS:  # same ABI everywhere
            compile_library(libdir / f"glibc-hwcaps/{level}/libhwtest.so.1.0.0", variant=level,
                            extra_source=cpuid)
        lib = compile_library(libdir / "libhwtest.so.1.0.0", cflags=["-march=x86-64-v3", "-g"],
                              extra_source=cpuid)
        out = subprocess.run(["readelf", "-n", str(lib)], capture_output=True, text=True).stdout
        build_id = out.split("Build ID: ")[1].split()[0]
        debug = dbg / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
        debug.parent.mkdir(parents=True)
        subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
        subprocess.run(["strip", "--strip-unneeded", str(lib)], check=True)

    deb = make_deb(tmp_path, tweak=stripped_with_dbgsym)
    (dbg / "DEBIAN").mkdir()
    (dbg / "DEBIAN/control").write_text(
        "Package: libhwtest1-dbgsym\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: Test <test@example.org>\nDescription: debug symbols\n"
    )
    dbgsym = tmp_path / "libhwtest1-dbgsym_1.0-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(dbg), str(dbgsym)],
                   check=True, capture_output=True)
    assert verify_paths([deb], cpus=FAST_CPUS, ask_real_loader=False).errors == []
    report = verify_paths([deb, dbgsym], cpus=FAST_CPUS, ask_real_loader=False)
    assert tags(report) == {"isa-leak"}
    assert "-march=x86-64-v3 (DW_AT_producer)" in report.errors[0].message


def test_split_layout_variant_packages(tmp_path: Path) -> None:
    """Baseline in libhwtest1, each level in its own package: one library, merged like dpkg."""
    make_deb(tmp_path, levels=LEVELS)
    staging = tmp_path / "libhwtest1-staging"
    debs = []
    for level in ("x86-64-v3", "x86-64-v4"):
        name = f"libhwtest1-{level}"
        split = tmp_path / f"{name}-staging"
        (split / "DEBIAN").mkdir(parents=True)
        (split / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n"
            "Maintainer: Test <test@example.org>\nDescription: variant\n")
        hwcaps = f"{MULTIARCH}/glibc-hwcaps/{level}"
        (split / hwcaps).parent.mkdir(parents=True)
        (staging / hwcaps).rename(split / hwcaps)
        deb = tmp_path / f"{name}_1.0-1_amd64.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(split), str(deb)],
                       check=True, capture_output=True)
        debs.append(deb)
    base = tmp_path / "libhwtest1_split.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(staging), str(base)],
                   check=True, capture_output=True)
    report = verify_paths([base, *debs], cpus=FAST_CPUS)
    assert report.findings == []
    (lib,) = report.libraries
    assert set(lib.variants) == {"x86-64-v2", "x86-64-v3", "x86-64-v4"}
    picked = {c.cpu: (c.package, c.level) for c in report.matrix}
    assert picked["haswell"] == ("libhwtest1-x86-64-v3", "x86-64-v3")
    assert picked["nehalem"] == ("libhwtest1", "x86-64-v2")
    assert all(c.agrees is not False for c in report.matrix)
    alone = verify_paths(debs[:1], cpus=FAST_CPUS, ask_real_loader=False)
    assert tags(alone) == {"variant-without-baseline"}


def test_cli_matrix_and_bad_cpu(clean_deb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--matrix", "--cpu", "nehalem", "--cpu", "host:glibc.cpu.hwcaps=-AVX2",
                 str(clean_deb)]) == 0
    out = capsys.readouterr().out
    assert "dispatch matrix" in out and "x86-64-v2" in out and "ld.so agrees" in out
    assert "(variants add)" in out
    assert main(["verify", "--cpu", "no-such-cpu", str(clean_deb)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwcapdeb: error: unknown CPU") and err.count("\n") == 1


def test_architecture_from_the_control_file(tmp_path: Path) -> None:
    make_deb(tmp_path)
    staging = tmp_path / "libhwtest1-staging"
    control = staging / "DEBIAN/control"
    control.write_text(control.read_text().replace("amd64", "arm64"))
    report = verify_paths([staging], ask_real_loader=False)
    assert report.arch == "arm64" and report.matrix == []
    assert tags(report, "warning") == {"unknown-hwcaps-directory"} and report.exit_code == 0
    assert "no glibc-hwcaps subdirectories on arm64" in report.findings[0].message


def test_variant_with_dispatched_avx512_is_safe_on_avx2(tmp_path: Path) -> None:
    """A v3 build (AVX throughout) that dispatches to AVX-512: only its AVX2 is unguarded."""
    source = KERNEL_C + r"""
__attribute__((target("avx512f"))) static int sum_wide(const int *a, size_t n)
{ int s = 0; for (size_t i = 0; i < n; i++) s += a[i] * a[i]; return s; }
int hw_sum(const int *a, size_t n)
{ return __builtin_cpu_supports("avx512f") ? sum_wide(a, n) : 0; }
"""

    def wide(libdir: Path) -> None:
        compile_library(libdir / "libhwtest.so.1.0.0", source=source)
        for level in LEVELS:
            compile_library(libdir / f"glibc-hwcaps/{level}/libhwtest.so.1.0.0", variant=level,
                            source=source)

    report = verify_paths([make_deb(tmp_path, tweak=wide)], cpus=FAST_CPUS, ask_real_loader=False)
    assert report.errors == []
    haswell = next(c for c in report.matrix if c.cpu == "haswell")
    assert haswell.level == "x86-64-v3" and haswell.safe, haswell.reason


def _glibc_searches_legacy_dirs() -> bool:
    """glibc 2.33-2.36 still search tls/, haswell/, x86_64/... (removed in 2.37)."""
    version = (os.confstr("CS_GNU_LIBC_VERSION") or "").split()[-1]
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) < (2, 37)


@pytest.mark.skipif(not _glibc_searches_legacy_dirs(),
                    reason="this glibc no longer searches legacy hwcaps directories")
def test_legacy_hwcaps_copy_follows_the_loaders_release(
    tmp_path: Path, clean_deb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package still shipping an old-style x86_64/ copy beside glibc-hwcaps/: where no
    glibc-hwcaps level applies, glibc 2.36 loads that copy, and so does the model for
    that release (rule legacy-hwcaps); verify warns.  Real files, the real ld.so."""
    def legacy_copy(libdir: Path) -> None:
        compile_library(libdir / "x86_64/libhwtest.so.1.0.0")
        os.symlink("libhwtest.so.1.0.0", libdir / "x86_64/libhwtest.so.1")

    deb = make_deb(tmp_path, tweak=legacy_copy)
    below_v2 = "host:glibc.cpu.hwcaps=-POPCNT"  # no glibc-hwcaps level left
    report = verify_paths([deb], cpus=["host", below_v2])
    cells = {c.cpu: c for c in report.matrix}
    assert cells["host"].agrees is True  # a glibc-hwcaps level wins: the copy is not reached
    assert cells[below_v2].agrees is True
    assert cells[below_v2].level == "legacy x86_64/"
    assert cells[below_v2].resolved == f"{MULTIARCH}/x86_64/libhwtest.so.1.0.0"
    assert report.exit_code == 0 and tags(report, "warning") == {"legacy-hwcaps-directory"}
    # the same package without the copy: model and real loader agree on that row
    clean = verify_paths([clean_deb], cpus=[below_v2])
    assert clean.findings == [] and clean.matrix[0].agrees is True
    # the CLI: one lintian-style warning naming the copy, exit 0
    assert main(["verify", "--cpu", below_v2, str(deb)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(
        f"W: libhwtest1: legacy-hwcaps-directory {MULTIARCH}/x86_64/libhwtest.so.1.0.0 (")


def test_soname_directory_in_a_level_directory(tmp_path: Path) -> None:
    """A directory where the SONAME link belongs: the real loader opens it and fails."""
    def directory(libdir: Path) -> None:
        link = libdir / "glibc-hwcaps/x86-64-v2/libhwtest.so.1"
        link.unlink()
        link.mkdir()

    deb = make_deb(tmp_path, levels=("x86-64-v2",), tweak=directory)
    report = verify_paths([deb], cpus=["nehalem", "host"])
    assert tags(report) == {"missing-soname-link"}
    assert "is a directory" in report.errors[0].message
    for cell in report.matrix:
        assert cell.resolved is None and "cannot read file data" in cell.reason
    host = next(c for c in report.matrix if c.cpu == "host")
    assert host.agrees is True and host.real and "cannot read file data" in host.real
