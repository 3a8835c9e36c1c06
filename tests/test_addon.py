"""dh-hwcaps (addon mode) without package builds: static files, debian/hwcaps, convert.

The shell functions of dh-hwcaps/hwcaps-variants.sh run here against fake
``make`` and compilers; the perl configuration reader against good and bad
files; ``convert --mode addon|embed`` and ``revert`` on copies of
examples/vecmath.  Real addon-mode builds are in tests/test_addon_build.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.convert import addon_config
from tests.test_convert import EXAMPLE, snapshot

STATIC = Path(__file__).resolve().parent.parent / "dh-hwcaps"
SCRIPT = STATIC / "hwcaps-variants.sh"
COMMANDS = sorted(STATIC.glob("dh_hwcaps_*"))
PM = STATIC / "Debian" / "Debhelper" / "Sequence" / "hwcaps.pm"

GOOD = """\
# a comment
Architecture: amd64
Packages: libfoo1 foo-bin
Variant-Env: A=1 B=2
Variant-Make-Vars:
 DISPATCH=0
 OPT=-O3 -g

Level: x86-64-v3
CFlags: -march=x86-64-v3 -Wl,-z,x86-64-v3
LDFlags: -Wl,-z,x86-64-v3

Level: x86-64-v2
Profile: x86-64-v2
CFlags: -march=x86-64-v2
LDFlags: -Wl,-z,x86-64-v2
"""


@pytest.fixture
def src(tmp_path: Path) -> Path:
    dest = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- the static files -------------------------------------------------------


def test_architectures_data_matches_the_profiles() -> None:
    """dh-hwcaps/architectures is generated from profiles/arch: in sync."""
    assert (STATIC / "architectures").read_text() == addon_config.architectures_text()


def test_shell_files_are_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = [SCRIPT, STATIC.parent / "scripts" / "build-deb"]
    result = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            subprocess.run([shell, "-n", str(SCRIPT)], check=True)


def test_perl_files_compile_and_have_clean_pod() -> None:
    for path in [*COMMANDS, STATIC / "hwcaps-config", STATIC / "hwcaps-runpath", PM]:
        result = subprocess.run(
            ["perl", "-w", f"-I{STATIC}", "-c", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0 and "syntax OK" in result.stderr, result.stderr
        warnings = [ln for ln in result.stderr.splitlines() if "syntax OK" not in ln]
        assert not warnings, warnings
    assert len(COMMANDS) == 6
    for path in [*COMMANDS, STATIC / "dh_hwcaps.pod"]:
        result = subprocess.run(["podchecker", str(path)], capture_output=True, text=True)
        assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr


def test_sequence_addon_places_its_commands(src: Path) -> None:
    """dh --no-act with the addon: the commands sit where the issue says."""
    tree = src
    if True:
        env = {**os.environ, "PERL5LIB": str(STATIC), "PATH": f"{STATIC}:{os.environ['PATH']}"}
        seq = subprocess.run(
            ["dh", "binary", "--with", "hwcaps", "--no-act"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        cmds = [ln.split()[0] for ln in seq if ln.strip()]
        assert cmds.index("dh_hwcaps_snapshot") < cmds.index("dh_update_autotools_config")
        assert cmds.index("dh_auto_test") < cmds.index("dh_hwcaps_build") < cmds.index(
            "dh_prep"
        )
        assert cmds.index("dh_hwcaps_install") == cmds.index("dh_dwz") - 1
        assert any("dh_makeshlibs" in ln and "-X/glibc-hwcaps/" in ln for ln in seq)
        at = cmds.index("dh_makeshlibs")
        assert cmds[at - 1 : at + 2] == ["dh_hwcaps_stash", "dh_makeshlibs", "dh_hwcaps_unstash"]
        clean = subprocess.run(
            ["dh", "clean", "--with", "hwcaps", "--no-act"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert clean.index("dh_hwcaps_clean") == clean.index("dh_clean") - 1
        # a variant's own build: none of the addon's commands, nothing after dh_auto_install
        variant = subprocess.run(
            ["dh", "install-arch", "--with", "hwcaps", "--no-act"],
            cwd=tree,
            env={**env, "HWCAPDEB_STAGE": "variant"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert not [c for c in variant if c.startswith("dh_hwcaps")]
        assert variant[-1] == "override_dh_auto_install"  # vecmath overrides it


# --- debian/hwcaps ----------------------------------------------------------


def read_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "hwcaps"
    path.write_text(text)
    return subprocess.run(
        ["perl", str(STATIC / "hwcaps-config"), str(path), str(STATIC / "architectures")],
        capture_output=True,
        text=True,
    )


def shell_value(output: str, expr: str) -> str:
    return subprocess.run(
        ["sh", "-c", f'eval "$1"; {expr}', "sh", output], capture_output=True, text=True
    ).stdout


def test_config_reader_resolves_levels_in_rank_order(tmp_path: Path) -> None:
    result = read_config(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert shell_value(out, 'echo "$LEVELS|$LIB_PACKAGES|$ISA_MARKER|$LOADER"') == (
        "x86-64-v2 x86-64-v3|libfoo1 foo-bin|x86|/lib64/ld-linux-x86-64.so.2\n"
    )
    assert shell_value(out, 'echo "$HWCAPS_ABOVE_x86_64_v2|$HWCAPS_QEMU_CPU_x86_64_v3"') == (
        "x86-64-v3 x86-64-v4|Haswell\n"
    )
    # items with spaces survive as one word each
    assert shell_value(out, 'eval "set -- $VARIANT_MAKE_VARS"; printf "<%s>" "$@"') == (
        "<DISPATCH=0><OPT=-O3 -g>"
    )


@pytest.mark.parametrize(
    ("edit", "field", "fix"),
    [
        (("Packages:", "Pakages:"), "field Pakages (first stanza) is unknown", "fields there are"),
        (("CFlags: -march=x86-64-v2\n", "CFlags: -march=x86-64-v2\nFlavour: x\n"),
         "field Flavour (stanza 3) is unknown", "fields of a level stanza"),
        (("Level: x86-64-v2", "Level: x86-64-v7"), "field Level: x86-64-v7 is unknown",
         "use one of x86-64-v2 x86-64-v3 x86-64-v4"),
        (("Level: x86-64-v2", "Level: power9"), "field Level: power9 is a level of ppc64el",
         "use one of"),
        (("LDFlags: -Wl,-z,x86-64-v2", "LDFlags: -O2"),
         "field LDFlags (x86-64-v2) loses the level's ISA marker", "add -Wl,-z,x86-64-v2"),
        (("LDFlags: -Wl,-z,x86-64-v2", "LDFlags: -Wl,-z,x86-64-v2 -Wl,-z,x86-64-v4"),
         "(x86-64-v2) mark the level x86-64-v4", "use -Wl,-z,x86-64-v2"),
        (("Architecture: amd64", "Architecture: arm64"), "field Architecture: arm64 has no",
         "use one of amd64, ppc64el, s390x"),
        (("Variant-Env: A=1 B=2", "Variant-Env: A=$(x)"), "field Variant-Env: 'A=$(x)'",
         "NAME=VALUE"),
        (("Packages: libfoo1", "Packages: ../x"), "field Packages: '../x' is not", "5.6.1"),
    ],
)
def test_malformed_config_is_one_line_naming_file_field_and_fix(
    tmp_path: Path, edit: tuple[str, str], field: str, fix: str
) -> None:
    assert edit[0] in GOOD
    result = read_config(tmp_path, GOOD.replace(edit[0], edit[1], 1))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"dh_hwcaps: error: {tmp_path / 'hwcaps'}: ")
    assert field in lines[0] and fix in lines[0], lines[0]


# --- the shell functions, with a fake make ----------------------------------


FAKE_MAKE = """#!/bin/sh
# records how the variant build was started; the rules' database from the real make
[ "$1" != -Rrnpsf ] || exec /usr/bin/make "$@"
{
	echo "argv=$*"
	echo "CFLAGS=${CFLAGS-unset}"
	echo "DEB_CFLAGS_APPEND=$DEB_CFLAGS_APPEND"
	echo "DEB_LDFLAGS_APPEND=$DEB_LDFLAGS_APPEND"
	echo "DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS"
	echo "DEB_BUILD_PROFILES=$DEB_BUILD_PROFILES"
	echo "HWCAPDEB_STAGE=$HWCAPDEB_STAGE HWCAPDEB_VARIANT=$HWCAPDEB_VARIANT"
	echo "A=$A B=$B MODE=$HWCAPS_MODE"
} >"$FAKE_RECORD.$HWCAPDEB_VARIANT"
exit "${FAKE_STATUS:-0}"
"""


def shell(tree: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in ``tree`` with hwcaps-variants.sh's functions loaded (addon mode)."""
    return subprocess.run(
        ["sh", "-c", f'. "$SCRIPT" && load_config && {script}'],
        cwd=tree,
        env={
            "PATH": os.environ["PATH"],
            "SCRIPT": str(SCRIPT),
            "HWCAPS_LIB_ONLY": "1",
            "HWCAPS_DATADIR": str(STATIC),
            "HWCAPS_MODE": "addon",
            **env,
        },
        capture_output=True,
        text=True,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "debian").mkdir(parents=True)
    (root / "debian" / "hwcaps").write_text(GOOD)
    (root / "debian" / "rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    (root / "src.c").write_text("int f(void) { return 1; }\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "make").write_text(FAKE_MAKE)
    (bindir / "make").chmod(0o755)
    return root


def test_variant_builds_get_level_flags_in_a_fresh_environment(tree: Path) -> None:
    record = tree.parent / "record"
    env = {
        "PATH": f"{tree.parent / 'bin'}:{os.environ['PATH']}",
        "FAKE_RECORD": str(record),
        "CFLAGS": "-O2 -from-dh",
        "DEB_BUILD_OPTIONS": "parallel=4 terse",
        "HWCAPDEB_VARIANT_TESTS": "none",
        "DEB_HOST_ARCH": "amd64",
    }
    result = shell(tree, "cmd_snapshot && cmd_variants", env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "hwcapdeb: 2 variants build at a time (parallel=2 each)" in result.stdout
    assert "hwcapdeb: x86-64-v3: tests skipped: HWCAPDEB_VARIANT_TESTS=none" in result.stdout
    v2 = (record.parent / "record.x86-64-v2").read_text()
    assert "argv=-f debian/rules install-arch DISPATCH=0 OPT=-O3 -g" in v2
    assert "CFLAGS=unset" in v2  # dh's exported flags are gone: dpkg-buildflags runs again
    assert "DEB_CFLAGS_APPEND=-march=x86-64-v2\n" in v2
    assert "DEB_LDFLAGS_APPEND=-Wl,-z,x86-64-v2\n" in v2
    assert "DEB_BUILD_OPTIONS=terse parallel=2 nostrip nocheck\n" in v2
    assert "DEB_BUILD_PROFILES=nobiarch noudeb\n" in v2
    assert "HWCAPDEB_STAGE=variant HWCAPDEB_VARIANT=x86-64-v2" in v2
    assert "A=1 B=2 MODE=addon" in v2
    assert "DEB_CFLAGS_APPEND=-march=x86-64-v3 -Wl,-z,x86-64-v3\n" in (
        record.parent / "record.x86-64-v3"
    ).read_text()
    # each variant started from the pristine tree, in the hidden build root
    assert (tree / "debian/.hwcaps/.build/x86-64-v3/src.c").is_file()
    assert (tree / "debian/.hwcaps/stamps/variants").is_file()
    # a second run has nothing to do
    assert shell(tree, "cmd_variants", env).stdout == ""


def test_failed_variant_is_retried_then_named_with_its_log(tree: Path) -> None:
    env = {
        "PATH": f"{tree.parent / 'bin'}:{os.environ['PATH']}",
        "FAKE_RECORD": str(tree.parent / "record"),
        "FAKE_STATUS": "1",
        "HWCAPDEB_VARIANT_JOBS": "1",
        "HWCAPDEB_VARIANT_TESTS": "none",
    }
    result = shell(tree, "cmd_snapshot && cmd_variants", env)
    assert result.returncode != 0
    assert "x86-64-v2: build retried without the build profiles" in result.stdout
    assert (
        "hwcapdeb: error: x86-64-v2: the variant build failed; "
        "see debian/.hwcaps/logs/x86-64-v2.log" in result.stderr
    )
    assert "x86-64-v3" not in result.stdout  # one after the other: stopped at the first


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HWCAPDEB_VARIANT_TESTS": "none"}, "skip:HWCAPDEB_VARIANT_TESTS=none"),
        ({"DEB_BUILD_OPTIONS": "nocheck"}, "skip:nocheck in DEB_BUILD_OPTIONS"),
        ({"DEB_BUILD_ARCH": "amd64", "DEB_HOST_ARCH": "i386"}, "skip:cross build (amd64 to i386)"),
    ],
)
def test_test_mode(tree: Path, env: dict[str, str], expected: str) -> None:
    result = shell(tree, "test_mode x86-64-v3", env)
    assert result.stdout.strip() == expected, result.stderr


def test_variant_lanes_and_parallel_share(tree: Path) -> None:
    def lanes(env: dict[str, str]) -> str:
        result = shell(tree, 'echo "$(variant_lanes) $(variant_parallel 2)"', env)
        return result.stdout.strip()

    assert lanes({"DEB_BUILD_OPTIONS": "parallel=6"}) == "2 3"
    assert lanes({"DEB_BUILD_OPTIONS": "parallel=1"}) == "1 1"
    assert lanes({"HWCAPDEB_VARIANT_JOBS": "9"}) == "2"
    result = shell(tree, "variant_lanes", {"HWCAPDEB_VARIANT_JOBS": "x"})
    assert "HWCAPDEB_VARIANT_JOBS must be a number (got 'x')" in result.stderr


def compile_so(path: Path, body: str, flags: tuple[str, ...] = ()) -> None:
    source = path.with_suffix(".c")
    source.write_text(body)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", *flags, "-o", path, source],
        check=True,
    )


@pytest.mark.parametrize(
    ("body", "flags", "message"),
    [
        ("int f(void){return 2;}\nint g(void){return 3;}\n", ("-Wl,-z,x86-64-v3",), None),
        ("int f(void){return 2;}\n", ("-Wl,-z,x86-64-v3",), "lacks symbols the baseline exports"),
        ("int f(void){return 2;}\nint g(void){return 3;}\n", (), "has no x86-64-v3 ISA marker"),
        (
            "int f(void){return 2;}\nint g(void){return 3;}\n",
            ("-march=x86-64-v4", "-mneeded"),
            "carries an ISA marker for x86-64-v4",
        ),
    ],
)
def test_check_variant_file(
    tree: Path, body: str, flags: tuple[str, ...], message: str | None
) -> None:
    """ABI and marker checks on real (tiny) shared objects."""
    baseline = tree / "base.so"
    variant = tree / "variant.so"
    compile_so(baseline, "int f(void){return 1;}\nint g(void){return 1;}\n")
    compile_so(variant, body, flags)
    (tree / "debian/.hwcaps/stamps").mkdir(parents=True)
    result = shell(tree, "check_variant_file variant.so x86-64-v3 libfoo.so.1 base.so", {})
    if message is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert message in result.stderr, result.stderr


# --- convert --mode addon ---------------------------------------------------


def test_addon_diff_is_build_depends_plus_debian_hwcaps(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(src)
    assert run(["convert", str(src), "-p", "x86-64-v3,x86-64-v4"], capsys) == (0, "", "")
    after = snapshot(src)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"debian/control", "debian/hwcaps"}
    old = before["debian/control"][1].decode().splitlines()
    new = after["debian/control"][1].decode().splitlines()
    assert [(a, b) for a, b in zip(old, new, strict=True) if a != b] == [
        ("Build-Depends: debhelper-compat (= 13)",
         "Build-Depends: dh-sequence-hwcaps, debhelper-compat (= 13)")
    ]
    config = after["debian/hwcaps"][1].decode()
    assert "Architecture: amd64\nPackages: libvecmath1 vecmath-bench\n" in config
    assert "Level: x86-64-v4\nCFlags: -march=x86-64-v4 -Wl,-z,x86-64-v4\n" in config
    # the reader of dh-hwcaps accepts what convert writes
    result = read_config(src.parent, config)
    assert result.returncode == 0, result.stderr
    # idempotent, dry-run shows nothing more
    assert run(["convert", str(src), "-p", "x86-64-v3,x86-64-v4"], capsys) == (0, "", "")
    assert snapshot(src) == after
    assert run(["convert", str(src), "-p", "x86-64-v3,x86-64-v4", "-n"], capsys) == (0, "", "")
    # revert: byte for byte
    assert run(["revert", str(src)], capsys)[0] == 0
    assert snapshot(src) == before


def test_switching_modes_and_back(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(src)
    opts = ["-p", "x86-64-v3"]
    assert run(["convert", str(src), *opts, "--mode", "embed"], capsys)[0] == 0
    embedded = snapshot(src)
    assert "debian/hwcapdeb/variants.sh" in embedded
    assert run(["convert", str(src), *opts, "--mode", "addon"], capsys)[0] == 0
    after = snapshot(src)
    assert not [k for k in after if k.startswith("debian/hwcapdeb")]
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {
        "debian/control",
        "debian/hwcaps",
    }
    assert run(["convert", str(src), *opts, "--mode", "embed"], capsys)[0] == 0
    assert snapshot(src) == embedded
    assert run(["revert", str(src)], capsys)[0] == 0
    assert snapshot(src) == before


def test_revert_after_control_was_edited_keeps_the_edit(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    control = src / "debian" / "control"
    original = control.read_text()
    assert run(["convert", str(src), "-p", "x86-64-v3"], capsys)[0] == 0
    control.write_text(control.read_text().replace("Priority: optional", "Priority: extra"))
    assert run(["revert", str(src)], capsys)[0] == 0
    assert control.read_text() == original.replace("Priority: optional", "Priority: extra")
    assert not (src / "debian" / "hwcaps").exists()


def refuse(src: Path, argv: list[str], capsys: pytest.CaptureFixture[str], words: str) -> None:
    before = snapshot(src)
    code, out, err = run(argv, capsys)
    assert code == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert words in err, err
    assert "--mode embed" in err, err
    assert snapshot(src) == before


def test_addon_refuses_rules_without_dh(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = src / "debian" / "rules"
    rules.write_text(
        "#!/usr/bin/make -f\nbuild:\n\tmake\nbinary:\n\tdh_testroot\n\tdh_builddeb\nclean:\n"
    )
    refuse(src, ["convert", str(src), "-p", "v3", "--mode", "addon"], capsys, "dh's sequencer")
    # without --mode the default for such rules is embed
    assert run(["convert", str(src), "-p", "v3"], capsys)[0] == 0
    assert (src / "debian" / "hwcapdeb" / "variants.sh").is_file()


def test_addon_refuses_old_compat(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control = src / "debian" / "control"
    text = control.read_text().replace("debhelper-compat (= 13)", "debhelper-compat (= 9)")
    control.write_text(text)
    refuse(src, ["convert", str(src), "-p", "v3", "--mode", "addon"], capsys, "compat level 9")


def test_addon_refuses_split_layout(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse(
        src,
        ["convert", str(src), "-p", "v3", "--mode", "addon", "--layout", "split"],
        capsys,
        "split layout",
    )


def test_control_edit_is_exactly_reversible() -> None:
    for text in (
        "Source: a\nBuild-Depends: debhelper-compat (= 13)\n",
        "Source: a\nbuild-depends:\n debhelper-compat (= 13),\n zlib1g-dev\n\nPackage: a\n",
        "# comment\n\nSource: a\nBuild-Depends: x\nBuild-Depends-Indep: y\n",
    ):
        added = addon_config.add_build_dependency(text)
        assert addon_config.has_build_dependency(added)
        assert not addon_config.has_build_dependency(text)
        assert addon_config.remove_build_dependency(added) == text
        assert addon_config.add_build_dependency(added) == added


# --- the sbuild campaign ----------------------------------------------------


def test_campaign_in_addon_mode_sends_dh_hwcaps_into_the_chroot(tmp_path: Path) -> None:
    from hwcapdeb.profiles import ProfileRegistry
    from hwcapdeb.sbuild.hooks import APPLY_SCRIPT_TEXT, CampaignOptions, prepare_files

    work = tmp_path / "src"
    work.mkdir()
    shutil.copytree(EXAMPLE, work / "vecmath")
    subprocess.run(["dpkg-source", "-b", "vecmath"], cwd=work, check=True, capture_output=True)
    (dsc,) = work.glob("*.dsc")
    deb = tmp_path / "dh-hwcaps_0_all.deb"
    deb.write_bytes(b"a .deb")
    profiles = ProfileRegistry().resolve_many(["x86-64-v3"], "amd64")
    scratch = tmp_path / "work"
    scratch.mkdir()
    options = CampaignOptions(mode="addon", dh_hwcaps_deb=deb)
    prepared = prepare_files(dsc, profiles, scratch, options)
    assert sorted(prepared.delta.changed) == ["debian/control", "debian/hwcaps"]
    assert prepared.files["dh-hwcaps.deb"] == b"a .deb"
    assert prepared.build_depends == ()  # dh-hwcaps provides dh-sequence-hwcaps
    assert 'apt-get install -y --no-install-recommends \\\n    "$state/dh-hwcaps.deb"' in (
        APPLY_SCRIPT_TEXT
    )
    # the snippet passes the mode to the hook
    code = main(["sbuild-config", "--profile", "x86-64-v3", "--mode", "addon"])
    assert code == 0


# --- failure messages (issue 12) ----------------------------------------------


def test_failure_names_the_step_and_quotes_its_own_error_line(tmp_path: Path) -> None:
    """The variant was building when the baseline's dh_autoreconf failed: the message
    quotes the build log's error, not the variant's log, which ends well."""
    from hwcapdeb.builders.dpkg import BuildFailed
    from hwcapdeb.buildjob import VariantBuildFailed, failed_variant

    build_log = tmp_path / "pkg_1_amd64.build"
    build_log.write_text(
        " debian/rules binary\n"
        "hwcapdeb: x86-64-v3: build started (debian/rules install-arch, log ...)\n"
        "   dh_autoreconf\n"
        "find: './debian/hwcapdeb/.build/prepared/src/x.c': No such file or directory\n"
        "dh_autoreconf: error: find ! -ipath ./debian/* returned exit code 1\n"
        "make: *** [debian/rules:10: binary] Error 25\n"
    )
    variant_log = tmp_path / "x86-64-v3.log"
    variant_log.write_text("   dh_auto_build\n\tmake -j1\nmake[1]: Leaving directory '/x'\n")
    variant = failed_variant(build_log, ["x86-64-v3"])
    assert variant == "x86-64-v3"  # it was running
    cause = BuildFailed("dpkg-buildpackage exited with status 2", log=build_log, tail=[])
    err = VariantBuildFailed(cause, variant=variant, variant_log=variant_log)
    assert "at dh_autoreconf: find: './debian/hwcapdeb/.build/prepared/src/x.c': No such" in str(
        err
    )
    assert err.log == build_log  # the log shown is the one with the error
    assert "\n" not in str(err)
    # a variant whose own log has the error: that line, from its log
    variant_log.write_text("   dh_auto_build\nsrc/a.c:3:1: error: unknown type name 'x'\n")
    err = VariantBuildFailed(cause, variant=variant, variant_log=variant_log)
    assert "at dh_auto_build: src/a.c:3:1: error: unknown type name 'x'" in str(err)
    assert err.log == variant_log


# --- run paths of uninstalled libtool trees (issue 12) ------------------------


def test_runpath_into_the_build_tree_is_dropped_and_the_dependency_still_loads(
    tmp_path: Path,
) -> None:
    libs = tmp_path / "build" / "x86-64-v3" / ".libs"
    libs.mkdir(parents=True)
    (tmp_path / "dep.c").write_text("int dep(void) { return 7; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libdep.so.1", "-o", libs / "libdep.so.1",
         tmp_path / "dep.c"],
        check=True,
    )
    (tmp_path / "top.c").write_text("int dep(void);\nint top(void) { return dep(); }\n")
    top = tmp_path / "libtop.so.1"

    def link(runpath: str, *extra: str) -> None:
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-Wl,-soname,libtop.so.1", "-o", top,
             tmp_path / "top.c", f"-L{libs}", "-l:libdep.so.1", f"-Wl,-rpath,{runpath}",
             *extra],
            check=True,
        )

    def runpath() -> str:
        out = subprocess.run(["readelf", "-d", "-W", top], capture_output=True, text=True).stdout
        return "\n".join(ln for ln in out.splitlines() if "RUNPATH" in ln or "RPATH" in ln)

    tool = ["perl", str(STATIC / "hwcaps-runpath")]
    for extra in (("-Wl,--enable-new-dtags",), ("-Wl,--disable-new-dtags",)):
        link(f"{libs}:/usr/lib/x86_64-linux-gnu", *extra)
        assert str(libs) in runpath()
        result = subprocess.run(
            [*tool, top, "x86_64-linux-gnu", str(tmp_path / "build")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "dropped the build tree's run path" in result.stdout
        assert runpath() == ""
        # still a valid object: the loader resolves its dependency (here by the path given)
        listed = subprocess.run(
            ["/lib64/ld-linux-x86-64.so.2", "--library-path", str(libs), "--list", top],
            capture_output=True,
            text=True,
        )
        assert listed.returncode == 0 and f"libdep.so.1 => {libs}" in listed.stdout, listed
    # an entry outside the build tree that is no system directory: refused, file unchanged
    link(f"{libs}:/opt/vendor/lib")
    before = top.read_bytes()
    result = subprocess.run(
        [*tool, top, "x86_64-linux-gnu", str(tmp_path / "build")], capture_output=True, text=True
    )
    assert result.returncode == 3
    assert "beside /opt/vendor/lib, which must stay" in result.stdout
    assert top.read_bytes() == before
    # no run path into the build tree: nothing to do
    link("/usr/lib/x86_64-linux-gnu")
    before = top.read_bytes()
    result = subprocess.run(
        [*tool, top, "x86_64-linux-gnu", str(tmp_path / "build")], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, "") and top.read_bytes() == before


def test_non_utf8_control_after_addon_conversion_is_one_line(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["convert", str(src), "-p", "x86-64-v3"], capsys)[0] == 0
    control = src / "debian" / "control"
    control.write_bytes(control.read_bytes().replace(b"Priority: optional", b"Priority: \xff"))
    code, _out, err = run(["convert", str(src), "-p", "x86-64-v3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err


# --- the builders' dh-hwcaps ----------------------------------------------------


def test_dh_hwcaps_deb_from_the_environment_and_refusal_without_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hwcapdeb.builders import dh_hwcaps
    from hwcapdeb.errors import UsageError

    monkeypatch.setenv(dh_hwcaps.ENV, str(tmp_path / "missing.deb"))
    with pytest.raises(UsageError, match="which is not a file"):
        dh_hwcaps.find_deb()
    # a real .deb of dh-hwcaps' name and a newer version than any installed one
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: dh-hwcaps\nVersion: 999\nArchitecture: all\nMaintainer: x <x@example.org>\n"
        "Description: test\n"
    )
    deb = tmp_path / "dh-hwcaps_999_all.deb"
    subprocess.run(["dpkg-deb", "--build", root, deb], check=True, capture_output=True)
    monkeypatch.setenv(dh_hwcaps.ENV, str(deb))
    assert dh_hwcaps.find_deb() == deb
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UsageError) as caught:
        dh_hwcaps.ensure_installed(deb)
    assert f"run 'sudo apt-get install --yes {deb}'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_own_build_target_running_dh_is_served(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """libzstd's rules: 'build:' with the recipe 'dh $@' (dh's sequence runs)."""
    rules = src / "debian" / "rules"
    rules.write_text(rules.read_text() + "\nbuild:\n\tdh $@\n\n.PHONY: build\n")
    assert run(["convert", str(src), "-p", "v3", "--mode", "addon"], capsys)[0] == 0
    assert run(["revert", str(src)], capsys)[0] == 0
    rules.write_text(rules.read_text() + "\nbuild-arch:\n\t$(MAKE) all\n")
    refuse(src, ["convert", str(src), "-p", "v3", "--mode", "addon"], capsys, "own build target")
