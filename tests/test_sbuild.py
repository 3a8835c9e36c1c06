"""sbuild integration without running sbuild: the sbuildrc snippet (read back by
real perl), its checker, the pre-flight checks fed with honest inputs (a PATH
without the tools, a subuid file without a range, a closed port for the
archive), and the chroot-side apply script run by /bin/sh on a real tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.errors import InputError, MissingToolError, UsageError
from hwcapdeb.releases import host_codename
from hwcapdeb.sbuild.builder import (
    Preflight,
    SbuildBuilder,
    check_archive,
    check_subids,
    chroot_tarball,
    mmdebstrap_command,
    preflight,
    subid_range,
)
from hwcapdeb.sbuild.hooks import (
    APPLY_SCRIPT_TEXT,
    Delta,
    added_build_depends,
    chroot_exec,
    diff_debian,
    prepare,
)
from hwcapdeb.sbuild.rc import SbuildSettings, check_rc, read_rc, render

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "vecmath"

#: the release the pre-flight tests name: this machine's own (any known one would do)
DIST = host_codename()

needs_perl = pytest.mark.skipif(shutil.which("perl") is None, reason="perl not installed")


def tool_dir(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only ``programs`` (links to the real ones)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for program in programs:
        real = shutil.which(program)
        assert real, f"{program} must be installed for this test"
        (bindir / program).symlink_to(real)
    return str(bindir)


def subid_files(tmp_path: Path, line: str) -> tuple[Path, Path]:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text(line)
    subgid.write_text(line)
    return subuid, subgid


# --- the snippet and its checker ------------------------------------------


@needs_perl
@pytest.mark.parametrize("profiles", [(), ("x86-64-v3", "x86-64-v4")])
def test_rendered_snippet_is_valid_perl_and_passes_its_own_check(
    tmp_path: Path, profiles: tuple[str, ...]
) -> None:
    settings = SbuildSettings(profiles=profiles)  # hooks run this very hwcapdeb
    rc = tmp_path / "sbuildrc"
    rc.write_text(render(settings))
    values = read_rc(rc)
    assert values["chroot_mode"] == "unshare"
    commands = values["external_commands"]
    assert isinstance(commands, dict)
    verify = commands["post-build-commands"][0]
    assert "verify" in verify and verify[-1] == "%SBUILD_CHANGES"
    assert ("pre-build-commands" in commands) == bool(profiles)
    assert check_rc(values, settings) == []


@needs_perl
def test_check_reports_each_missing_piece(tmp_path: Path) -> None:
    rc = tmp_path / "sbuildrc"
    rc.write_text(
        "$chroot_mode = 'schroot';\n"
        "$external_commands = { 'post-build-commands' => ['hwcapdeb verify'] };\n1;\n"
    )
    tags = {f.tag for f in check_rc(read_rc(rc), SbuildSettings(profiles=("x86-64-v3",)), path="")}
    assert tags == {
        "wrong-chroot-mode",
        "verify-hook-without-changes",
        "hook-not-found",
        "hook-output-not-logged",
        "no-convert-hook",
        "no-apply-hook",
    }


@needs_perl
def test_check_of_an_empty_rc_wants_the_verify_hook(tmp_path: Path) -> None:
    rc = tmp_path / "sbuildrc"
    rc.write_text("1;\n")
    tags = [f.tag for f in check_rc(read_rc(rc), SbuildSettings())]
    assert tags == ["wrong-chroot-mode", "no-verify-hook"]


@needs_perl
def test_invalid_perl_is_a_one_line_error(tmp_path: Path) -> None:
    rc = tmp_path / "sbuildrc"
    rc.write_text("$chroot_mode = 'unshare'\n$x = ;\n")
    with pytest.raises(InputError, match="is not valid Perl"):
        read_rc(rc)


@needs_perl
def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = tmp_path / "sbuildrc"
    rc.write_text("1;\n")
    assert main(["sbuild-config", "--check", str(rc)]) == 1
    out = capsys.readouterr().out
    assert "no-verify-hook" in out and "wrong-chroot-mode" in out
    assert main(["sbuild-config", "--check", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "sbuild-config" in err


def test_cli_prints_the_snippet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sbuild-config", "--profile", "x86-64-v3"]) == 0
    out = capsys.readouterr().out
    assert "$chroot_mode = 'unshare';" in out
    assert "'sbuild-hook', 'prepare', '--profile', 'x86-64-v3'" in out
    assert "'%SBUILD_CHANGES'" in out


# --- pre-flight checks with honest inputs -----------------------------------


def test_missing_sbuild_names_the_package(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingToolError, match=r"'sbuild' was not found.*apt-get install sbuild"):
        preflight(Preflight(dist=DIST, arch="amd64", path=str(empty), mirror=None))


def test_missing_newuidmap_names_uidmap(tmp_path: Path) -> None:
    path = tool_dir(tmp_path, "sbuild", "dpkg-source")
    with pytest.raises(MissingToolError, match="apt-get install uidmap"):
        preflight(Preflight(dist=DIST, arch="amd64", path=path, mirror=None))


def test_no_subuid_range(tmp_path: Path) -> None:
    subuid, subgid = subid_files(tmp_path, "someoneelse:100000:65536\n")
    path = tool_dir(tmp_path, "sbuild", "dpkg-source", "newuidmap")
    with pytest.raises(MissingToolError, match=r"no subordinate uid range.*usermod --add-subuids"):
        preflight(
            Preflight(
                dist=DIST,
                arch="amd64",
                path=path,
                user="root",
                subuid=subuid,
                subgid=subgid,
                mirror=None,
            )
        )


def test_subid_ranges_by_name_or_uid_and_too_small(tmp_path: Path) -> None:
    subuid, subgid = subid_files(tmp_path, "0:100000:65536\n")
    assert subid_range(subuid, "root") == 65536
    check_subids("root", subuid, subgid)
    small, _ = subid_files(tmp_path, "root:100000:1000\n")
    with pytest.raises(MissingToolError, match="subordinate uid range"):
        check_subids("root", small, subgid)
    assert subid_range(tmp_path / "nonexistent", "root") == 0


def test_missing_tarball_says_how_to_make_it(tmp_path: Path) -> None:
    subuid, subgid = subid_files(tmp_path, "root:100000:65536\n")
    path = tool_dir(tmp_path, "sbuild", "dpkg-source", "newuidmap")
    base = dict(
        dist=DIST,
        arch="amd64",
        user="root",
        subuid=subuid,
        subgid=subgid,
        cache=tmp_path / "cache",
        mirror=None,
    )
    with pytest.raises(MissingToolError, match=rf"install mmdebstrap.*--variant=buildd .*{DIST}"):
        preflight(Preflight(path=path, **base))  # type: ignore[arg-type]
    with_mmdebstrap = tool_dir(tmp_path, "mmdebstrap")
    with pytest.raises(MissingToolError, match=r"create it with: mmdebstrap --variant=buildd"):
        preflight(Preflight(path=with_mmdebstrap, **base))  # type: ignore[arg-type]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{DIST}-amd64.tar.zst").write_bytes(b"")
    assert chroot_tarball(DIST, "amd64", tmp_path / "cache") is not None
    preflight(Preflight(path=with_mmdebstrap, **base))  # type: ignore[arg-type]


def test_unreachable_archive() -> None:
    # port 9 (discard) on localhost: nothing listens, the connection is refused at once
    with pytest.raises(MissingToolError, match="cannot reach the Debian archive at http://127"):
        check_archive("http://127.0.0.1:9/debian", DIST, timeout=5)


def test_mmdebstrap_command_has_source_lines() -> None:
    argv = mmdebstrap_command(DIST, "amd64", Path("/c"))
    assert argv[:2] == ["mmdebstrap", "--variant=buildd"]
    assert f"/c/{DIST}-amd64.tar.zst" in argv
    assert any(a.startswith("deb-src ") for a in argv)


def test_builder_argv_defaults_and_user_overrides(tmp_path: Path) -> None:
    from hwcapdeb.builders import BuildRequest

    builder = SbuildBuilder()
    pre = Preflight(dist=DIST, arch="amd64", mirror=None)
    request = BuildRequest(source=tmp_path, out_dir=tmp_path / "out")
    argv = builder.argv(tmp_path / "x.dsc", request, pre)
    assert "--chroot-mode=unshare" in argv and f"--dist={DIST}" in argv
    assert any(a.startswith("--post-build-commands=") and "%SBUILD_CHANGES" in a for a in argv)
    mine = BuildRequest(
        source=tmp_path,
        out_dir=tmp_path / "out",
        extra_args=("--chroot-mode=schroot", "-d", "otherdist", "--run-lintian"),
    )
    pre = builder._preflight(mine.extra_args)
    assert pre.dist == "otherdist" and pre.chroot_mode == "schroot"
    argv = builder.argv(tmp_path / "x.dsc", mine, pre)
    assert "--chroot-mode=unshare" not in argv and f"--dist={DIST}" not in argv
    assert argv.count("--dist=otherdist") == 1 and "-d" not in argv
    assert "--no-run-lintian" not in argv


# --- the conversion hook, without sbuild -----------------------------------


def test_diff_debian_and_added_build_depends(tmp_path: Path) -> None:
    before = tmp_path / "a" / "debian"
    after = tmp_path / "b" / "debian"
    shutil.copytree(EXAMPLE / "debian", before)
    shutil.copytree(EXAMPLE / "debian", after)
    (after / "rules").write_text((after / "rules").read_text() + "\n# changed\n")
    (after / "hwcapdeb.mk").write_text("X = 1\n")
    (after / "libvecmath1.symbols").unlink()
    control = (after / "control").read_text()
    (after / "control").write_text(
        control.replace("Build-Depends:", "Build-Depends: dh-exec (>= 0.3),", 1)
    )
    delta = diff_debian(before, after)
    assert set(delta.changed) == {"debian/rules", "debian/hwcapdeb.mk", "debian/control"}
    assert delta.removed == ("debian/libvecmath1.symbols",)
    assert added_build_depends(before, after) == ["dh-exec (>= 0.3)"]


def _stage(tmp_path: Path, tree: Path, identity: str, delta: Delta) -> Path:
    """Write what prepare() would send into the chroot, in a directory of ours."""
    import tarfile

    state = tmp_path / "state"
    state.mkdir()
    with tarfile.open(state / "delta.tar", "w") as tar:
        for rel in delta.changed:
            tar.add(tree / rel, arcname=rel)
    (state / "removed").write_text("".join(f"{r}\n" for r in delta.removed))
    (state / "changed").write_text("".join(f"{r}\n" for r in delta.changed))
    (state / "identity").write_text(identity + "\n")
    (state / "profiles").write_text("x86-64-v3\n")
    (state / "build-depends").write_text("")
    (state / "apply").write_text(APPLY_SCRIPT_TEXT)
    return state


def _run_apply(state: Path, tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(state / "apply"), str(tree)],
        env={**os.environ, "HWCAPDEB_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_apply_script_applies_the_delta_with_sh_only(tmp_path: Path) -> None:
    converted = tmp_path / "converted"
    shutil.copytree(EXAMPLE, converted)
    (converted / "debian" / "hwcapdeb.mk").write_text("LEVELS = x86-64-v3\n")
    (converted / "debian" / "libvecmath1.symbols").unlink()
    delta = Delta(("debian/hwcapdeb.mk",), ("debian/libvecmath1.symbols",))
    state = _stage(tmp_path, converted, "vecmath_1.0-1", delta)
    target = tmp_path / "pkgbuild"
    shutil.copytree(EXAMPLE, target)
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(EXAMPLE / "debian" / "changelog"), "-S", "Version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (state / "identity").write_text(f"vecmath_{version}\n")
    result = _run_apply(state, target)
    assert result.returncode == 0, result.stderr
    assert "hwcapdeb: converted vecmath_" in result.stdout
    assert (target / "debian" / "hwcapdeb.mk").read_text() == "LEVELS = x86-64-v3\n"
    assert not (target / "debian" / "libvecmath1.symbols").exists()
    assert (target / "debian" / "rules").read_text() == (EXAMPLE / "debian" / "rules").read_text()


def test_apply_script_refuses_another_version(tmp_path: Path) -> None:
    target = tmp_path / "pkgbuild"
    shutil.copytree(EXAMPLE, target)
    state = _stage(tmp_path, target, "vecmath_0.0-0", Delta((), ()))
    result = _run_apply(state, target)
    assert result.returncode == 1
    assert "prepared conversion is for vecmath_0.0-0, but sbuild unpacked vecmath_" in result.stderr


def test_apply_script_without_prepare_says_what_to_add(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "apply").write_text(APPLY_SCRIPT_TEXT)
    result = _run_apply(state, tmp_path)
    assert result.returncode == 1
    assert "sbuild-hook prepare" in result.stderr


def test_prepare_refuses_unsubstituted_escapes() -> None:
    with pytest.raises(UsageError, match="bare source name"):
        prepare("%SBUILD_DSC", ["schroot", "--"], ["x86-64-v3"], "amd64")
    for words in (["%SBUILD_CHROOT_EXEC"], ["env"], ["sh", "-c", "x"]):
        with pytest.raises(UsageError, match="no chroot command"):
            chroot_exec(words)
    assert chroot_exec(["env PATH=/bin 'a b' --"]) == ["env", "PATH=/bin", "a b", "--"]


# --- campaign options -------------------------------------------------------


def test_package_options_apply_per_source(tmp_path: Path) -> None:
    from hwcapdeb.sbuild.hooks import CampaignOptions

    file = tmp_path / "packages"
    file.write_text(
        "Source: xxhash\nComment: upstream's dispatcher refuses -mavx\n"
        "Variant-Make-Vars: DISPATCH=0\n\n"
        "Source: zlib\nLayout: split\n"
    )
    base = CampaignOptions(variant_env=("A=1",), package_options=file)
    xxhash = base.for_source("xxhash")
    assert xxhash.variant_make_vars == ("DISPATCH=0",) and xxhash.variant_env == ("A=1",)
    assert base.for_source("zlib").layout == "split"
    assert base.for_source("lz4") is base


def test_package_options_typo_is_a_one_line_error(tmp_path: Path) -> None:
    from hwcapdeb.sbuild.hooks import CampaignOptions

    file = tmp_path / "packages"
    file.write_text("Source: xxhash\nVariant-Make-Var: DISPATCH=0\n")
    with pytest.raises(InputError, match="unknown field Variant-Make-Var"):
        CampaignOptions(package_options=file).for_source("xxhash")


@needs_perl
def test_snippet_carries_campaign_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = tmp_path / "packages"
    options.write_text("Source: xxhash\nVariant-Make-Vars: DISPATCH=0\n")
    argv = ["sbuild-config", "--profile", "x86-64-v3", "--variant-env", "X=1"]
    assert main([*argv, "--package-options", str(options)]) == 0
    rc = tmp_path / "rc"
    rc.write_text(capsys.readouterr().out)
    values = read_rc(rc)
    commands = values["external_commands"]
    assert isinstance(commands, dict)
    prepare_argv = commands["pre-build-commands"][0]
    assert prepare_argv[-2:] == ["--", "%SBUILD_CHROOT_EXEC"]
    assert prepare_argv[prepare_argv.index("--variant-env") + 1] == "X=1"
    assert str(options) in prepare_argv
    settings = SbuildSettings(profiles=("x86-64-v3",))
    assert check_rc(values, settings) == []
    options.unlink()
    assert [f.tag for f in check_rc(values, settings)] == ["package-options-missing"]
    assert main(["sbuild-config", "--variant-env", "X=1"]) == 2


def test_build_with_sbuild_missing_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A PATH with dpkg's tools but no sbuild: the real CLI, failing before any build.
    monkeypatch.setenv(
        "PATH", tool_dir(tmp_path, "dpkg-architecture", "dpkg", "dpkg-source", "gcc")
    )
    argv = ["build", str(EXAMPLE), "--profile", "x86-64-v3", "--builder", "sbuild"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "hwcapdeb: error: 'sbuild' was not found on PATH; install it with 'apt-get install sbuild'"
    )


@needs_perl
def test_user_verify_hook_is_not_added_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hwcapdeb.builders import BuildRequest
    from hwcapdeb.sbuild.builder import configured_verify_hook

    home = tmp_path / "home"
    home.mkdir()
    assert not configured_verify_hook({"HOME": str(home)})
    (home / ".sbuildrc").write_text(render(SbuildSettings()))
    assert configured_verify_hook({"HOME": str(home)})
    request = BuildRequest(source=tmp_path, out_dir=tmp_path / "out")
    pre = Preflight(dist=DIST, arch="amd64", mirror=None)
    monkeypatch.setenv("HOME", str(home))
    argv = SbuildBuilder().argv(tmp_path / "x.dsc", request, pre)
    assert not any(a.startswith("--post-build-commands") for a in argv)


@needs_perl
def test_hwcapdeb_environment_reaches_sbuild_config(tmp_path: Path) -> None:
    from hwcapdeb.sbuild.builder import _build_environment_rc

    user = tmp_path / "user.rc"
    user.write_text("$build_environment = { 'KEEP' => 'me' };\n$chroot_mode = 'unshare';\n1;\n")
    rc = tmp_path / "rc"
    rc.write_text(_build_environment_rc({"HWCAPDEB_VARIANT_TESTS": "it's"}, str(user)))
    printed = subprocess.run(
        [
            "perl",
            "-e",
            'do $ARGV[0]; print join(",", map { "$_=$build_environment->{$_}" } '
            'sort keys %$build_environment), ";$chroot_mode"',
            str(rc),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == "HWCAPDEB_VARIANT_TESTS=it's,KEEP=me;unshare"


def test_fetched_tar_is_extracted_inside_dest_only(tmp_path: Path) -> None:
    import io
    import tarfile

    from hwcapdeb.sbuild.hooks import _extract_plain_files

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("./x_1.dsc", "../escape", "/abs"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"ok"))
    buf.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(fileobj=buf) as tar:
        _extract_plain_files(tar, dest)
    assert (dest / "x_1.dsc").read_bytes() == b"ok"
    assert sorted(p.name for p in dest.iterdir()) == ["x_1.dsc"]
    assert not (tmp_path / "escape").exists()


def test_snippet_can_put_chroots_on_a_tmpfs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sbuild-config", "--tmpdir", str(tmp_path)]) == 0
    line = f"$unshare_tmpdir_template = '{tmp_path}/tmp.sbuild.XXXXXXXXXX';"
    assert line in capsys.readouterr().out.splitlines()
    assert main(["sbuild-config", "--tmpdir", str(tmp_path / "absent")]) == 2


def test_archive_check_uses_the_chroot_tarball_mirror(tmp_path: Path) -> None:
    import io
    import tarfile

    from hwcapdeb.sbuild.builder import chroot_mirror

    cache = tmp_path / "cache"
    cache.mkdir()
    sources = f"# mmdebstrap\ndeb [arch=amd64] http://127.0.0.1:9/debian {DIST} main\n".encode()
    with tarfile.open(cache / f"{DIST}-amd64.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("./etc/apt/sources.list")
        info.size = len(sources)
        tar.addfile(info, io.BytesIO(sources))
    assert chroot_mirror(cache / f"{DIST}-amd64.tar.gz") == "http://127.0.0.1:9/debian"
    subuid, subgid = subid_files(tmp_path, "root:100000:65536\n")
    path = tool_dir(tmp_path, "sbuild", "dpkg-source", "newuidmap")
    pre = Preflight(
        dist=DIST,
        arch="amd64",
        path=path,
        user="root",
        subuid=subuid,
        subgid=subgid,
        cache=cache,
    )
    with pytest.raises(MissingToolError, match=r"cannot reach the Debian archive at http://127\."):
        preflight(pre)
