"""The loader model against the real loader: compiled libraries in good and broken
glibc-hwcaps layouts, every GLIBC_TUNABLES mask that can change the level, and
qemu-user CPU models.  The expected answer always comes from running ld.so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu import apply_tunables, feature_table, highest_level
from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.glibc_rules import REFUSED
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import compile_library, install_variant_tree

SONAME = "libhwtest.so.1"
AMD64 = architecture("amd64")
pytestmark = pytest.mark.skipif(
    not os.path.exists(AMD64.loader or ""), reason="needs the amd64 loader"
)


def _wrong_machine(path: Path) -> None:
    """Turn a copy of a real library into an aarch64 one (e_machine = 183)."""
    data = bytearray(path.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trees")
    result = {}
    result["good"] = base / "good"
    files = install_variant_tree(result["good"], soname=SONAME)
    result["v3-missing"] = base / "v3-missing"
    install_variant_tree(result["v3-missing"], soname=SONAME, levels=("x86-64-v2", "x86-64-v4"))
    result["no-soname-links"] = base / "no-soname-links"
    install_variant_tree(result["no-soname-links"], soname=SONAME, soname_links=False)
    result["v4-in-v3"] = base / "v4-in-v3"
    install_variant_tree(result["v4-in-v3"], soname=SONAME,
                         flags_for={"x86-64-v3": ["-march=x86-64-v4", "-mneeded"]})
    # a real object of the wrong machine where the v4 build should be
    wrong = base / "wrong-machine"
    shutil.copytree(result["good"], wrong, symlinks=True)
    target = wrong / "glibc-hwcaps" / "x86-64-v4" / SONAME
    target.unlink()
    shutil.copy(files["x86-64-v4"], target)
    _wrong_machine(target)
    result["wrong-machine"] = wrong
    # a 32-bit build of the same SONAME where the v4 build should be (needs gcc -m32)
    if _gcc_m32_works(base):
        klass = base / "wrong-class"
        shutil.copytree(result["good"], klass, symlinks=True)
        target = klass / "glibc-hwcaps" / "x86-64-v4" / SONAME
        target.unlink()
        compile_library(target, soname=SONAME, cflags=["-m32"])
        result["wrong-class"] = klass
    return result


def _gcc_m32_works(base: Path) -> bool:
    probe_c = base / "m32.c"
    probe_c.write_text("int x;\n")
    done = subprocess.run(["gcc", "-m32", "-shared", "-o", str(base / "m32.so"), str(probe_c)],
                          capture_output=True)
    return done.returncode == 0


def _masks() -> list[str]:
    """One single-feature mask per maskable feature of every level, from the level lists."""
    maskable = feature_table().maskable
    masks = [""]
    for level in AMD64.all_levels:
        masks += [f"glibc.cpu.hwcaps=-{f}" for f in level.adds if f in maskable]
    return masks


def _compare(tree: Path, cpu_spec: str, tunables: str = "", **kw: str) -> tuple[str, str]:
    base = cpu_model(cpu_spec)
    real = probe(SONAME, library_path=[tree], tunables=tunables or None,
                 qemu_cpu=base.qemu_cpu if cpu_spec != "host" else None, **kw)
    model = resolve(SONAME, apply_tunables(base, tunables or None), library_path=[tree],
                    hwcaps_prepend=kw.get("hwcaps_prepend"), hwcaps_mask=kw.get("hwcaps_mask"))
    want = str(real.path) if real.path else f"fails: {real.error}"
    got = str(model.path) if model.path else f"fails: {model.error}"
    assert (real.path is None) == (model.path is None), (want, got, model.trace)
    assert real.path == model.path, (want, got, model.trace)
    return want, got


TREE_NAMES = ["good", "v3-missing", "no-soname-links", "v4-in-v3", "wrong-machine",
              "wrong-class"]


@pytest.mark.parametrize("tree", TREE_NAMES)
def test_host_with_every_mask_agrees_with_the_real_loader(
    trees: dict[str, Path], tree: str
) -> None:
    if tree not in trees:
        pytest.skip("gcc -m32 is not available")
    chosen = {_compare(trees[tree], "host", mask)[0] for mask in _masks()}
    if tree == "good":
        # the masks really move the choice: one file per level the host reaches
        assert len(chosen) == highest_level(cpu_model("host")).rank + 1, chosen


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
@pytest.mark.parametrize("cpu", ["x86_64", "nehalem", "haswell"])
@pytest.mark.parametrize("tree", TREE_NAMES)
def test_qemu_cpu_models_agree_with_the_real_loader(
    trees: dict[str, Path], cpu: str, tree: str
) -> None:
    if tree not in trees:
        pytest.skip("gcc -m32 is not available")
    _compare(trees[tree], cpu)


def test_v4_object_in_v3_dir_is_fatal_on_a_v3_cpu(trees: dict[str, Path]) -> None:
    res = resolve(SONAME, cpu_model("haswell"), library_path=[trees["v4-in-v3"]], system=False)
    assert res.path is None
    assert res.error and "ISA level is lower than required" in res.error
    assert res.trace[-1].verdict == REFUSED
    assert res.level is not None and res.level.name == "x86-64-v3"


def test_masks_do_not_lower_the_marker_check(trees: dict[str, Path]) -> None:
    """-AVX512F on a v4 CPU: v3 dir is chosen and its v4 marker still passes (isa_1 unmasked)."""
    host = cpu_model("host")
    if highest_level(host).name != "x86-64-v4":
        pytest.skip("needs an AVX-512 host")
    tunables = "glibc.cpu.hwcaps=-AVX512F"
    res = resolve(SONAME, apply_tunables(host, tunables), library_path=[trees["v4-in-v3"]])
    assert res.path == trees["v4-in-v3"] / "glibc-hwcaps" / "x86-64-v3" / SONAME
    real = probe(SONAME, library_path=[trees["v4-in-v3"]], tunables=tunables)
    assert real.path == res.path


def test_soname_rule_names_the_real_file(trees: dict[str, Path]) -> None:
    res = resolve(SONAME, cpu_model("haswell"), library_path=[trees["no-soname-links"]],
                  system=False)
    assert res.level is not None and res.level.is_baseline
    v3 = next(s for s in res.trace if "x86-64-v3" in s.path)
    assert "libhwtest.so.1.0.0" in v3.reason


@pytest.mark.parametrize(
    ("prepend", "mask"),
    [("x86-64-v4", None), (None, "x86-64-v2"), ("x86-64-v3", "x86-64-v2"), (None, ""),
     ("custom:x86-64-v2", None)],
)
def test_prepend_and_mask_agree_with_the_real_loader(
    trees: dict[str, Path], prepend: str | None, mask: str | None
) -> None:
    kw = {k: v for k, v in (("hwcaps_prepend", prepend), ("hwcaps_mask", mask)) if v is not None}
    _compare(trees["good"], "host", **kw)
    if shutil.which("qemu-x86_64"):
        _compare(trees["good"], "nehalem", **kw)


def test_prepended_custom_dir_is_searched_without_cpu_check(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    install_variant_tree(lib, soname=SONAME, levels=())
    compile_library(lib / "glibc-hwcaps" / "custom" / SONAME, soname=SONAME,
                    cflags=["-march=x86-64"])
    res = resolve(SONAME, cpu_model("x86_64"), library_path=[lib], hwcaps_prepend="custom",
                  system=False)
    assert res.path == lib / "glibc-hwcaps" / "custom" / SONAME
    assert res.level is None
    real = probe(SONAME, library_path=[lib], hwcaps_prepend="custom")
    assert real.path == res.path


def test_legacy_hwcaps_dir_is_modelled(tmp_path: Path) -> None:
    """glibc <= 2.36 still searches tls/, x86_64/...: the model follows the loader's
    release (tests/test_loader_legacy.py has the full set)."""
    lib = tmp_path / "lib"
    install_variant_tree(lib, soname=SONAME, levels=())
    compile_library(lib / "x86_64" / SONAME, soname=SONAME, cflags=["-march=x86-64"])
    res = resolve(SONAME, cpu_model("host"), library_path=[lib], system=False)
    real = probe(SONAME, library_path=[lib])
    assert real.path == res.path
    unknown = resolve(SONAME, cpu_model("x86_64"), library_path=[lib], system=False)
    assert any(s.verdict == "note" and "legacy" in s.reason for s in unknown.trace)
    version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    if version.startswith("glibc 2.3") and int(version.split(".")[1]) < 37:
        assert real.path == lib / "x86_64" / SONAME
