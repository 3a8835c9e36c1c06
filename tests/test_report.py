"""``hwcapdeb report`` and the Bench-Command of the package options file.

Saved results (tests/data/report/: vecmath's real verify and bench JSON, a
package without a bench command, one whose bench failed, an sbuild log of a
failed build) and one real build of the example with ``--bench``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.bench.after_build import bench_setting
from hwcapdeb.cli import main
from hwcapdeb.errors import InputError
from hwcapdeb.report import collect, markdown
from hwcapdeb.sbuild.rc import SbuildSettings, read_rc, render

DATA = Path(__file__).parent / "data" / "report"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"


def _report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_from_saved_results(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report([str(DATA), "--format", "json"], capsys)
    assert code == 0
    rows = {r["source"]: r for r in json.loads(out)["packages"]}
    assert sorted(rows) == ["libyaml", "vecmath", "xxhash", "zlib"]
    # vecmath: the verdicts and intervals are bench's, the sizes verify's
    bench = json.loads((DATA / "vecmath/vecmath_1.0.0_amd64.bench.json").read_text())
    vecmath = rows["vecmath"]
    assert vecmath["status"] == "built" and vecmath["libraries"] == ["libvecmath.so.1"]
    assert vecmath["kept"] == bench["kept"]
    dropped = [v["level"] for v in bench["variants"]
               if v["level"] != "baseline" and v["level"] not in bench["kept"]]
    assert vecmath["convert_drop"] == " ".join(f"--drop {lv}" for lv in dropped)
    for level in vecmath["levels"]:
        variant = next(v for v in bench["variants"] if v["level"] == level["level"])
        assert level["speedup"] == variant["speedup"]
        assert level["interval"] == variant["interval"]
        assert level["added_bytes"] > 0
    assert (vecmath["errors"], vecmath["warnings"]) == (0, 0)
    # no bench command: a row that says so, with verify's warning counted
    libyaml = rows["libyaml"]
    assert libyaml["verdict"] == "not measured: no bench command"
    assert (libyaml["errors"], libyaml["warnings"]) == (0, 1)
    assert libyaml["convert_drop"] == ""
    # a failed build: sbuild's stage and the compiler's error
    xxhash = rows["xxhash"]
    assert xxhash["status"] == "failed" and xxhash["version"] == "0.8.1-1"
    assert xxhash["verdict"].startswith("build failed: sbuild stage build: xxh_x86dispatch.c")
    assert xxhash["errors"] is None and xxhash["levels"] == []
    # a bench that could not run
    assert rows["zlib"]["verdict"] == "not measured: bench failed"
    assert "minigzip" in rows["zlib"]["bench_note"]


def test_markdown_has_one_row_per_build(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report([str(DATA)], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("| package | version | libraries | bytes added | verify |")
    assert len(lines) == 2 + 4
    vecmath = next(line for line in lines if line.startswith("| vecmath |"))
    assert "x86-64-v4: " in vecmath and "keep" in vecmath and "`--drop x86-64-v2`" in vecmath
    assert "| build failed: sbuild stage build:" in next(
        line for line in lines if line.startswith("| xxhash |"))


def test_two_builds_of_one_version_are_two_rows(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(DATA / "vecmath", tmp_path / name)
    (tmp_path / "b" / "vecmath_1.0.0_amd64.bench.json").unlink()
    rows = collect([tmp_path])
    assert [r.verdict.split(":")[0] for r in rows] == [
        "keep x86-64-v3,x86-64-v4, drop x86-64-v2", "not measured"]
    assert markdown(rows).count("| vecmath |") == 2


def test_unreadable_verify_results_are_said_not_taken_for_a_verdict(tmp_path: Path) -> None:
    """A truncated verify JSON: the row says so, and no keep/drop verdict or convert
    options are drawn from the bench results of an unverified build."""
    shutil.copytree(DATA / "vecmath", tmp_path, dirs_exist_ok=True)
    (tmp_path / "vecmath_1.0.0_amd64.verify.json").write_text('{"findings": [')
    (row,) = collect([tmp_path])
    assert row.verdict == "not verified: unreadable vecmath_1.0.0_amd64.verify.json"
    assert row.convert_drop == ""
    assert "| unreadable vecmath_1.0.0_amd64.verify.json |" in markdown([row])


def test_verify_hook_failure_after_the_changes_is_a_failed_build(tmp_path: Path) -> None:
    shutil.copytree(DATA / "vecmath", tmp_path, dirs_exist_ok=True)
    (tmp_path / "vecmath_1.0.0_amd64.verify.json").unlink()
    (tmp_path / "vecmath_1.0.0_amd64.bench.json").unlink()
    (tmp_path / "vecmath_1.0.0_amd64-20261129-1200.build").write_text(
        "E: libvecmath1: missing-soname-link usr/lib/x86_64-linux-gnu/glibc-hwcaps/...\n"
        "Fail-Stage: run-post-build-commands\nStatus: failed\n")
    (row,) = collect([tmp_path])
    assert row.status == "failed"
    assert row.verdict == "build failed: verify found errors (post-build hook)"


def test_dpkg_build_failure_names_the_error(tmp_path: Path) -> None:
    (tmp_path / "foo_1.0_amd64.build").write_text(
        "dpkg-buildpackage: info: source package foo\n"
        "foo.c:3:1: error: expected ';' before '}' token\n"
        "make[1]: *** [Makefile:4: foo.o] Error 1\n"
        "dpkg-buildpackage: error: debian/rules build subprocess returned exit status 2\n")
    (row,) = collect([tmp_path])
    assert row.status == "failed"
    assert row.verdict == "build failed: foo.c:3:1: error: expected ';' before '}' token"


@pytest.mark.parametrize("make", [
    lambda tmp: tmp / "empty",
    lambda tmp: tmp / "missing",
], ids=["no-results", "missing-path"])
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               make: object) -> None:
    (tmp_path / "empty").mkdir()
    path = make(tmp_path)  # type: ignore[operator]
    code, out, err = _report([str(path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("hwcapdeb: error: ")


def test_bench_setting_from_package_options(tmp_path: Path) -> None:
    options = tmp_path / "packages"
    options.write_text(
        "Source: xxhash\n"
        "Bench-Command: xxhsum -b5 -i1\n"
        "Bench-Options: --metric score --score '([0-9.]+) MB/s' --higher-is-better\n"
        "\n"
        "Source: zlib\n"
        "Variant-Env: A=B\n")
    setting = bench_setting(options, "xxhash")
    assert setting is not None
    assert setting.command == ("xxhsum", "-b5", "-i1")
    assert setting.options == ("--metric", "score", "--score", "([0-9.]+) MB/s",
                               "--higher-is-better")
    assert bench_setting(options, "zlib") is None
    assert bench_setting(options, "libyaml") is None
    options.write_text("Source: xxhash\nBench-Command: xxhsum '-b5\n")
    with pytest.raises(InputError, match="not valid shell words"):
        bench_setting(options, "xxhash")
    options.write_text("Source: xxhash\nBench-Comand: xxhsum\n")
    with pytest.raises(InputError, match="unknown field Bench-Comand"):
        bench_setting(options, "xxhash")


def test_sbuild_snippet_saves_results_with_package_options(tmp_path: Path) -> None:
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    settings = SbuildSettings(profiles=("x86-64-v3",), package_options="/srv/hwcaps-packages",
                              hwcapdeb=("/usr/bin/hwcapdeb",))
    rc = tmp_path / "sbuildrc"
    rc.write_text(render(settings))
    commands = read_rc(rc)["external_commands"]
    assert isinstance(commands, dict)
    assert commands["post-build-commands"] == [
        ["/usr/bin/hwcapdeb", "verify", "--matrix", "%SBUILD_CHANGES"],
        ["/usr/bin/hwcapdeb", "sbuild-hook", "results", "--package-options",
         "/srv/hwcaps-packages", "%SBUILD_CHANGES"],
    ]
    # without package options, verify alone as before
    rc.write_text(render(SbuildSettings(hwcapdeb=("/usr/bin/hwcapdeb",))))
    commands = read_rc(rc)["external_commands"]
    assert isinstance(commands, dict)
    assert len(commands["post-build-commands"]) == 1


def test_report_on_a_real_build_with_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The example built with --bench, and a broken copy of it: two rows."""
    options = tmp_path / "packages"
    options.write_text("Source: vecmath\nBench-Command: vecmath-bench 4096\n"
                       "Bench-Options: -n 6 --metric cpu\n")
    ok = tmp_path / "results" / "ok"
    monkeypatch.setenv("DEB_BUILD_OPTIONS", "nocheck")
    assert main(["build", str(EXAMPLE), "-p", "x86-64-v3", "--out", str(ok),
                 "--bench", str(options)]) == 0
    out, _ = capsys.readouterr()
    assert "vecmath_1.0.0_amd64.bench.json: written" in out
    broken = tmp_path / "broken" / "vecmath"
    shutil.copytree(EXAMPLE, broken)
    with (broken / "Makefile").open("a") as fh:
        fh.write("\nvecmath.pic.o: broken-on-purpose.h\n")
    assert main(["build", str(broken), "-p", "x86-64-v3", "--out",
                 str(tmp_path / "results" / "broken"), "--bench", str(options)]) == 2
    capsys.readouterr()
    code, out, _ = _report([str(tmp_path / "results"), "--format", "json"], capsys)
    assert code == 0
    failed, built = sorted(json.loads(out)["packages"], key=lambda r: r["status"] != "failed")
    assert failed["status"] == "failed" and "broken-on-purpose.h" in failed["detail"]
    assert built["status"] == "built" and built["errors"] == 0
    (level,) = built["levels"]
    assert level["level"] == "x86-64-v3" and level["added_bytes"] > 0
    assert level["verdict"] in ("keep", "drop") and level["interval"] is not None
    assert built["bench_command"] == ["vecmath-bench", "4096"]
    # the saved bench is bench's own document for this very build
    saved = json.loads((ok / "vecmath_1.0.0_amd64.bench.json").read_text())
    assert saved["variants"][0]["level"] == "baseline"
    subprocess.run(["dpkg-deb", "-I", next(ok.glob("libvecmath1_*.deb"))], check=True,
                   capture_output=True)
