"""Converted packages built for real with dpkg-buildpackage, then inspected.

examples/vecmath (dh, in-tree Makefile, maintainer overrides) and Debian's
own zlib (non-dh rules, apt-get source) are built unconverted and converted;
the .debs are unpacked and checked: glibc-hwcaps files and SONAME links, ISA
markers, shlibs/symbols/triggers identical to the unconverted build, the
variants' debug files in -dbgsym, and the real loader's choice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.elf import read_elf
from hwcapdeb.profiles import architecture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
AMD64 = architecture("amd64")
TRIPLET = AMD64.triplet
LOADER = AMD64.loader or "/lib64/ld-linux-x86-64.so.2"
ALL_LEVELS = ["x86-64-v2", "x86-64-v3", "x86-64-v4"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True
        ).stdout.strip()
        != "amd64",
        reason="the profiles used here are for amd64",
    ),
]


def supported_levels() -> list[str]:
    """Levels this CPU runs, from the real loader."""
    out = subprocess.run([LOADER, "--help"], capture_output=True, text=True).stdout
    return [lv for lv in ALL_LEVELS if re.search(rf"^\s+{lv} \(supported", out, re.M)]


@dataclass
class Built:
    tree: Path
    out: Path
    log: str

    def deb(self, package: str) -> Path:
        (found,) = self.out.glob(f"{package}_*.deb")
        return found

    def unpack(self, package: str) -> Path:
        dest = self.out / f"x-{package}"
        if not dest.exists():
            subprocess.run(["dpkg-deb", "-x", self.deb(package), dest], check=True)
        return dest

    def control(self, package: str, name: str) -> bytes | None:
        dest = self.out / f"c-{package}"
        if not dest.exists():
            subprocess.run(["dpkg-deb", "-e", self.deb(package), dest], check=True)
        path = dest / name
        return path.read_bytes() if path.exists() else None


def build(
    tree: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> Built:
    """dpkg-buildpackage -us -uc -b in tree; the results land in tree's parent."""
    result = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"],
        cwd=tree,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, log[-4000:]
    return Built(tree, tree.parent, log)


def convert(tree: Path, *args: str) -> None:
    mode = [] if "--mode" in args else ["--mode", "embed"]
    assert main(["convert", str(tree), *args, *mode]) == 0


def copy_example(base: Path, name: str) -> Path:
    dest = base / name / "vecmath"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


def add_to_rules(tree: Path, text: str) -> None:
    """Append maintainer targets (overrides, hooks) to the example's debian/rules."""
    rules = tree / "debian" / "rules"
    rules.write_text(rules.read_text() + "\n" + text)


@pytest.fixture(scope="module")
def vecmath(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Built]:
    base = tmp_path_factory.mktemp("vecmath")
    plain = build(copy_example(base, "plain"))
    tree = copy_example(base, "converted")
    convert(tree, "--profile", ",".join(ALL_LEVELS))
    return plain, build(tree)


def hwcaps_dir(root: Path, level: str, libdir: str = f"usr/lib/{TRIPLET}") -> Path:
    return root / libdir / "glibc-hwcaps" / level


def test_variants_installed_with_soname_links(vecmath: tuple[Built, Built]) -> None:
    _, conv = vecmath
    root = conv.unpack("libvecmath1")
    for level in ALL_LEVELS:
        d = hwcaps_dir(root, level)
        assert sorted(p.name for p in d.iterdir()) == ["libvecmath.so.1", "libvecmath.so.1.0.0"]
        assert os.readlink(d / "libvecmath.so.1") == "libvecmath.so.1.0.0"
        facts = read_elf(d / "libvecmath.so.1.0.0")
        assert facts.soname == "libvecmath.so.1"
        # the profiles mark at link time (-Wl,-z,<level>): exactly this level's bit
        assert facts.isa_needed == AMD64.level(level).marker_bit, level
        assert f"hwcapdeb: {level}: installed 1 libraries into libvecmath1" in conv.log
    baseline = read_elf(root / f"usr/lib/{TRIPLET}/libvecmath.so.1.0.0")
    assert not baseline.isa_needed  # the baseline build is unchanged: no marker


def test_no_dev_files_in_hwcaps_dirs(vecmath: tuple[Built, Built]) -> None:
    _, conv = vecmath
    for package in ("libvecmath1", "libvecmath-dev", "vecmath-bench"):
        root = conv.unpack(package)
        for path in root.rglob("*"):
            if "glibc-hwcaps" in path.parts:
                assert not path.name.endswith((".a", ".so", ".pc")), path
                assert package == "libvecmath1", path


def test_control_files_identical_to_unconverted_build(vecmath: tuple[Built, Built]) -> None:
    plain, conv = vecmath
    for name in ("shlibs", "symbols", "triggers"):
        assert conv.control("libvecmath1", name) == plain.control("libvecmath1", name), name
    assert b"activate-noawait ldconfig" in (conv.control("libvecmath1", "triggers") or b"")
    for package in ("libvecmath1", "libvecmath-dev", "vecmath-bench"):
        fields = ("Depends", "Pre-Depends", "Package", "Multi-Arch", "Provides")
        a, b = (
            {
                f: subprocess.run(
                    ["dpkg-deb", "-f", built.deb(package), f], capture_output=True, text=True
                ).stdout
                for f in fields
            }
            for built in (plain, conv)
        )
        assert a == b, package


def test_variant_debug_symbols_in_dbgsym(vecmath: tuple[Built, Built]) -> None:
    _, conv = vecmath
    lib = conv.unpack("libvecmath1")
    dbg = conv.unpack("libvecmath1-dbgsym")
    ids = set()
    for level in ALL_LEVELS:
        facts = read_elf(hwcaps_dir(lib, level) / "libvecmath.so.1.0.0")
        assert facts.build_id and not facts.has_debug_info  # stripped in the package
        ids.add(facts.build_id)
        debug = dbg / "usr/lib/debug/.build-id" / facts.build_id[:2] / f"{facts.build_id[2:]}.debug"
        assert debug.is_file(), level
    assert len(ids) == len(ALL_LEVELS)  # three different builds


def test_maintainer_flags_kept_and_level_flags_appended(vecmath: tuple[Built, Built]) -> None:
    _, conv = vecmath
    for level in ALL_LEVELS:
        log = (conv.tree / "debian/hwcapdeb/logs" / f"{level}.log").read_text()
        line = next(ln for ln in log.splitlines() if "-o vecmath.pic.o" in ln)
        # hardening=+all and DEB_CFLAGS_MAINT_APPEND (-Wall) from the maintainer's rules
        # plus the profile's flags (dpkg 1.21 puts DEB_CFLAGS_APPEND before MAINT_APPEND;
        # a maintainer -march would win, which the install step's marker check catches)
        assert "-fstack-protector-strong" in line and "-fPIC" in line
        assert f"-march={level} -Wl,-z,{level} -Wall" in line
        # the variant's own test suite ran with the variant library
        assert f"vecmath tests (library built for {level}): all passed" in log


def test_real_loader_picks_best_variant(vecmath: tuple[Built, Built]) -> None:
    _, conv = vecmath
    lib = conv.unpack("libvecmath1")
    bench = conv.unpack("vecmath-bench")
    libdir = lib / "usr/lib" / TRIPLET
    levels = supported_levels()
    best = levels[-1] if levels else "baseline"
    listed = subprocess.run(
        [LOADER, "--library-path", libdir, "--preload", "libvecmath.so.1", "--list", "/bin/true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    chosen = re.search(r"libvecmath\.so\.1 => (\S+)", listed)
    assert chosen
    expected = hwcaps_dir(lib, best) if best != "baseline" else libdir
    assert Path(chosen.group(1)).parent == expected
    # the program really runs the chosen code: the library names its level
    out = subprocess.run(
        [LOADER, "--library-path", libdir, bench / "usr/bin/vecmath-bench", "1000"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"level={best} " in out
    # masking AVX-512 makes the loader fall back to the v3 build
    if "x86-64-v4" in levels:
        masked = subprocess.run(
            [LOADER, "--library-path", libdir, bench / "usr/bin/vecmath-bench", "1000"],
            env={**os.environ, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "level=x86-64-v3 " in masked


def test_variant_tests_policy_and_progress_lines(tmp_path: Path) -> None:
    tree = copy_example(tmp_path, "none")
    convert(tree, "-p", "x86-64-v3", "--layout", "split")
    # HWCAPDEB_VARIANT_JOBS=2: the variant builds run beside the baseline build
    built = build(tree, {"HWCAPDEB_VARIANT_TESTS": "none", "HWCAPDEB_VARIANT_JOBS": "2"})
    assert "hwcapdeb: x86-64-v3: tests skipped: HWCAPDEB_VARIANT_TESTS=none" in built.log
    assert "hwcapdeb: x86-64-v3: build done" in built.log
    log = (tree / "debian/hwcapdeb/logs/x86-64-v3.log").read_text()
    assert "vecmath tests" not in log
    # split layout: the variant lives in its own package with its own ldconfig trigger
    root = built.unpack("libvecmath1-x86-64-v3")
    assert (hwcaps_dir(root, "x86-64-v3") / "libvecmath.so.1").is_symlink()
    assert not (built.unpack("libvecmath1") / f"usr/lib/{TRIPLET}/glibc-hwcaps").exists()
    assert built.control("libvecmath1-x86-64-v3", "triggers") is not None
    assert b"activate-noawait ldconfig" in (
        built.control("libvecmath1-x86-64-v3", "triggers") or b""
    )
    depends = subprocess.run(
        ["dpkg-deb", "-f", built.deb("libvecmath1-x86-64-v3"), "Depends"],
        capture_output=True,
        text=True,
    ).stdout
    assert "libvecmath1 (= 1.0.0)" in depends
    # no shlibs/symbols for the split package: dh_makeshlibs left the variant out
    assert built.control("libvecmath1-x86-64-v3", "shlibs") is None
    assert built.control("libvecmath1-x86-64-v3", "symbols") is None


def test_rules_ignoring_buildflags_fail_loudly(tmp_path: Path) -> None:
    tree = copy_example(tmp_path, "hardcoded")
    add_to_rules(tree, "override_dh_auto_build:\n\t$(MAKE) CFLAGS='-O2 -g' CPPFLAGS= LDFLAGS=\n")
    convert(tree, "-p", "x86-64-v3")
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"}, check=False)
    assert "hwcapdeb: error: x86-64-v3:" in built.log
    assert "has no x86-64-v3 ISA marker" in built.log
    assert not list(tmp_path.glob("hardcoded/*.deb"))


def test_other_architecture_builds_as_before(tmp_path: Path) -> None:
    """On an architecture other than the profiles', debian/rules is the maintainer's."""
    tree = copy_example(tmp_path, "arch")
    convert(tree, "-p", "x86-64-v3")

    def dry(arch: str) -> str:
        # MAKE=true: make -n still runs recipes that call $(MAKE); make them no-ops
        env = {**os.environ, "DEB_HOST_ARCH": arch}
        return subprocess.run(
            ["make", "-pn", "-f", "debian/rules", "build", "MAKE=true"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        ).stdout

    assert 'MAKE="true" sh debian/hwcapdeb/variants.sh build build' in dry("amd64")
    other = dry("arm64")
    assert "hwcapdeb/variants.sh" not in other
    assert re.search(r"^dh build$", other, re.M)  # the maintainer's dh sequence, as before


@pytest.fixture(scope="module")
def zlib_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("zlib-src")
    got = subprocess.run(
        ["apt-get", "source", "--download-only", "zlib"], cwd=base, capture_output=True, text=True
    )
    if got.returncode != 0:
        pytest.skip(f"apt-get source zlib failed (deb-src entry?): {got.stderr.strip()[-200:]}")
    (dsc,) = base.glob("zlib_*.dsc")
    return dsc


def unpack(dsc: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["dpkg-source", "-x", dsc, dest], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return dest


def test_zlib_non_dh_rules(zlib_source: Path, tmp_path: Path) -> None:
    env = {"DEB_BUILD_OPTIONS": "nocheck parallel=2", "DEB_BUILD_PROFILES": "nobiarch"}
    plain = build(unpack(zlib_source, tmp_path / "plain" / "zlib"), env)
    tree = unpack(zlib_source, tmp_path / "conv" / "zlib")
    before = {p: p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}
    convert(tree, "-p", "x86-64-v3,x86-64-v4")
    conv = build(tree, env)
    # non-dh rules, but no variant runs tests (nocheck): nothing can collide
    assert "2 variants build at a time beside the baseline" in conv.log
    root = conv.unpack("zlib1g")
    libs = sorted(p.name for p in (root / "lib" / TRIPLET).iterdir() if p.name.startswith("libz"))
    real = next(n for n in libs if not (root / "lib" / TRIPLET / n).is_symlink())
    for level in ("x86-64-v3", "x86-64-v4"):
        d = hwcaps_dir(root, level, f"lib/{TRIPLET}")
        assert sorted(p.name for p in d.iterdir()) == sorted(["libz.so.1", real])
        assert read_elf(d / real).isa_needed == AMD64.level(level).marker_bit
    for name in ("shlibs", "symbols", "triggers"):
        assert conv.control("zlib1g", name) == plain.control("zlib1g", name), name
    dev = conv.unpack("zlib1g-dev")
    assert not any("glibc-hwcaps" in p.parts for p in dev.rglob("*"))
    # clean + revert give back the unpacked source exactly
    subprocess.run(["fakeroot", "debian/rules", "clean"], cwd=tree, check=True, capture_output=True)
    assert main(["revert", str(tree)]) == 0
    after = {p: p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}
    assert after == before


def test_variant_with_different_abi_fails_loudly(tmp_path: Path) -> None:
    """Code that depends on ISA macros can drop an export in one variant only."""
    tree = copy_example(tmp_path, "abi")
    source = tree / "src" / "vecmath.c"
    extra = (
        "#ifndef __AVX2__\nint vm_sse_only(void);\nint vm_sse_only(void) { return 2; }\n#endif\n"
    )
    source.write_text(source.read_text() + extra)
    (tree / "debian" / "libvecmath1.symbols").unlink()  # else dpkg-gensymbols objects first
    convert(tree, "-p", "x86-64-v2,x86-64-v3")
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"}, check=False)
    assert "installed 1 libraries into libvecmath1" in built.log  # v2 was fine
    assert "hwcapdeb: error: x86-64-v3:" in built.log
    assert "lacks symbols the baseline exports: vm_sse_only" in built.log
    assert not list(tmp_path.glob("abi/*.deb"))


@pytest.mark.qemu
@pytest.mark.skipif(not shutil.which("qemu-x86_64"), reason="needs qemu-user")
def test_levels_this_cpu_lacks_use_qemu_or_are_skipped(tmp_path: Path) -> None:
    """GLIBC_TUNABLES masks AVX2, so ld.so --help calls v3 and v4 unsupported."""
    tree = copy_example(tmp_path, "masked")
    convert(tree, "-p", ",".join(ALL_LEVELS))
    masked = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}
    built = build(tree, masked)
    log = built.log
    assert "hwcapdeb: x86-64-v2: tests ran natively" in log
    assert "hwcapdeb: x86-64-v3: tests deferred: load check under qemu-x86_64 -cpu Haswell" in log
    assert "hwcapdeb: x86-64-v3: load check passed under qemu-x86_64 -cpu Haswell" in log
    assert (
        "hwcapdeb: x86-64-v4: tests skipped: this CPU does not support x86-64-v4 "
        "and qemu-user cannot emulate it" in log
    )
    v2_log = (tree / "debian/hwcapdeb/logs/x86-64-v2.log").read_text()
    v3_log = (tree / "debian/hwcapdeb/logs/x86-64-v3.log").read_text()
    assert "vecmath tests (library built for x86-64-v2): all passed" in v2_log
    assert "vecmath tests" not in v3_log
    # "all" refuses to skip: the build fails naming the level
    subprocess.run(["fakeroot", "debian/rules", "clean"], cwd=tree, check=True, capture_output=True)
    strict = build(tree, {**masked, "HWCAPDEB_VARIANT_TESTS": "all"}, check=False)
    assert "x86-64-v4: cannot run the tests: this CPU does not support x86-64-v4" in strict.log
    assert "dpkg-buildpackage: error" in strict.log


def test_rules_that_break_under_noudeb_are_built_again(tmp_path: Path) -> None:
    """A maintainer's build hook that needs the udeb, which the noudeb profile disables."""
    tree = copy_example(tmp_path, "noudeb")
    control = tree / "debian" / "control"
    control.write_text(
        control.read_text()
        + "\nPackage: libvecmath1-udeb\nPackage-Type: udeb\nBuild-Profiles: <!noudeb>\n"
        "Section: debian-installer\nArchitecture: any\nDescription: vecmath for d-i\n x\n"
    )
    add_to_rules(
        tree, "execute_after_dh_auto_build:\n\tdh_listpackages | grep -x libvecmath1-udeb\n"
    )
    (tree / "debian" / "libvecmath1-udeb.install").write_text(
        "usr/lib/${DEB_HOST_MULTIARCH}/libvecmath.so.*\n"
    )
    convert(tree, "-p", "x86-64-v3")
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"})
    assert (
        "hwcapdeb: x86-64-v3: build retried without the build profiles nobiarch noudeb" in built.log
    )
    assert "hwcapdeb: x86-64-v3: installed 1 libraries into libvecmath1" in built.log
    # the udeb keeps the baseline library only
    assert (
        "glibc-hwcaps"
        not in subprocess.run(
            ["dpkg-deb", "-c", next(built.out.glob("libvecmath1-udeb_*.udeb"))],
            capture_output=True,
            text=True,
        ).stdout
    )
    first = (tree / "debian/hwcapdeb/logs/x86-64-v3.log.1").read_text()
    assert "execute_after_dh_auto_build] Error 1" in first


def test_variant_install_sequence_stops_after_dh_auto_install(vecmath: tuple[Built, Built]) -> None:
    """The variants run the maintainer's build and install steps, no packaging."""
    _, conv = vecmath
    for level in ALL_LEVELS:
        log = (conv.tree / "debian/hwcapdeb/logs" / f"{level}.log").read_text()
        assert "debian/rules override_dh_auto_install" in log  # the maintainer's override
        for helper in (
            "dh_install ",
            "dh_installdocs",
            "dh_strip",
            "dh_makeshlibs",
            "dh_shlibdeps",
        ):
            assert helper not in log, (level, helper)


def _with_dispatched_avx2_object(tree: Path) -> None:
    """Like libb2/--enable-fat: the package compiles one object with its own -mavx2."""
    (tree / "src" / "fast_avx2.c").write_text(
        '__attribute__((visibility("hidden"))) int vm_fast_avx2(const int *a) {\n'
        "    int s = 0;\n    for (int i = 0; i < 64; i++) s += a[i];\n    return s;\n}\n"
    )
    makefile = tree / "Makefile"
    text = makefile.read_text()
    text = text.replace(
        "$(REALNAME): vecmath.pic.o\n",
        "fast_avx2.pic.o: src/fast_avx2.c\n"
        "\t$(CC) $(CPPFLAGS) $(CFLAGS) -O3 -mavx2 -fPIC -c -o $@ $<\n\n"
        "$(REALNAME): vecmath.pic.o fast_avx2.pic.o\n",
    )
    makefile.write_text(text)


def test_marker_above_the_variants_level_fails_loudly(tmp_path: Path) -> None:
    """-mneeded marks the package's own -mavx2 object v3: a v2 file glibc refuses on v2 CPUs."""
    tree = copy_example(tmp_path, "fat")
    _with_dispatched_avx2_object(tree)
    profile = tmp_path / "v2-mneeded.json"
    profile.write_text(
        '{"name": "v2-mneeded", "arch": "amd64", "level": "x86-64-v2",'
        ' "flags": {"gcc": {"cflags": ["-march=x86-64-v2", "-mneeded"], "ldflags": []}}}'
    )
    convert(tree, "-p", str(profile))
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"}, check=False)
    assert "hwcapdeb: error: x86-64-v2:" in built.log
    assert "carries an ISA marker for x86-64-v3" in built.log
    assert not list(tmp_path.glob("fat/*.deb"))


def test_builtin_profiles_build_such_packages(tmp_path: Path) -> None:
    """The built-in profiles mark at link time (-Wl,-z,x86-64-v2): exactly the v2 marker."""
    tree = copy_example(tmp_path, "fatok")
    _with_dispatched_avx2_object(tree)
    convert(tree, "-p", "x86-64-v2")
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"})
    variant = hwcaps_dir(built.unpack("libvecmath1"), "x86-64-v2") / "libvecmath.so.1"
    assert read_elf(variant.resolve()).isa_needed == 0x2  # exactly v2: loadable on v2 CPUs


def _with_exclusive_test_suite(tree: Path, guard: Path) -> None:
    """A test suite that fails if another one of the package runs at the same time.

    Like suites that bind a fixed port or use a fixed temporary file: mkdir of
    a shared directory fails while another suite holds it.
    """
    add_to_rules(
        tree,
        "override_dh_auto_test:\n"
        f"\tmkdir {guard}/running\n"
        f'\techo "$${{HWCAPDEB_VARIANT:-baseline}}" >>{guard}/suites\n'
        "\tsleep 2\n"
        f"\trmdir {guard}/running\n"
        "\tdh_auto_test\n",
    )


def test_parallel_variants_share_work_and_take_turns_for_tests(tmp_path: Path) -> None:
    """parallel=N: the variants build at once beside the baseline, their
    test suites (and the baseline's) one at a time, after one shared run of
    the steps before dh_auto_configure."""
    guard = tmp_path / "guard"
    guard.mkdir()
    tree = copy_example(tmp_path, "parallel")
    _with_exclusive_test_suite(tree, guard)
    # an autoconf script (that configures nothing): dh_autoreconf has work
    (tree / "configure.ac").write_text("AC_INIT([vecmath], [1.0.0])\nAC_OUTPUT\n")
    convert(tree, "--profile", ",".join(ALL_LEVELS))
    built = build(tree, {"DEB_BUILD_OPTIONS": "parallel=2", "HWCAPDEB_VARIANT_TESTS": "all"})
    # every suite ran, the baseline's and each variant's, none beside another
    assert sorted((guard / "suites").read_text().split()) == sorted(["baseline", *ALL_LEVELS])
    assert not (guard / "running").exists()
    assert "3 variants build at a time beside the baseline" in built.log
    assert "hwcapdeb: prepare: done, the variants start from its tree" in built.log
    # the builds overlapped: every variant started before the first finished
    lines = built.log.splitlines()
    variant = re.compile(r"^hwcapdeb: x86-64-v[234]: build (started|done)")
    started = [i for i, ln in enumerate(lines) if (m := variant.match(ln)) and m[1] == "started"]
    done = [i for i, ln in enumerate(lines) if (m := variant.match(ln)) and m[1] == "done"]
    assert len(started) == len(ALL_LEVELS) and len(done) == len(ALL_LEVELS)
    assert max(started) < min(done)
    # autoreconf ran once, in the shared tree, not per variant; configure per variant
    logs = tree / "debian/hwcapdeb/logs"
    assert "dh_autoreconf" in (logs / "prepare.log").read_text()
    for level in ALL_LEVELS:
        log = (logs / f"{level}.log").read_text()
        assert "dh_autoreconf" not in log and "dh_update_autotools_config" not in log
        assert "configure: creating ./config.status" in log  # the shared tree's configure
        assert "make -j1 " in log  # parallel=2 shared by 3 variants
    # the variants are the same as built one after the other
    root = built.unpack("libvecmath1")
    for level in ALL_LEVELS:
        assert (hwcaps_dir(root, level) / "libvecmath.so.1").is_symlink()


def test_parallel_variant_failure_releases_the_test_lock(tmp_path: Path) -> None:
    """A variant whose tests fail must not leave the others waiting for the lock."""
    tree = copy_example(tmp_path, "failing")
    add_to_rules(
        tree, 'override_dh_auto_test:\n\ttest "$$HWCAPDEB_VARIANT" != x86-64-v3\n\tdh_auto_test\n'
    )
    convert(tree, "--profile", ",".join(ALL_LEVELS))
    built = build(
        tree,
        {"DEB_BUILD_OPTIONS": "parallel=2", "HWCAPDEB_VARIANT_TESTS": "all"},
        check=False,
        timeout=600,  # a lock left held would make the other variants wait forever
    )
    assert "hwcapdeb: x86-64-v3: build failed" in built.log
    assert "hwcapdeb: x86-64-v2: build done" in built.log
    assert "hwcapdeb: x86-64-v4: build done" in built.log
    assert not list(tmp_path.glob("failing/*.deb"))


def test_runtime_aliases_of_a_library_follow_it_into_hwcaps(tmp_path: Path) -> None:
    """bzip2 ships libbz2.so.1 beside its SONAME libbz2.so.1.0: programs linked
    against such a name must find the variants too, not only the baseline."""
    tree = copy_example(tmp_path, "alias")
    (tree / "debian" / "libvecmath1.links").write_text(
        "usr/lib/${DEB_HOST_MULTIARCH}/libvecmath.so.1.0.0 "
        "usr/lib/${DEB_HOST_MULTIARCH}/libvecmath.so.1.0\n"
    )
    convert(tree, "--profile", "x86-64-v2")
    built = build(tree, {"DEB_BUILD_OPTIONS": "nocheck"})
    lib = built.unpack("libvecmath1")
    libdir = lib / "usr/lib" / TRIPLET
    hwcaps = hwcaps_dir(lib, "x86-64-v2")
    assert os.readlink(hwcaps / "libvecmath.so.1.0") == "libvecmath.so.1.0.0"
    assert os.readlink(hwcaps / "libvecmath.so.1") == "libvecmath.so.1.0.0"
    assert not (hwcaps / "libvecmath.so").exists()  # never a development link
    if "x86-64-v2" in supported_levels():
        listed = subprocess.run(
            [
                LOADER,
                "--library-path",
                libdir,
                "--preload",
                "libvecmath.so.1.0",
                "--list",
                "/bin/true",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{hwcaps}/libvecmath.so.1.0 " in listed


def test_parallel_build_twice_in_the_same_tree(tmp_path: Path) -> None:
    """dh_update_autotools_config in the baseline walks the whole tree while
    the variants' trees exist: it must not touch them, or it records them for
    restoring and the next 'debian/rules clean' fails on the vanished files."""
    tree = copy_example(tmp_path, "twice")
    guess = (Path("/usr/share/misc/config.guess")).read_text()
    aux = tree / "build-aux"
    aux.mkdir()
    # an outdated config.guess, which dh_update_autotools_config replaces
    (aux / "config.guess").write_text(
        re.sub(r"^timestamp='[^']*'", "timestamp='2000-01-01'", guess, count=1, flags=re.M)
    )
    (aux / "config.guess").chmod(0o755)
    (tree / "debian" / "source" / "options").write_text("extend-diff-ignore = build-aux\n")
    convert(tree, "--profile", ",".join(ALL_LEVELS))
    env = {"DEB_BUILD_OPTIONS": "parallel=2 nocheck"}
    first = build(tree, env)
    assert "3 variants build at a time" in first.log
    recorded = "".join(
        p.read_text(errors="replace")
        for p in (tree / "debian").rglob("*")
        if p.is_file() and ".debhelper" in p.parts
    )
    assert "hwcapdeb/.build" not in recorded and "hwcapdeb/build" not in recorded
    build(tree, env)  # runs debian/rules clean first


def test_non_dh_rules_with_variant_tests_build_one_after_the_other(
    zlib_source: Path, tmp_path: Path
) -> None:
    """zlib's rules are not dh: no lock can wrap its test runs, so variants that
    run the test suite build after the baseline, one at a time, even with -j2."""
    tree = unpack(zlib_source, tmp_path / "seq" / "zlib")
    convert(tree, "-p", "x86-64-v2,x86-64-v3")
    built = build(
        tree,
        {"DEB_BUILD_OPTIONS": "parallel=2", "DEB_BUILD_PROFILES": "nobiarch"},
    )
    assert "variants build at a time" not in built.log
    lines = built.log.splitlines()
    v2_done = lines.index("hwcapdeb: x86-64-v2: build done")
    v3_started = next(
        i for i, ln in enumerate(lines) if ln.startswith("hwcapdeb: x86-64-v3: build started")
    )
    assert v2_done < v3_started
    if "x86-64-v3" in supported_levels():
        assert "hwcapdeb: x86-64-v3: tests ran natively" in built.log


RACE_RULES = (
    "\n# issue 12, provoked in order rather than by luck (RACE_DIR: a directory for the\n"
    "# handshake).  A variant makes a file in its tree and waits; the baseline lists\n"
    "# its whole tree (as dh_autoreconf's find does), lets the variant delete the\n"
    "# file, then reads every listed file (dh_autoreconf's md5sum).\n"
    "WAIT = n=0; until [ -e $$RACE_DIR/$(1) ] || [ $$n -ge 300 ]; do sleep 0.1; n=$$((n+1)); done\n"
    "execute_before_dh_auto_build:\n"
    '\tif [ -n "$$HWCAPDEB_VARIANT" ]; then \\\n'
    "\t  mkdir -p churn && touch churn/tmp $$RACE_DIR/created-$$HWCAPDEB_VARIANT; \\\n"
    "\t  $(call WAIT,listed); \\\n"
    "\t  rm -rf churn && touch $$RACE_DIR/removed-$$HWCAPDEB_VARIANT; \\\n"
    "\tfi\n"
    "execute_before_dh_auto_configure:\n"
    '\tif [ -z "$$HWCAPDEB_VARIANT" ]; then \\\n'
    "\t  $(call WAIT,created-x86-64-v3); \\\n"
    "\t  find . -type f >$$RACE_DIR/list && touch $$RACE_DIR/listed; \\\n"
    "\t  $(call WAIT,removed-x86-64-v3); \\\n"
    "\t  xargs md5sum <$$RACE_DIR/list >/dev/null; \\\n"
    "\tfi\n"
)


def test_variant_trees_never_change_under_the_baselines_tree_walkers(tmp_path: Path) -> None:
    """The race seen in the corpus test, provoked: a file of a variant's tree is
    listed by the baseline's tree walker and gone when the walker reads it."""
    tree = copy_example(tmp_path, "race")
    add_to_rules(tree, RACE_RULES)
    convert(tree, "--profile", "x86-64-v2,x86-64-v3")
    race = tmp_path / "handshake"
    race.mkdir()
    env = {"HWCAPDEB_VARIANT_JOBS": "2", "HWCAPDEB_VARIANT_TESTS": "none", "RACE_DIR": str(race)}
    built = build(tree, env)
    assert "2 variants build at a time beside the baseline" in built.log
    # the handshake happened: the walker listed the tree while the variant's file existed
    assert {p.name for p in race.iterdir()} >= {"listed", "created-x86-64-v3", "removed-x86-64-v3"}
    root = built.unpack("libvecmath1")
    assert (hwcaps_dir(root, "x86-64-v3") / "libvecmath.so.1").is_symlink()
    # clean leaves nothing beside the tree either
    subprocess.run(["debian/rules", "clean"], cwd=tree, check=True, capture_output=True)
    assert not list(tree.parent.glob(".hwcapdeb-*"))
    assert not (tree / "debian/hwcapdeb/.build").exists()
