"""The ld.so.cache part of the model against a real cache: a tiny sysroot with the
real loader and libc, ``ldconfig -r ROOT`` writes its cache, and the real loader
runs inside it (``qemu-x86_64 -L ROOT`` for CPU models, ``chroot`` for the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.dl_cache import ld_so_conf_dirs
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import install_variant_tree

SONAME = "libhwtest.so.1"
AMD64 = architecture("amd64")
LDCONFIG = shutil.which("ldconfig") or shutil.which("ldconfig", path="/sbin:/usr/sbin")
pytestmark = pytest.mark.skipif(
    not (os.path.exists(AMD64.loader or "") and LDCONFIG), reason="needs the amd64 loader"
)
QEMU = shutil.which("qemu-x86_64")
LAYOUTS = ["good", "no-soname-links", "v4-in-v3", "two-dirs", "v4-baseline"]


def make_root(root: Path, conf: str) -> Path:
    """A sysroot holding just the real loader, libc and true(1)."""
    libdir = root / "lib" / AMD64.triplet
    for src, dest in [
        (Path(AMD64.loader or ""), root / "lib64" / "ld-linux-x86-64.so.2"),
        (Path(f"/lib/{AMD64.triplet}/libc.so.6"), libdir / "libc.so.6"),
        (Path(shutil.which("true") or "/bin/true"), root / "usr" / "bin" / "true"),
    ]:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src.resolve(), dest)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.conf").write_text(conf)
    return root


def ldconfig(root: Path) -> None:
    assert LDCONFIG
    subprocess.run([LDCONFIG, "-r", str(root)], check=True)


def layouts(base: Path) -> dict[str, Path]:
    roots = {}
    r = make_root(base / "good", "/opt/hw\n")
    install_variant_tree(r / "opt" / "hw", soname=SONAME)
    roots["good"] = r
    r = make_root(base / "no-soname-links", "/opt/hw\n")
    install_variant_tree(r / "opt" / "hw", soname=SONAME, soname_links=False)
    roots["no-soname-links"] = r
    r = make_root(base / "v4-in-v3", "/opt/hw\n")
    install_variant_tree(r / "opt" / "hw", soname=SONAME,
                         flags_for={"x86-64-v3": ["-march=x86-64-v4", "-mneeded"]})
    roots["v4-in-v3"] = r
    # a v4-marked baseline: ldconfig records no level for plain entries, so it is fatal
    r = make_root(base / "v4-baseline", "/opt/hw\n")
    install_variant_tree(r / "opt" / "hw", soname=SONAME, levels=(),
                         flags_for={"baseline": ["-march=x86-64-v4", "-mneeded"]})
    roots["v4-baseline"] = r
    # hwcaps entries compete across directories; the first plain entry wins
    r = make_root(base / "two-dirs", "include /etc/ld.so.conf.d/*.conf\n")
    (r / "etc" / "ld.so.conf.d").mkdir()
    (r / "etc" / "ld.so.conf.d" / "a.conf").write_text("# first\n/opt/a\n")
    (r / "etc" / "ld.so.conf.d" / "b.conf").write_text("/opt/b\n")
    install_variant_tree(r / "opt" / "a", soname=SONAME, levels=("x86-64-v2",))
    install_variant_tree(r / "opt" / "b", soname=SONAME, levels=("x86-64-v3",))
    roots["two-dirs"] = r
    for root in roots.values():
        ldconfig(root)
    return roots


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return layouts(tmp_path_factory.mktemp("roots"))


def test_ld_so_conf_include_globs(roots: dict[str, Path]) -> None:
    root = roots["two-dirs"]
    assert ld_so_conf_dirs(root) == [root / "opt" / "a", root / "opt" / "b"]


@pytest.mark.skipif(QEMU is None, reason="needs qemu-user")
@pytest.mark.parametrize("cpu", ["x86_64", "nehalem", "haswell"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_cache_model_agrees_with_the_real_loader(
    roots: dict[str, Path], cpu: str, layout: str
) -> None:
    model = cpu_model(cpu)
    real = probe(SONAME, root=roots[layout], qemu_cpu=model.qemu_cpu)
    res = resolve(SONAME, model, root=roots[layout])
    # everything loads except the v4-marked baseline on a CPU below v4
    fatal = layout == "v4-baseline" and model.isa_1 < 0xF
    assert (real.path is None) == fatal, real
    assert real.path == res.path, (real, res.error, res.trace)


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_cache_model_agrees_on_the_host(roots: dict[str, Path], layout: str) -> None:
    model = cpu_model("host")
    real = probe(SONAME, root=roots[layout])
    res = resolve(SONAME, model, root=roots[layout])
    # everything loads except the v4-marked baseline on a CPU below v4
    fatal = layout == "v4-baseline" and model.isa_1 < 0xF
    assert (real.path is None) == fatal, real
    assert real.path == res.path, (real, res.error, res.trace)


def test_cache_skips_an_over_marked_hwcaps_entry(roots: dict[str, Path]) -> None:
    """Unlike a --library-path search, the cache falls back past a v4-marked v3 file."""
    res = resolve(SONAME, cpu_model("haswell"), root=roots["v4-in-v3"])
    assert res.level is not None and res.level.name == "x86-64-v2"
    assert any("entry skipped" in step.reason for step in res.trace)


def test_cache_uses_hwcaps_files_without_soname_links(roots: dict[str, Path]) -> None:
    res = resolve(SONAME, cpu_model("haswell"), root=roots["no-soname-links"])
    assert res.path == roots["no-soname-links"] / "opt/hw/glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0"


@pytest.mark.skipif(QEMU is None, reason="needs qemu-user")
@pytest.mark.parametrize(("prepend", "mask"),
                         [("x86-64-v4", None), (None, "x86-64-v2"), ("x86-64-v3", "")])
@pytest.mark.parametrize("layout", ["good", "v4-in-v3", "no-soname-links"])
def test_cache_with_prepend_and_mask(
    roots: dict[str, Path], layout: str, prepend: str | None, mask: str | None
) -> None:
    """Through the cache a prepended name still meets the ISA-level check (skipped, not fatal)."""
    for cpu in ("nehalem", "haswell"):
        model = cpu_model(cpu)
        real = probe(SONAME, root=roots[layout], qemu_cpu=model.qemu_cpu,
                     hwcaps_prepend=prepend, hwcaps_mask=mask)
        res = resolve(SONAME, model, root=roots[layout], hwcaps_prepend=prepend,
                      hwcaps_mask=mask)
        assert real.path is not None and real.path == res.path, (cpu, real, res.trace)
