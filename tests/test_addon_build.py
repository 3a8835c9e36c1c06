"""Addon mode (Build-Depends: dh-sequence-hwcaps) built for real with dpkg-buildpackage.

examples/vecmath converted in addon mode builds with this checkout's dh-hwcaps
files (PATH, PERL5LIB, DH_HWCAPS_DATADIR: what the .deb installs), gives the
same files as in embed mode (dpkg -c listings compared), and the real loader
runs each level's build.  A malformed debian/hwcaps stops the build at its
first step; without dh-hwcaps installed dpkg-checkbuilddeps names it.  One
corpus package (libyaml: autotools, dh_autoreconf) is built in both modes by
``hwcapdeb``'s own job runner, the addon build with the dh-hwcaps .deb that
``scripts/build-deb`` makes installed on this host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.buildjob import BuildJob, run_job
from hwcapdeb.profiles import ProfileRegistry
from hwcapdeb.verify import verify_paths
from tests import corpus
from tests.test_convert_build import (
    ALL_LEVELS,
    LOADER,
    TRIPLET,
    Built,
    build,
    convert,
    copy_example,
    supported_levels,
)
from tests.test_corpus import (
    MASKS,
    libraries_with_variants,
    loaded_path,
    top_supported_level,
    unpack,
)
from tests.test_sbuild_integration import arch, fast_chroots, sbuild_ready  # noqa: F401

# (arch, fast_chroots, sbuild_ready: fixtures of the sbuild tests, used by name below)

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "dh-hwcaps"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(LOADER).exists(), reason="needs the amd64 loader"),
]


def build_dh_hwcaps(out: Path) -> str:
    """The project's dh-hwcaps .deb, built with scripts/build-deb (make deb) into ``out``."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-deb"), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def checkout_env() -> dict[str, str]:
    """This checkout's dh-hwcaps in place of the installed one."""
    return {
        "PATH": f"{STATIC}:{os.environ['PATH']}",
        "PERL5LIB": str(STATIC),
        "DH_HWCAPS_DATADIR": str(STATIC),
    }


def build_addon(tree: Path, env: dict[str, str] | None = None, check: bool = True) -> Built:
    """dpkg-buildpackage with the checkout's dh-hwcaps (-d: it is not installed as such)."""
    result = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b", "-d"],
        cwd=tree,
        env={**os.environ, **checkout_env(), **(env or {})},
        capture_output=True,
        text=True,
    )
    log = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, log[-4000:]
    return Built(tree, tree.parent, log)


def listing(deb: Path) -> list[str]:
    """dpkg -c without sizes, dates and owners: modes, names, link targets.

    Debug files are named by build-id, which differs between two builds of a
    package whose code is not reproducible (libdeflate's profile-guided
    build): each keeps its place in the list, under a placeholder name.
    """
    out = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split(None, 5)
        name = re.sub(r"/\.build-id/[0-9a-f]{2}/[0-9a-f]+\.debug$", "/.build-id/ID.debug", line)
        name = name.split(None, 5)[5]
        name = re.sub(r"/\.build-id/[0-9a-f]{2}/$", "/.build-id/XX/", name)
        rows.append(f"{fields[0]} {name}")
    return sorted(rows)


def listings(debs: list[Path]) -> dict[str, list[str]]:
    return {deb.name.split("_")[0]: listing(deb) for deb in debs}


@pytest.fixture(scope="module")
def vecmath_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Built]:
    base = tmp_path_factory.mktemp("addon-vecmath")
    addon_tree = copy_example(base, "addon")
    convert(addon_tree, "--profile", ",".join(ALL_LEVELS), "--mode", "addon")
    embed_tree = copy_example(base, "embed")
    convert(embed_tree, "--profile", ",".join(ALL_LEVELS))
    return build_addon(addon_tree), build(embed_tree)


def test_addon_build_has_the_files_of_the_embed_build(vecmath_builds: tuple[Built, Built]) -> None:
    addon_built, embed_built = vecmath_builds
    assert "dh_hwcaps_snapshot" in addon_built.log
    assert "dh_makeshlibs -a -X/glibc-hwcaps/" in addon_built.log
    for level in ALL_LEVELS:
        assert f"hwcapdeb: {level}: installed 1 libraries into libvecmath1" in addon_built.log
    addon_debs = sorted(addon_built.out.glob("*.deb"))
    embed_debs = sorted(embed_built.out.glob("*.deb"))
    assert listings(addon_debs) == listings(embed_debs)
    # the variants never reach the shlibs/symbols files
    assert addon_built.control("libvecmath1", "shlibs") == embed_built.control(
        "libvecmath1", "shlibs"
    )
    # nothing of the machinery is left in the source tree after clean
    subprocess.run(
        ["debian/rules", "clean"],
        cwd=addon_built.tree,
        env={**os.environ, **checkout_env()},
        check=True,
        capture_output=True,
    )
    assert not (addon_built.tree / "debian" / ".hwcaps").exists()


def test_addon_build_real_loader_picks_each_level(vecmath_builds: tuple[Built, Built]) -> None:
    addon_built, _ = vecmath_builds
    lib = addon_built.unpack("libvecmath1")
    bench = addon_built.unpack("vecmath-bench") / "usr/bin/vecmath-bench"
    libdir = lib / "usr/lib" / TRIPLET
    masks = {"x86-64-v4": None, "x86-64-v3": "-AVX512F", "x86-64-v2": "-AVX2",
             "baseline": "-SSE4_2"}
    supported = supported_levels()
    for level, mask in masks.items():
        if level != "baseline" and level not in supported:
            continue
        env = {**os.environ, **({"GLIBC_TUNABLES": f"glibc.cpu.hwcaps={mask}"} if mask else {})}
        out = subprocess.run(
            [LOADER, "--library-path", libdir, bench, "1000"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        assert f"level={level} " in out, (level, out)


def test_malformed_debian_hwcaps_stops_the_build_at_its_first_step(tmp_path: Path) -> None:
    tree = copy_example(tmp_path, "bad")
    convert(tree, "--profile", "x86-64-v3", "--mode", "addon")
    config = tree / "debian" / "hwcaps"
    config.write_text(config.read_text().replace("Level: x86-64-v3", "Level: power9"))
    built = build_addon(tree, check=False)
    errors = [ln for ln in built.log.splitlines() if ln.startswith("dh_hwcaps: error:")]
    assert errors == [
        "dh_hwcaps: error: debian/hwcaps: field Level: power9 is a level of ppc64el, "
        "not of amd64; use one of x86-64-v2 x86-64-v3 x86-64-v4"
    ]
    assert "dh_hwcaps_snapshot: error: " in built.log  # debhelper names the step
    assert "dh_auto_configure" not in built.log  # nothing was built
    assert not list(tree.glob("*.o"))
    assert not list(tmp_path.glob("bad/*.deb"))


def test_without_dh_hwcaps_dpkg_checkbuilddeps_names_it(tmp_path: Path) -> None:
    tree = copy_example(tmp_path, "missing")
    convert(tree, "--profile", "x86-64-v3", "--mode", "addon")
    # a dpkg database of this host without dh-hwcaps (installed here or not)
    admin = tmp_path / "admin"
    admin.mkdir()
    status = Path("/var/lib/dpkg/status").read_text()
    stanzas = [s for s in status.split("\n\n") if not re.match(r"Package: dh-hwcaps\n", s)]
    (admin / "status").write_text("\n\n".join(stanzas))
    result = subprocess.run(
        ["dpkg-checkbuilddeps", f"--admindir={admin}"], cwd=tree, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Unmet build dependencies: dh-sequence-hwcaps" in result.stderr, result.stderr


#: corpus packages whose rules run dh's sequencer (zlib's do not: embed mode only);
#: libyaml always, the others with HWCAPDEB_FULL_CORPUS=1
ADDON_CORPUS = ("libyaml", "xxhash", "lz4", "libzstd", "libdeflate", "libsodium")


@pytest.mark.skipif(os.geteuid() != 0, reason="installs dh-hwcaps on the host (root)")
@pytest.mark.parametrize("name", ADDON_CORPUS)
def test_corpus_package_addon_equals_embed(name: str, tmp_path: Path) -> None:
    """hwcapdeb build in addon mode installs dh-hwcaps and gives the embed build's files."""
    if name != "libyaml" and not corpus.full_corpus():
        pytest.skip("HWCAPDEB_FULL_CORPUS=1 compares every corpus package")
    deb = build_dh_hwcaps(tmp_path / "deb")
    dsc = corpus.fetch(name)
    profiles = tuple(ProfileRegistry().resolve_many(list(ALL_LEVELS), "amd64"))
    debs = {}
    changes: dict[str, Path | None] = {}
    for mode in ("addon", "embed"):
        old = os.environ.get("HWCAPDEB_DH_HWCAPS_DEB")
        os.environ["HWCAPDEB_DH_HWCAPS_DEB"] = deb
        try:
            outcome = run_job(
                BuildJob(
                    source=dsc,
                    profiles=profiles,
                    out_dir=tmp_path / mode,
                    jobs=2,
                    variant_tests="none",
                    nocheck=True,
                    mode=mode,
                    variant_env=corpus.VARIANT_ENV.get(name, ()),
                )
            )
        finally:
            if old is None:
                del os.environ["HWCAPDEB_DH_HWCAPS_DEB"]
            else:
                os.environ["HWCAPDEB_DH_HWCAPS_DEB"] = old
        debs[mode] = sorted(outcome.result.debs)
        changes[mode] = outcome.result.changes
        assert set(outcome.variant_logs) >= set(ALL_LEVELS)
    assert listings(debs["addon"]) == listings(debs["embed"])
    names = [row for rows in listings(debs["addon"]).values() for row in rows]
    for level in ALL_LEVELS:
        assert any(f"glibc-hwcaps/{level}/" in row for row in names), level
    # the addon build verifies clean (host rows asked of the real loader) ...
    assert changes["addon"] is not None
    report = verify_paths([changes["addon"]], cpus=["x86_64", "nehalem", "haswell", "host"])
    errors = [f for f in report.findings if f.severity == "error"]
    assert not errors, errors
    # ... and the real loader maps each level's file under the masks that step it down
    root = tmp_path / "root"
    unpack(tuple(debs["addon"]), root)
    libraries = libraries_with_variants(root)
    assert libraries, f"no library of {name} has glibc-hwcaps variants"
    if top_supported_level(None) == "x86-64-v4":
        for libdir, soname in libraries:
            for level, mask in MASKS.items():
                expected = libdir / soname if level == "baseline" else (
                    libdir / "glibc-hwcaps" / level / soname)
                chosen = loaded_path(libdir, soname, mask)
                assert os.path.normpath(chosen) == os.path.normpath(expected), (soname, mask)
    shutil.rmtree(tmp_path / "deb")


# --- rules without dh, libtool build tree (issue 12) ---------------------------

LTPAIR = {
    "configure.ac": "AC_INIT([ltpair], [1.0])\nAM_INIT_AUTOMAKE([foreign])\nLT_INIT\n"
    "AC_PROG_CXX\nAC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n",
    "Makefile.am": "lib_LTLIBRARIES = libpair.la libpairxx.la\n"
    "libpair_la_SOURCES = pair.c\nlibpair_la_LDFLAGS = -version-info 0:0:0\n"
    "libpairxx_la_SOURCES = pairxx.cc\nlibpairxx_la_LIBADD = libpair.la\n"
    "libpairxx_la_LDFLAGS = -version-info 0:0:0\n",
    "pair.c": "int pair_value(void) { return 1; }\n",
    "pairxx.cc": 'extern "C" int pair_value(void);\n'
    'extern "C" int pairxx_value(void) { return pair_value() + 1; }\n',
    "debian/changelog": "ltpair (1.0-1) unstable; urgency=medium\n\n  * Test package.\n\n"
    " -- hwcapdeb developers <hwcapdeb@example.org>  Sun, 01 Nov 2026 00:00:00 +0000\n",
    "debian/control": "Source: ltpair\nSection: libs\nPriority: optional\n"
    "Maintainer: hwcapdeb developers <hwcapdeb@example.org>\n"
    "Build-Depends: debhelper-compat (= 13), libtool, automake, g++\n"
    "Standards-Version: 4.6.2\n\n"
    "Package: libpair0\nArchitecture: any\nDepends: ${shlibs:Depends}, ${misc:Depends}\n"
    "Description: C library and its C++ companion\n Test package.\n",
    "debian/source/format": "3.0 (native)\n",
    # zlib-style rules: no dh sequencer; the libraries are installed by make install
    "debian/rules": "#!/usr/bin/make -f\n"
    "include /usr/share/dpkg/architecture.mk\ninclude /usr/share/dpkg/buildflags.mk\n"
    "build build-arch:\n"
    "\t[ -f configure ] || autoreconf -fi\n"
    "\t[ -f Makefile ] || ./configure --prefix=/usr --libdir=/usr/lib/$(DEB_HOST_MULTIARCH)"
    ' --disable-static CFLAGS="$(CFLAGS)" CXXFLAGS="$(CXXFLAGS)" LDFLAGS="$(LDFLAGS)"\n'
    "\t$(MAKE)\n"
    "build-indep:\n"
    "binary binary-arch: build-arch\n"
    "\tdh_testroot\n\tdh_prep\n"
    "\t$(MAKE) install DESTDIR=$(CURDIR)/debian/libpair0\n"
    "\trm -f debian/libpair0/usr/lib/*/*.la debian/libpair0/usr/lib/*/*.so\n"
    "\tdh_installdocs\n\tdh_installchangelogs\n\tdh_compress\n\tdh_fixperms\n\tdh_strip\n"
    "\tdh_makeshlibs\n\tdh_shlibdeps\n\tdh_installdeb\n\tdh_gencontrol\n\tdh_md5sums\n"
    "\tdh_builddeb\n"
    "binary-indep:\n"
    "clean:\n\tdh_testdir\n\t[ ! -f Makefile ] || $(MAKE) distclean\n\tdh_clean\n",
}


def test_non_dh_libtool_companion_ships_without_build_tree_run_path(tmp_path: Path) -> None:
    """A C library and a C++ library linked against it, taken from .libs/ (no make
    install in the variants): the companion's run path into the build tree goes, and
    it loads its dependency from glibc-hwcaps."""
    tree = tmp_path / "ltpair"
    for rel, text in LTPAIR.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    (tree / "debian" / "rules").chmod(0o755)
    convert(tree, "--profile", "x86-64-v2,x86-64-v3")
    assert (tree / "debian" / "hwcapdeb" / "variants.sh").is_file()  # embed: no dh
    built = build(tree)
    assert "libpairxx.so.0: dropped the build tree's run path" in built.log
    root = built.unpack("libpair0")
    libdir = root / "usr/lib" / TRIPLET
    for level in ("x86-64-v2", "x86-64-v3"):
        variant = libdir / "glibc-hwcaps" / level / "libpairxx.so.0"
        dynamic = subprocess.run(
            ["readelf", "-d", "-W", variant], capture_output=True, text=True, check=True
        ).stdout
        assert "RUNPATH" not in dynamic and "RPATH" not in dynamic, dynamic
    best = [lv for lv in ("x86-64-v2", "x86-64-v3") if lv in supported_levels()]
    if not best:
        pytest.skip("this CPU runs neither level")
    listed = subprocess.run(
        [LOADER, "--library-path", libdir, "--list",
         libdir / "glibc-hwcaps" / best[-1] / "libpairxx.so.0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    chosen = re.search(r"libpair\.so\.0 => (\S+)", listed)
    assert chosen and Path(chosen.group(1)).parent == libdir / "glibc-hwcaps" / best[-1], listed


# --- sbuild --------------------------------------------------------------------


@pytest.mark.sbuild
@pytest.mark.usefixtures("sbuild_ready", "fast_chroots")
def test_addon_mode_in_sbuild_gets_dh_hwcaps_as_extra_package(tmp_path: Path) -> None:
    from hwcapdeb.cli import main
    from tests.test_sbuild_integration import _hwcaps_links, _log

    deb = build_dh_hwcaps(tmp_path / "deb")
    out = tmp_path / "out"
    os.environ["HWCAPDEB_DH_HWCAPS_DEB"] = deb
    try:
        code = main(
            ["build", str(ROOT / "examples" / "vecmath"), "--profile", "x86-64-v3,x86-64-v4",
             "--builder", "sbuild", "--mode", "addon", "--out", str(out)]
        )
    finally:
        del os.environ["HWCAPDEB_DH_HWCAPS_DEB"]
    assert code == 0
    log = _log(out)
    assert "dh_hwcaps_snapshot" in log and "dh_makeshlibs -a -X/glibc-hwcaps/" in log
    assert _hwcaps_links(out, "libvecmath1", "libvecmath.so.1") == ["x86-64-v3", "x86-64-v4"]


@pytest.mark.sbuild
@pytest.mark.usefixtures("sbuild_ready")
def test_campaign_snippet_in_addon_mode_installs_dh_hwcaps_in_the_chroot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hwcapdeb.cli import main
    from tests.test_sbuild_integration import DIST, _hwcaps_links, _log, _tmpfs

    deb = build_dh_hwcaps(tmp_path / "deb")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "vecmath", src / "vecmath")
    subprocess.run(["dpkg-source", "-b", "vecmath"], cwd=src, check=True, capture_output=True)
    (dsc,) = src.glob("*.dsc")
    argv = ["sbuild-config", "--profile", "x86-64-v3", "--mode", "addon", "--dist", DIST]
    monkeypatch.setenv("HWCAPDEB_DH_HWCAPS_DEB", deb)
    assert main([*argv, *_tmpfs()]) == 0
    rc = tmp_path / "sbuildrc"
    rc.write_text(capsys.readouterr().out)
    # sbuild runs its hooks with a bare environment: the snippet itself names the .deb
    assert "'--dh-hwcaps-deb', '" + str(Path(deb).resolve()) + "'" in rc.read_text()
    monkeypatch.delenv("HWCAPDEB_DH_HWCAPS_DEB")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "SBUILD_CONFIG": str(rc)}
    proc = subprocess.run(
        ["sbuild", "--no-run-lintian", str(dsc)], cwd=out, env=env, capture_output=True, text=True
    )
    log = _log(out)
    assert proc.returncode == 0, log[-3000:]
    assert "hwcapdeb: installing dh-hwcaps (addon mode)" in log
    assert "dh_hwcaps_snapshot" in log
    assert _hwcaps_links(out, "libvecmath1", "libvecmath.so.1") == ["x86-64-v3"]


def lintian_tags(*paths: Path) -> set[str]:
    """lintian's tags (tag and item, no package version) for paths."""
    out = subprocess.run(
        ["lintian", "--no-tag-display-limit", *map(str, paths)], capture_output=True, text=True
    ).stdout
    return {re.sub(r"_[^ ]+", "", line) for line in out.splitlines() if re.match(r"^[EWI]: ", line)}


@pytest.mark.skipif(shutil.which("lintian") is None, reason="needs lintian")
def test_lintian_sees_nothing_new_in_the_addon_conversion(
    vecmath_builds: tuple[Built, Built], tmp_path: Path
) -> None:
    addon_built, _ = vecmath_builds
    plain = build(copy_example(tmp_path, "plain"))
    (plain_changes,) = plain.out.glob("*.changes")
    (addon_changes,) = addon_built.out.glob("*.changes")
    assert lintian_tags(addon_changes) <= lintian_tags(plain_changes)
    # the source packages: unconverted and converted
    dscs = []
    for name, mode in (("src-plain", None), ("src-addon", "addon")):
        tree = copy_example(tmp_path, name)
        if mode:
            convert(tree, "--profile", "x86-64-v3", "--mode", mode)
        subprocess.run(["dpkg-source", "-b", tree.name], cwd=tree.parent, check=True,
                       capture_output=True)
        (dsc,) = tree.parent.glob("*.dsc")
        dscs.append(dsc)
    assert lintian_tags(dscs[1]) <= lintian_tags(dscs[0])
    # and dh-hwcaps itself (make deb runs lintian --fail-on error,warning too)
    build_dh_hwcaps(tmp_path / "deb")
    (changes,) = (tmp_path / "deb").glob("*.changes")
    assert not {t for t in lintian_tags(changes) if t.startswith(("E:", "W:"))}


def test_override_dh_makeshlibs_without_exclude_leaves_symbols_alone(tmp_path: Path) -> None:
    """dh passes -X/glibc-hwcaps/ only to the commands it runs: an override that runs
    dh_makeshlibs itself (libzstd's) must not see the variants either."""
    tree = copy_example(tmp_path, "override")
    rules = tree / "debian" / "rules"
    rules.write_text(rules.read_text() + "\noverride_dh_makeshlibs:\n\tdh_makeshlibs -V\n")
    plain_tree = copy_example(tmp_path, "plain-override")
    (plain_tree / "debian" / "rules").write_text(rules.read_text())
    plain = build(plain_tree)
    convert(tree, "--profile", "x86-64-v3", "--mode", "addon")
    built = build_addon(tree, {"DH_VERBOSE": "1"})
    assert "dh_hwcaps_stash" in built.log and "dh_hwcaps_unstash" in built.log
    # dh_makeshlibs gave dpkg-gensymbols the baseline only (DH_VERBOSE shows its call)
    gensymbols = [ln for ln in built.log.splitlines() if "dpkg-gensymbols" in ln]
    assert gensymbols and not [ln for ln in gensymbols if "glibc-hwcaps" in ln], gensymbols
    for name in ("shlibs", "symbols", "triggers"):
        assert built.control("libvecmath1", name) == plain.control("libvecmath1", name), name
    names = listing(built.deb("libvecmath1"))
    assert any("glibc-hwcaps/x86-64-v3/libvecmath.so.1" in row for row in names)
