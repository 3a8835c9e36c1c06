"""``hwcapdeb which`` and ``hwcapdeb cpus`` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from tests.elfbuild import install_variant_tree

SONAME = "libhwtest.so.1"


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("which") / "lib"
    install_variant_tree(path, soname=SONAME)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["which", SONAME, "--cpu", "haswel"], "did you mean 'haswell'"),
        (["which", SONAME, "--cpu", "/nonexistent/cpuinfo"], "does not exist"),
        (["which", SONAME, "--cpu", "haswell", "--root", "/nonexistent-root"], "does not exist"),
        (["which", SONAME, "--glibc-tunables", "-AVX2"], "glibc.cpu.hwcaps=-AVX2"),
        (["cpus", "--arch", "arm64"], "no glibc-hwcaps"),
        (["which", SONAME, "--arch", "arm64"], "no glibc-hwcaps"),
        (["cpus", "--cpu", "zen9"], "unknown CPU"),
    ],
)
def test_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hwcapdeb: error: "), err
    assert needle in err
    assert "Traceback" not in err + out


def test_unreadable_dump(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.write_text("nothing useful\n")
    code, _, err = run(capsys, "which", SONAME, "--cpu", str(dump))
    assert code == 2 and err.count("\n") == 1 and "neither" in err
    dump.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        code, _, err = run(capsys, "which", SONAME, "--cpu", str(dump))
        assert code == 2 and err.count("\n") == 1


@pytest.mark.skipif(not os.path.exists("/lib64/ld-linux-x86-64.so.2"), reason="amd64 only")
def test_which_host_agrees_with_real_loader(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    code, out, err = run(capsys, "which", SONAME, "--library-path", str(lib))
    assert code == 0, err
    assert out.splitlines()[-1] == "real loader: agrees"
    assert f"{SONAME} => {lib}" in out


@pytest.mark.skipif(not os.path.exists("/lib64/ld-linux-x86-64.so.2"), reason="amd64 only")
def test_which_json(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    code, out, _ = run(capsys, "which", SONAME, "--library-path", str(lib), "--json",
                       "--glibc-tunables", "glibc.cpu.hwcaps=-AVX2")
    doc = json.loads(out)
    assert code == 0
    assert {"version", "path", "level", "trace", "cpu"} <= doc.keys()
    # -AVX2 caps the choice at x86-64-v2 (lower only on a CPU without SSE4.2)
    level = doc["level"]
    assert level in ("x86-64-v2", "baseline")
    where = lib if level == "baseline" else lib / "glibc-hwcaps" / level
    assert doc["path"] == str(where / SONAME)
    assert doc["real_loader"]["agrees"] is True
    assert doc["real_loader"]["path"] == doc["path"]
    assert doc["cpu"]["tunables"] == "glibc.cpu.hwcaps=-AVX2"


def test_which_named_cpu_not_loaded_exits_1(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    code, out, _ = run(capsys, "which", "libnothere.so.9", "--cpu", "haswell",
                       "--library-path", str(lib), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["path"] is None and doc["error"]
    if shutil.which("qemu-x86_64"):
        assert doc["real_loader"]["agrees"] is True
        assert doc["real_loader"]["qemu_cpu"] == "Haswell"


def test_which_named_cpu_is_checked_under_qemu(
    capsys: pytest.CaptureFixture[str], lib: Path
) -> None:
    if not shutil.which("qemu-x86_64"):
        pytest.skip("needs qemu-user")
    code, out, _ = run(capsys, "which", SONAME, "--cpu", "nehalem", "--library-path", str(lib))
    assert code == 0
    assert out.splitlines() == [
        f"{SONAME} => {lib}/glibc-hwcaps/x86-64-v2/{SONAME} (x86-64-v2)",
        "real loader (qemu-x86_64 -cpu Nehalem): agrees",
    ]
    code, out, _ = run(capsys, "which", SONAME, "--cpu", "zen2", "--library-path", str(lib))
    assert code == 0 and "real loader" not in out  # no qemu model for zen2


def test_which_verbose_trace(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    code, out, _ = run(capsys, "which", SONAME, "--cpu", "nehalem", "--library-path", str(lib),
                       "-v")
    assert code == 0
    assert "not-searched" in out and "CPU lacks AVX, AVX2" in out
    assert any(line.endswith("(x86-64-v2)") for line in out.splitlines())


def test_cpus_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cpus", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["version"]
    by_name = {c["name"]: c for c in doc["cpus"]}
    assert by_name["haswell"]["highest_level"] == "x86-64-v3"
    assert by_name["haswell"]["missing_for_next"][0] == "AVX512F"
    assert by_name["zen4"]["highest_level"] == "x86-64-v4"
    assert "host" in by_name


def test_cpus_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cpus")
    assert code == 0
    assert any(line.split()[:2] == ["nehalem", "x86-64-v2"] for line in out.splitlines())


def test_cpus_other_arches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cpus", "--arch", "ppc64el", "--json")
    by_name = {c["name"]: c for c in json.loads(out)["cpus"]}
    assert code == 0 and by_name["power9"]["highest_level"] == "power9"
    assert by_name["power8"]["missing_for_next"] == ["ARCH_3_00", "IEEE128"]
    code, out, err = run(capsys, "which", "libfoo.so.1", "--arch", "s390x", "--cpu", "z18")
    assert code == 2 and err.count("\n") == 1 and "did you mean" in err


@pytest.mark.skipif(not os.path.exists("/lib64/ld-linux-x86-64.so.2"), reason="amd64 only")
def test_which_agrees_for_every_level_mask(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    """The CLI itself, for one mask per maskable feature of every level (from the level lists)."""
    from hwcapdeb.cpu import feature_table
    from hwcapdeb.profiles import architecture

    maskable = feature_table().maskable
    masks = [f"glibc.cpu.hwcaps=-{f}" for lv in architecture("amd64").all_levels
             for f in lv.adds if f in maskable]
    levels = set()
    for mask in masks:
        code, out, err = run(capsys, "which", SONAME, "--library-path", str(lib), "--json",
                             "--glibc-tunables", mask)
        doc = json.loads(out)
        assert code == 0 and doc["real_loader"]["agrees"] is True, (mask, doc, err)
        levels.add(doc["level"])
    assert "baseline" in levels and len(levels) >= 2  # the masks really move the choice
