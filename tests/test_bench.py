"""hwcapdeb bench against real libraries, a real program and the real loader.

Every tree here is compiled with gcc (tests/elfbuild.py); which file the
loader mapped is checked against what the program itself prints, and a
variant that really crashes (SIGILL from ud2 in its constructor) must be
reported as such.  Rounds are few and the workloads short: these tests check
behaviour, never speed (speed targets live in benchmarks/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.bench.kept import read_profiles, write_profiles
from hwcapdeb.bench.ld_debug import loaded_files
from hwcapdeb.bench.program import Program
from hwcapdeb.bench.result import (
    CRASHED,
    DROP,
    FAILED,
    KEEP,
    MEASURED,
    NOT_MEASURABLE,
    BenchOptions,
    BenchReport,
    VariantResult,
)
from hwcapdeb.bench.run import run_bench
from hwcapdeb.bench.stats import sign_interval, speedup_interval
from hwcapdeb.cli import main
from hwcapdeb.cpu_sources import from_archspec, host_model
from tests.elfbuild import compile_library, install_variant_tree

LIBDIR = "usr/lib/x86_64-linux-gnu"
LOADER = "/lib64/ld-linux-x86-64.so.2"

PROG_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
const char *hw_variant(void);
void hw_saxpy(float *y, const float *x, float a, size_t n);
int main(int argc, char **argv) {
    size_t n = 4096, reps = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
    int status = argc > 2 ? atoi(argv[2]) : 0;
    float *x = malloc(n * sizeof *x), *y = calloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 7);
    for (size_t r = 0; r < reps; r++) hw_saxpy(y, x, 1e-6f, n);
    printf("%s %g\n", hw_variant(), (double)y[1]);
    return status;
}
"""

pytestmark = pytest.mark.skipif(
    not Path(LOADER).exists() or shutil.which("gcc") is None,
    reason="needs gcc and the amd64 loader",
)

FAST = BenchOptions(rounds=3, warmup=1, metric="cpu", resamples=300)


def _program(out: Path, libdir: Path, extra: tuple[str, ...] = ()) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + ".c")
    src.write_text(PROG_C)
    subprocess.run(
        ["gcc", "-O2", "-o", str(out), str(src), f"-L{libdir}", "-l:libhwtest.so.1", *extra],
        check=True,
    )
    src.unlink()
    return out


def _tree(root: Path, levels: tuple[str, ...] = ("x86-64-v2", "x86-64-v3", "x86-64-v4")) -> Path:
    install_variant_tree(root / LIBDIR, levels=levels)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """baseline, v3 and v4 compiled for real; v2 a byte-identical copy of the baseline."""
    root = _tree(tmp_path_factory.mktemp("pkg") / "root", ("x86-64-v3", "x86-64-v4"))
    v2 = root / LIBDIR / "glibc-hwcaps" / "x86-64-v2"
    v2.mkdir()
    shutil.copy2(root / LIBDIR / "libhwtest.so.1.0.0", v2 / "libhwtest.so.1.0.0")
    os.symlink("libhwtest.so.1.0.0", v2 / "libhwtest.so.1")
    _program(root / "usr" / "bin" / "hwprog", root / LIBDIR)
    return root


def _forced_output(root: Path, mask: str) -> str:
    """What the program prints under the very loader invocation bench uses."""
    out = subprocess.run(
        [LOADER, "--library-path", str(root / LIBDIR), "--glibc-hwcaps-mask", mask,
         str(root / "usr/bin/hwprog"), "1"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.split()[0]


def test_each_variant_really_loaded_and_identical_copy_dropped(tree: Path) -> None:
    host = host_model()
    if "AVX512F" not in host.features:
        pytest.skip("this machine has no AVX-512: x86-64-v4 cannot run here")
    # enough rounds and work that an identical copy cannot clear 1.03 by chance
    options = BenchOptions(rounds=6, metric="cpu", resamples=500)
    report = run_bench([tree], ["usr/bin/hwprog", "20000"], options)
    by_level = {v.level: v for v in report.variants}
    assert list(by_level) == ["baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4"]
    lib = tree / LIBDIR
    for level, result in by_level.items():
        assert result.status == MEASURED, result.reason
        want = lib / "libhwtest.so.1" if level == "baseline" else \
            lib / "glibc-hwcaps" / level / "libhwtest.so.1"
        # the file bench saw mapped (LD_DEBUG=libs of the real run) ...
        assert Path(result.loaded["libhwtest.so.1"]) == want
        assert len(result.runs) == options.rounds
        assert result.peak_rss_kib and 0 < result.peak_rss_kib < 64 * 1024
        # ... and, independently, the code the program ran says which build it was
        if level != "x86-64-v2":
            assert _forced_output(tree, "" if level == "baseline" else level) == level
    # the v2 directory holds the baseline build: same code, so it must not be kept
    assert _forced_output(tree, "x86-64-v2") == "baseline"
    assert by_level["x86-64-v2"].verdict == DROP
    assert "lower bound below --min-speedup" in by_level["x86-64-v2"].reason
    assert by_level["x86-64-v2"].interval is not None
    assert by_level["x86-64-v2"].added_bytes == (lib / "libhwtest.so.1.0.0").stat().st_size
    assert "x86-64-v2" not in report.kept


def test_wrong_file_is_caught_not_assumed(tmp_path: Path) -> None:
    """A DT_RPATH copy wins over --library-path: bench must notice the mismatch."""
    root = _tree(tmp_path / "root", ("x86-64-v3",))
    other = tmp_path / "elsewhere"
    compile_library(other / "libhwtest.so.1", variant="baseline")
    prog = _program(tmp_path / "rprog", root / LIBDIR,
                    ("-Wl,--disable-new-dtags", f"-Wl,-rpath,{other}"))
    report = run_bench([root], [str(prog), "10"], FAST)
    v3 = next(v for v in report.variants if v.level == "x86-64-v3")
    assert v3.status == FAILED
    assert f"mapped {other}/libhwtest.so.1 instead of" in v3.reason
    assert v3.verdict == DROP


def test_crashing_variant_reported_as_sigill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path / "root", ("x86-64-v3",))
    v3 = root / LIBDIR / "glibc-hwcaps" / "x86-64-v3" / "libhwtest.so.1.0.0"
    # ud2 in a constructor: a real SIGILL in the variant, whatever this CPU has
    compile_library(v3, variant="x86-64-v3",
                    extra_source="__attribute__((constructor)) static void boom(void)"
                                 " { __builtin_trap(); }\n")
    prog = _program(tmp_path / "prog", root / LIBDIR)
    code = main(["bench", str(root), "-n", "2", "--metric", "cpu", "--", str(prog), "10"])
    out = capsys.readouterr()
    assert code == 1
    assert "x86-64-v3: drop: COMMAND crashed with SIGILL with this variant" in out.out
    assert "Traceback" not in out.err
    report = run_bench([root], [str(prog), "10"], FAST)
    result = next(v for v in report.variants if v.level == "x86-64-v3")
    assert (result.status, result.verdict) == (CRASHED, DROP)
    assert report.variants[0].status == MEASURED and len(report.variants[0].runs) == 3


def test_failing_command_is_one_line_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", str(tree), "-n", "2", "--", "usr/bin/hwprog", "1", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "COMMAND exited with status 3 with the baseline libraries" in err


def test_no_variants_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    compile_library(root / LIBDIR / "libhwtest.so.1")
    code = main(["bench", str(root), "--", "/bin/true"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no glibc-hwcaps variant to benchmark" in err


def test_command_without_the_library_is_one_line_error(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", str(tree), "-n", "2", "--", "/bin/true"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "COMMAND loads no library of the package" in err


def test_static_program_refused(tmp_path: Path, tree: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "s.c"
    src.write_text("int main(void) { return 0; }\n")
    static = tmp_path / "static"
    if subprocess.run(["gcc", "-static", "-o", str(static), str(src)]).returncode != 0:
        pytest.skip("no static libc")
    code = main(["bench", str(tree), "--", str(static)])
    err = capsys.readouterr().err
    assert code == 2 and "statically linked" in err and err.count("\n") == 1


def test_unmeasurable_variant_says_why(tree: Path) -> None:
    report = run_bench([tree], ["usr/bin/hwprog", "10"], FAST, cpu=from_archspec("haswell"))
    v4 = next(v for v in report.variants if v.level == "x86-64-v4")
    assert v4.status == NOT_MEASURABLE and not v4.runs
    assert "AVX512F" in v4.reason
    v3 = next(v for v in report.variants if v.level == "x86-64-v3")
    assert v3.status == MEASURED


def test_script_runs_its_interpreter_through_the_loader(tmp_path: Path, tree: Path) -> None:
    script = tmp_path / "script"
    script.write_text(f"#!{tree / 'usr/bin/hwprog'}\n")
    script.chmod(0o755)
    report = run_bench([tree], [str(script)], BenchOptions(rounds=2, metric="cpu",
                                                             resamples=100, levels=("x86-64-v3",)))
    v3 = next(v for v in report.variants if v.level == "x86-64-v3")
    assert v3.status == MEASURED and v3.loaded["libhwtest.so.1"].endswith(
        "glibc-hwcaps/x86-64-v3/libhwtest.so.1")
    assert any("is a script" in n for n in report.notes)


def test_deb_input_json_and_profiles_file(tmp_path: Path, tree: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    staging = tmp_path / "staging"
    shutil.copytree(tree, staging, symlinks=True)
    (staging / "DEBIAN").mkdir()
    (staging / "DEBIAN" / "control").write_text(
        "Package: libhwtest1\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: T <t@example.org>\nDescription: test\n"
    )
    deb = tmp_path / "libhwtest1_1.0-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(staging), str(deb)],
                   check=True, capture_output=True)
    profiles = tmp_path / "kept"
    code = main(["bench", str(deb), "-n", "2", "--metric", "cpu", "--level", "x86-64-v2",
                 "--json", "--write-profiles", str(profiles), "--", "hwprog", "200"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["version"] and doc["interval_method"].startswith("paired bootstrap")
    rows = {v["level"]: v for v in doc["variants"]}
    assert set(rows) == {"baseline", "x86-64-v2"}
    assert rows["x86-64-v2"]["verdict"] == "drop"
    # paths inside the unpacked .deb are shown as PACKAGE:/path
    assert rows["x86-64-v2"]["loaded"]["libhwtest.so.1"] == \
        f"libhwtest1:/{LIBDIR}/glibc-hwcaps/x86-64-v2/libhwtest.so.1"
    assert rows["baseline"]["loaded"]["libhwtest.so.1"] == f"libhwtest1:/{LIBDIR}/libhwtest.so.1"
    assert doc["program"].endswith("/usr/bin/hwprog")  # the package's own program
    assert read_profiles(profiles) == []


def test_speedup_interval_and_profiles_roundtrip(tmp_path: Path) -> None:
    base = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    twice = [b / 2 for b in base]
    iv = speedup_interval(base, twice, resamples=200)
    assert iv.point == pytest.approx(2.0) and iv.low == pytest.approx(2.0)
    same = speedup_interval(base, list(reversed(base)), resamples=200)
    assert same.low <= 1.0 <= same.high
    # few rounds: the bootstrap alone would be overconfident; the sign-test part says so
    assert sign_interval([1.0, 1.1, 0.9], 0.95) == (0.9, 1.1, 0.75)
    assert sign_interval([float(i) for i in range(1, 11)], 0.95)[:2] == (2.0, 9.0)
    assert speedup_interval(base[:3], twice[:3], resamples=50).coverage < 0.95
    text = "\n".join([
        "  1234:\tfind library=libhwtest.so.1 [0]; searching",
        "  1234:\t  trying file=/a/glibc-hwcaps/x86-64-v3/libhwtest.so.1",
        "  1234:\t",
        "  1234:\tcalling init: /a/glibc-hwcaps/x86-64-v3/libhwtest.so.1",
    ])
    assert loaded_files(text) == [Path("/a/glibc-hwcaps/x86-64-v3/libhwtest.so.1")]
    report = BenchReport(
        ["x"], Program(("x",), Path("/x"), "PATH"), LOADER, "host", FAST,
        [VariantResult("baseline", MEASURED, "baseline", "the reference"),
         VariantResult("x86-64-v3", MEASURED, KEEP, "fast"),
         VariantResult("x86-64-v4", MEASURED, DROP, "slow")],
        [],
    )
    write_profiles(report, tmp_path / "p")
    assert read_profiles(tmp_path / "p") == ["x86-64-v3"]
    assert "# dropped x86-64-v4: slow" in (tmp_path / "p").read_text()


def test_score_from_the_programs_own_output(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # hwprog prints "<variant> <y>": y is the same for every build, so the ratio is exactly 1
    options = BenchOptions(rounds=2, resamples=100, levels=("x86-64-v3",),
                           score=r"^\S+ ([0-9.e+-]+)$")
    report = run_bench([tree], ["usr/bin/hwprog", "50"], options)
    v3 = next(v for v in report.variants if v.level == "x86-64-v3")
    assert report.options.metric == "score"
    assert v3.interval is not None and v3.interval.point == pytest.approx(1.0)
    assert v3.verdict == DROP
    code = main(["bench", str(tree), "-n", "2", "--score", "no such figure", "--",
                 "usr/bin/hwprog", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "matched nothing" in err


def test_variant_without_soname_link_is_not_a_variant(tmp_path: Path) -> None:
    """The loader opens glibc-hwcaps/LEVEL/SONAME only: a lone libfoo.so.1.0.0 is never used."""
    root = tmp_path / "root"
    install_variant_tree(root / LIBDIR, levels=("x86-64-v3",), soname_links=False)
    from hwcapdeb.errors import InputError

    with pytest.raises(InputError, match="no glibc-hwcaps variant"):
        run_bench([root], ["/bin/true"], FAST)


def test_split_layout_baseline_from_its_own_package(tmp_path: Path) -> None:
    """build --layout split: each level is its own package, the baseline another one's."""
    base, v3 = tmp_path / "libhwtest1", tmp_path / "libhwtest1-x86-64-v3"
    install_variant_tree(base / LIBDIR, levels=())
    install_variant_tree(v3 / LIBDIR, levels=("x86-64-v3",))
    for name in os.listdir(v3 / LIBDIR):  # the level's package ships only glibc-hwcaps/
        if name != "glibc-hwcaps":
            (v3 / LIBDIR / name).unlink()
    prog = _program(base / "usr/bin/hwprog", base / LIBDIR)
    options = BenchOptions(rounds=2, metric="cpu", resamples=100)
    report = run_bench([base, v3], [str(prog), "10"], options)
    by_level = {v.level: v for v in report.variants}
    assert list(by_level) == ["baseline", "x86-64-v3"]
    assert by_level["baseline"].loaded["libhwtest.so.1"] == str(base.resolve() / LIBDIR
                                                                 / "libhwtest.so.1")
    assert by_level["x86-64-v3"].status == MEASURED, by_level["x86-64-v3"].reason
    assert by_level["x86-64-v3"].loaded["libhwtest.so.1"].startswith(str(v3.resolve()))
    assert report.notes == []


def test_convert_drop_applies_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hwcapdeb convert --drop LEVEL`: the dropped level is not in the converted package."""
    from hwcapdeb.convert import manifest

    src = tmp_path / "vecmath"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "vecmath", src)
    all_levels = "x86-64-v2,x86-64-v3,x86-64-v4"
    argv = ["convert", str(src), "--profile", all_levels, "--drop", "x86-64-v2", "--mode", "embed"]
    assert main(argv) == 0
    loaded = manifest.load(src)
    assert loaded is not None and loaded.profiles == ("x86-64-v3", "x86-64-v4")
    capsys.readouterr()
    assert main(["convert", str(src), "--profile", "x86-64-v3", "--drop", "x86-64-v9"]) == 2
    assert main(["convert", str(src), "--profile", "x86-64-v3", "--drop", "x86-64-v3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "no profile given builds that level" in err[0]
    assert "leaves no profile to build" in err[1]
