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

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "dh-hwcaps"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(LOADER).exists(), reason="needs the amd64 loader"),
]


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
    """dpkg -c without sizes, dates and owners: modes, names, link targets."""
    out = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split(None, 5)
        rows.append(f"{fields[0]} {fields[5]}")
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
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-deb"), str(tmp_path / "deb")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    deb = result.stdout.strip().splitlines()[-1]
    dsc = corpus.fetch(name)
    profiles = tuple(ProfileRegistry().resolve_many(list(ALL_LEVELS), "amd64"))
    debs = {}
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
        assert set(outcome.variant_logs) >= set(ALL_LEVELS)
    assert listings(debs["addon"]) == listings(debs["embed"])
    names = [row for rows in listings(debs["addon"]).values() for row in rows]
    for level in ALL_LEVELS:
        assert any(f"glibc-hwcaps/{level}/" in row for row in names), level
    shutil.rmtree(tmp_path / "deb")
