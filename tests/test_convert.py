"""hwcapdeb convert / revert on copies of examples/vecmath (fast: no builds).

The real builds of converted packages are in tests/test_convert_build.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
V3 = ["--profile", "x86-64-v3"]


def snapshot(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every entry under root: kind, content (or link target) and mode."""
    result = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            result[rel] = ("link", os.readlink(path).encode(), 0)
        elif path.is_dir():
            result[rel] = ("dir", b"", st.st_mode & 0o7777)
        else:
            result[rel] = ("file", path.read_bytes(), st.st_mode & 0o7777)
    return result


@pytest.fixture
def src(tmp_path: Path) -> Path:
    dest = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    if argv[0] == "convert" and "--mode" not in argv:
        # these tests are about embed mode (test_addon.py: the addon, the default for dh)
        argv = [*argv, "--mode", "embed"]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_changes_only_debian(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(src)
    code, out, err = run(["convert", str(src), *V3], capsys)
    assert (code, out, err) == (0, "", "")
    after = snapshot(src)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed
    assert all(path.startswith("debian/") for path in changed), changed
    assert after["debian/rules"][2] == 0o755
    # the maintainer's rules are kept byte for byte, mode too
    assert after["debian/hwcapdeb/maintainer.rules"] == before["debian/rules"]
    assert b"include debian/hwcapdeb/maintainer.rules" in after["debian/rules"][1]


def test_convert_twice_is_convert_once(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["convert", str(src), "--profile", "x86-64-v2,x86-64-v3"], capsys)[0] == 0
    once = snapshot(src)
    assert run(["convert", str(src), "-p", "x86-64-v2", "-p", "v3"], capsys)[0] == 0
    assert snapshot(src) == once


def test_convert_with_other_options_equals_fresh_convert(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh"
    shutil.copytree(EXAMPLE, fresh, symlinks=True)
    opts = ["-p", "x86-64-v4", "--layout", "split", "--version-suffix", "+hw1"]
    assert run(["convert", str(src), "-p", "x86-64-v2", "--version-suffix", "+hw1"], capsys)[0] == 0
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    assert run(["convert", str(fresh), *opts], capsys)[0] == 0
    a, b = snapshot(src), snapshot(fresh)
    # the changelog date is the first conversion's in both; everything else equal
    assert a.keys() == b.keys()
    for key in a:
        if key not in ("debian/changelog", "debian/hwcapdeb/manifest.json"):
            assert a[key] == b[key], key


def test_revert_restores_byte_identical(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(src / "debian" / "rules", 0o744)  # an unusual mode must come back too
    before = snapshot(src)
    opts = ["-p", "x86-64-v2,x86-64-v3", "--layout", "split", "--version-suffix", "+hwcaps1"]
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    assert snapshot(src) != before
    code, _out, err = run(["revert", str(src)], capsys)
    assert (code, err) == (0, "")
    assert snapshot(src) == before


def test_revert_after_build_residue(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(src)
    assert run(["convert", str(src), *V3], capsys)[0] == 0
    logs = src / "debian" / "hwcapdeb" / "logs"
    logs.mkdir()
    (logs / "x86-64-v3.log").write_text("build output\n")
    assert run(["revert", str(src)], capsys)[0] == 0
    assert snapshot(src) == before


def test_revert_refuses_edited_files(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["convert", str(src), *V3, "--layout", "split"], capsys)[0] == 0
    control = src / "debian" / "control"
    control.write_text(control.read_text() + "\nPackage: extra\nArchitecture: all\n")
    before = snapshot(src)
    code, _out, err = run(["revert", str(src)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "debian/control was edited after conversion" in err
    assert snapshot(src) == before


def test_revert_refuses_unconverted(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["revert", str(src)], capsys)
    assert code == 2 and "not converted" in err


def test_dry_run_prints_diff_and_touches_nothing(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(src)
    code, out, err = run(["convert", str(src), *V3, "--layout", "split", "--dry-run"], capsys)
    assert code == 0 and err == ""
    assert snapshot(src) == before
    assert "--- a/debian/rules\n+++ b/debian/rules\n" in out
    assert "+++ b/debian/hwcapdeb/maintainer.rules" in out
    assert "+Package: libvecmath1-x86-64-v3" in out
    # the printed diff is the real change: patch applies it exactly
    subprocess.run(["patch", "-s", "-p1"], input=out, text=True, cwd=src, check=True)
    converted = src.parent / "converted"
    shutil.copytree(EXAMPLE, converted, symlinks=True)
    assert run(["convert", str(converted), *V3, "--layout", "split"], capsys)[0] == 0
    got, want = snapshot(src), snapshot(converted)
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}


def test_split_layout_control_and_triggers(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (src / "debian" / "control").read_text()
    assert (
        run(["convert", str(src), "-p", "x86-64-v3,x86-64-v4", "--layout", "split"], capsys)[0] == 0
    )
    control = (src / "debian" / "control").read_text()
    assert control.startswith(original)  # the maintainer's text is untouched
    stanza = control[len(original) :]
    assert "Package: libvecmath1-x86-64-v3\nArchitecture: amd64\nMulti-Arch: same\n" in stanza
    assert "Depends: libvecmath1 (= ${binary:Version}), ${shlibs:Depends}" in stanza
    assert "Replaces" not in stanza and "vecmath-bench-" not in stanza
    for level in ("x86-64-v3", "x86-64-v4"):
        triggers = (src / "debian" / f"libvecmath1-{level}.triggers").read_text()
        assert "activate-noawait ldconfig" in triggers.splitlines()
    # dpkg itself accepts the result
    out = subprocess.run(
        ["dpkg-architecture", "-qDEB_HOST_ARCH"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip()
    subprocess.run(["dpkg-checkbuilddeps", "-d", "debhelper-compat (= 13)"], cwd=src, check=False)
    listed = subprocess.run(
        ["dh_listpackages"], cwd=src, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "libvecmath1-x86-64-v4" in listed


def test_version_suffix_adds_changelog_entry(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (src / "debian" / "changelog").read_text()
    assert run(["convert", str(src), *V3, "--version-suffix", "+hwcaps1"], capsys)[0] == 0
    text = (src / "debian" / "changelog").read_text()
    assert text.endswith(original)
    parsed = subprocess.run(
        ["dpkg-parsechangelog", "-S", "Version"],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    )
    assert parsed.stdout.strip() == "1.0.0+hwcaps1"


# --- refusals: one line on stderr, exit 2, tree untouched ----------------------------


def refuse(src: Path, argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    before = snapshot(src)
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert err.startswith("hwcapdeb: error: ") and err.count("\n") == 1, err
    assert needle in err
    assert "Traceback" not in err
    assert snapshot(src) == before


def test_refuses_malformed_control(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control = src / "debian" / "control"
    control.write_text(control.read_text().replace("Package: vecmath-bench", "Package vecmath"))
    refuse(src, ["convert", str(src), *V3], capsys, "debian/control is malformed")


def test_refuses_control_in(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(src / "debian" / "control", src / "debian" / "control.in")
    refuse(src, ["convert", str(src), *V3], capsys, "generated from debian/control.in")


def test_refuses_do_not_edit_marker(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control = src / "debian" / "control"
    control.write_text("# DO NOT EDIT: generated by debian/rules\n" + control.read_text())
    refuse(src, ["convert", str(src), *V3], capsys, "says it is generated")


def test_refuses_package_without_library(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control = src / "debian" / "control"
    text = control.read_text().split("\nPackage: libvecmath1\n")[0]
    text += "\nPackage: vecmath-tools\nSection: utils\nArchitecture: any\nDescription: x\n y\n"
    control.write_text(text)
    (src / "debian" / "libvecmath1.symbols").unlink()
    refuse(src, ["convert", str(src), *V3], capsys, "no shared library package")


def test_refuses_unknown_profile(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse(src, ["convert", str(src), "-p", "x86-64-v9"], capsys, "unknown profile")


def test_refuses_rules_without_debhelper(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = src / "debian" / "rules"
    rules.write_text("#!/usr/bin/make -f\n%:\n\t$(MAKE) $@\n")
    refuse(src, ["convert", str(src), *V3], capsys, "calls no debhelper command")


def test_refuses_missing_debian_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Makefile").write_text("all:\n")
    refuse(tmp_path, ["convert", str(tmp_path), *V3], capsys, "has no debian/ directory")


def test_refuses_mixed_architectures(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse(src, ["convert", str(src), "-p", "x86-64-v3,power9"], capsys, "different architectures")


def test_refuses_bad_version_suffix(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse(src, ["convert", str(src), *V3, "--version-suffix", "~rc"], capsys, "not newer")
    refuse(src, ["convert", str(src), *V3, "--version-suffix", "a b"], capsys, "version")


def test_generated_scripts_are_posix_sh(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["convert", str(src), "-p", "x86-64-v2,x86-64-v3,x86-64-v4"], capsys)[0] == 0
    script = src / "debian" / "hwcapdeb" / "variants.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    if shutil.which("dash"):
        subprocess.run(["dash", "-n", str(script)], check=True)
    text = script.read_text()
    code = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    assert not [ln for ln in code if "python" in ln]  # build chroots have no python3
    # embed mode copies dh-hwcaps' static script verbatim; the levels are data
    assert text == (Path(__file__).parent.parent / "dh-hwcaps" / "hwcaps-variants.sh").read_text()
    config = (src / "debian" / "hwcapdeb" / "hwcaps").read_text()
    for level in ("x86-64-v2", "x86-64-v3", "x86-64-v4"):
        assert f"Level: {level}\nCFlags: -march={level} -Wl,-z,{level}\n" in config


def test_converted_tree_makes_a_source_package(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dpkg-source -b/-x carry the conversion (what sbuild builds from)."""
    assert run(["convert", str(src), "-p", "x86-64-v3", "--layout", "split"], capsys)[0] == 0
    subprocess.run(["dpkg-source", "-b", src.name], cwd=src.parent, check=True, capture_output=True)
    (dsc,) = src.parent.glob("*.dsc")
    out = tmp_path / "unpacked"
    subprocess.run(["dpkg-source", "-x", dsc, out], check=True, capture_output=True)
    want = {k: v for k, v in snapshot(src).items() if k.startswith("debian/")}
    got = {k: v for k, v in snapshot(out).items() if k.startswith("debian/")}
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}
    assert got["debian/rules"][2] & 0o111  # still executable
    assert main(["revert", str(out)]) == 0
    original = {k: v for k, v in snapshot(EXAMPLE).items() if k.startswith("debian/")}
    assert {k: v[:2] for k, v in snapshot(out).items() if k.startswith("debian/")} == {
        k: v[:2] for k, v in original.items()
    }


def test_reconvert_keeps_changelog_entry(
    src: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = ["-p", "x86-64-v3", "--version-suffix", "+hwcaps1"]
    monkeypatch.setenv("DEBFULLNAME", "First Person")
    monkeypatch.setenv("DEBEMAIL", "first@example.org")
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    once = snapshot(src)
    assert b" -- First Person <first@example.org>  " in once["debian/changelog"][1]
    monkeypatch.setenv("DEBFULLNAME", "Someone Else")
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    assert snapshot(src) == once


# --- debian/rules (and friends) as symbolic links ------------------------------------


def link_to_shared(src: Path, rel: str, target: str) -> Path:
    """Move ``src/rel`` to where ``target`` (read from rel's directory) leads; link to it."""
    path = src / rel
    shared = path.parent / target
    shared.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, shared)
    path.symlink_to(target)
    return shared.resolve()


def make_n(src: Path, target: str) -> str:
    """What make would run for ``target`` of debian/rules (the include is followed for real)."""
    return subprocess.run(
        ["make", "-n", "-f", "debian/rules", target],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("where", ["in debian", "outside debian", "absolute"])
def test_symlinked_rules_round_trip(
    src: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {
        "in debian": "rules.shared",
        "outside debian": "../packaging/common.rules",
        "absolute": str(tmp_path / "elsewhere" / "rules"),
    }[where]
    shared = link_to_shared(src, "debian/rules", target)
    os.chmod(shared, 0o754)
    before = snapshot(src)
    shared_before = shared.read_bytes()

    assert run(["convert", str(src), "-p", "x86-64-v2,x86-64-v3"], capsys) == (0, "", "")
    once = snapshot(src)
    rules = src / "debian" / "rules"
    assert not rules.is_symlink() and once["debian/rules"][2] == 0o755
    assert b"include debian/hwcapdeb/maintainer.rules" in once["debian/rules"][1]
    # the stored original is a link to the same shared file, which is untouched
    stored = src / "debian" / "hwcapdeb" / "maintainer.rules"
    assert stored.is_symlink() and stored.resolve() == shared
    assert shared.read_bytes() == shared_before and (shared.stat().st_mode & 0o777) == 0o754
    # the wrapper really includes the maintainer's rules through that link
    installs = make_n(src, "override_dh_auto_install")
    assert "dh_auto_install -- prefix=/usr libdir=/usr/lib/" in installs

    assert run(["convert", str(src), "-p", "x86-64-v2,x86-64-v3"], capsys)[0] == 0
    assert snapshot(src) == once  # twice is once

    assert run(["revert", str(src)], capsys) == (0, "", "")
    assert snapshot(src) == before
    assert rules.is_symlink() and os.readlink(rules) == target
    assert shared.read_bytes() == shared_before


def test_symlinked_control_and_changelog_round_trip(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """split + --version-suffix rewrite debian/control and debian/changelog: links come back."""
    link_to_shared(src, "debian/rules", "rules.shared")
    shared_control = link_to_shared(src, "debian/control", "../packaging/control")
    link_to_shared(src, "debian/changelog", "../packaging/changelog")
    before = snapshot(src)
    opts = ["-p", "x86-64-v3", "--layout", "split", "--version-suffix", "+hwcaps1"]
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    once = snapshot(src)
    control = once["debian/control"]
    assert control[0] == "file" and control[2] == 0o644
    assert control[1].startswith(shared_control.read_bytes())
    assert b"Package: libvecmath1-x86-64-v3\n" in control[1]
    stored = once["debian/hwcapdeb/original/debian/control"]
    assert stored == ("link", b"../../../../packaging/control", 0)
    assert (src / "debian/hwcapdeb/original/debian/control").resolve() == shared_control
    version = subprocess.run(
        ["dpkg-parsechangelog", "-S", "Version"], cwd=src, capture_output=True, text=True
    )
    assert version.stdout.strip() == "1.0.0+hwcaps1"
    assert run(["convert", str(src), *opts], capsys)[0] == 0
    assert snapshot(src) == once
    assert run(["revert", str(src)], capsys)[0] == 0
    assert snapshot(src) == before


def test_symlinked_rules_edited_after_conversion(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared rules stay the maintainer's: edits reach the build and survive revert."""
    shared = link_to_shared(src, "debian/rules", "rules.shared")
    assert run(["convert", str(src), *V3], capsys)[0] == 0
    with shared.open("a") as f:
        f.write("\noverride_dh_auto_test:\n\techo edited-after-conversion\n")
    assert "echo edited-after-conversion" in make_n(src, "override_dh_auto_test")
    edited = shared.read_bytes()
    assert run(["revert", str(src)], capsys)[0] == 0
    assert os.readlink(src / "debian" / "rules") == "rules.shared"
    assert shared.read_bytes() == edited


def test_revert_refuses_a_repointed_stored_link(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_to_shared(src, "debian/rules", "rules.shared")
    assert run(["convert", str(src), *V3], capsys)[0] == 0
    stored = src / "debian" / "hwcapdeb" / "maintainer.rules"
    stored.unlink()
    stored.symlink_to("../control")
    refuse(src, ["revert", str(src)], capsys, "maintainer.rules was edited after conversion")


def test_revert_refuses_rules_replaced_by_a_link(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_to_shared(src, "debian/rules", "rules.shared")
    assert run(["convert", str(src), *V3], capsys)[0] == 0
    rules = src / "debian" / "rules"
    rules.unlink()
    rules.symlink_to("rules.shared")  # same target as the original, but the wrapper is gone
    refuse(src, ["revert", str(src)], capsys, "debian/rules was edited after conversion")


def test_refuses_dangling_rules_link(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (src / "debian" / "rules").unlink()
    (src / "debian" / "rules").symlink_to("/nonexistent/hwcapdeb-test/rules")
    refuse(
        src,
        ["convert", str(src), *V3],
        capsys,
        "debian/rules is a symbolic link to /nonexistent/hwcapdeb-test/rules, which is not a file",
    )


def test_dry_run_names_the_links(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link_to_shared(src, "debian/rules", "rules.shared")
    before = snapshot(src)
    code, out, err = run(["convert", str(src), *V3, "--dry-run"], capsys)
    assert (code, err) == (0, "")
    assert snapshot(src) == before
    assert "deleted symlink debian/rules -> rules.shared\n" in out
    assert "new symlink debian/hwcapdeb/maintainer.rules -> ../rules.shared\n" in out
    assert "+++ b/debian/rules\n" in out and "+include debian/hwcapdeb/maintainer.rules\n" in out


def test_symlinked_rules_survive_dpkg_source(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What sbuild builds from: dpkg-source -b/-x keep both links; revert there is exact."""
    link_to_shared(src, "debian/rules", "../packaging/rules")
    original = snapshot(src)
    assert run(["convert", str(src), *V3], capsys)[0] == 0
    subprocess.run(["dpkg-source", "-b", src.name], cwd=src.parent, check=True, capture_output=True)
    (dsc,) = src.parent.glob("*.dsc")
    out = tmp_path / "unpacked"
    subprocess.run(["dpkg-source", "-x", dsc, out], check=True, capture_output=True)
    assert os.readlink(out / "debian/hwcapdeb/maintainer.rules") == "../../packaging/rules"
    assert "dh_auto_install -- prefix=/usr" in make_n(out, "override_dh_auto_install")
    assert main(["revert", str(out)]) == 0
    assert {k: v[:2] for k, v in snapshot(out).items()} == {k: v[:2] for k, v in original.items()}
