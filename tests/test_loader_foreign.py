"""ppc64el and s390x: CPU models and the loader model against the real ppc64el/s390x
loaders (Debian's libc6-<arch>-cross) running under qemu-user CPU models."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu import highest_level
from hwcapdeb.cpu_sources import cpu_model, hwcap_tables, parse_diagnostics
from hwcapdeb.errors import InputError
from hwcapdeb.loader import resolve
from hwcapdeb.probe import cross_sysroot, probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import compile_library

SONAME = "libanl.so.1"  # a small real library of each cross libc


def _available(arch: str) -> bool:
    spec = architecture(arch)
    root = Path("/usr") / spec.triplet
    return bool(spec.qemu and shutil.which(spec.qemu) and (root / "lib" / SONAME).exists())


ARCHES = [
    pytest.param(a, marks=pytest.mark.skipif(not _available(a), reason=f"needs qemu-user and "
                                             f"libc6-{a}-cross"))
    for a in ("ppc64el", "s390x")
]


def diagnostics(arch: str, qemu_cpu: str) -> str:
    spec = architecture(arch)
    root = cross_sysroot(arch)
    loader = root / "lib" / Path(spec.loader or "").name
    return subprocess.run([spec.qemu or "", "-cpu", qemu_cpu, "-L", str(root), str(loader),
                           "--list-diagnostics"], capture_output=True, text=True,
                          check=True).stdout


def layouts(base: Path, arch: str) -> dict[str, Path]:
    """Baseline + every glibc-hwcaps level the cross glibc (2.36) knows, and broken ones."""
    spec = architecture(arch)
    lib = cross_sysroot(arch) / "lib" / SONAME
    levels = [lv.name for lv in spec.levels if lv.glibc_min and lv.glibc_min <= "2.36"]
    trees: dict[str, Path] = {}

    def tree(name: str, present: list[str], link: bool = True) -> Path:
        root = base / arch / name
        root.mkdir(parents=True)
        shutil.copy(lib, root / SONAME)
        for level in present:
            d = root / "glibc-hwcaps" / level
            d.mkdir(parents=True)
            shutil.copy(lib, d / (SONAME if link else SONAME + ".0.0"))
        trees[name] = root
        return root

    tree("good", levels)
    tree("first-level-missing", levels[1:])
    tree("no-soname-links", levels, link=False)
    wrong = tree("wrong-machine", levels)
    top = wrong / "glibc-hwcaps" / levels[-1] / SONAME
    top.unlink()
    compile_library(top, soname=SONAME)  # an x86-64 object of the right name
    return trees


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("foreign")


@pytest.mark.parametrize("arch", ARCHES)
def test_named_cpus_match_what_qemu_shows_the_loader(arch: str) -> None:
    for name, qemu_cpu in hwcap_tables()[arch].qemu_models.items():
        named = cpu_model(name, arch)
        seen = parse_diagnostics(diagnostics(arch, qemu_cpu), qemu_cpu, arch)
        assert highest_level(seen) == highest_level(named), (name, qemu_cpu, seen.features)


@pytest.mark.parametrize("arch", ARCHES)
def test_loader_model_agrees_with_the_real_loader(base: Path, arch: str) -> None:
    trees = layouts(base, arch)
    chosen = set()
    for name in hwcap_tables()[arch].qemu_models:
        model = cpu_model(name, arch)
        for layout, tree in trees.items():
            real = probe(SONAME, library_path=[tree], qemu_cpu=model.qemu_cpu, arch=arch)
            res = resolve(SONAME, model, library_path=[tree], system=False, glibc="2.36")
            assert real.path is not None, (name, layout, real)
            assert res.path == real.path, (name, layout, real, res.trace)
            chosen.add((layout, real.path))
    assert len({p for layout, p in chosen if layout == "good"}) >= 2  # CPUs really differ


@pytest.mark.parametrize("arch", ARCHES)
def test_dump_of_another_arch_is_refused(tmp_path: Path, arch: str) -> None:
    qemu_cpu = next(iter(hwcap_tables()[arch].qemu_models.values()))
    dump = tmp_path / "diag.txt"
    dump.write_text(diagnostics(arch, qemu_cpu))
    with pytest.raises(InputError, match=f"pass --arch {arch}"):
        cpu_model(str(dump), "amd64")
    assert cpu_model(str(dump), arch).arch == arch


def test_saved_cpuinfo_of_other_arches(tmp_path: Path) -> None:
    ppc = tmp_path / "ppc"
    ppc.write_text("processor\t: 0\ncpu\t\t: POWER9 (architected), altivec supported\n")
    assert highest_level(cpu_model(str(ppc), "ppc64el")).name == "power9"
    s390 = tmp_path / "s390"
    s390.write_text("vendor_id       : IBM/S390\nfeatures\t: esan3 zarch stfle msa ldisp eimm "
                    "dfp edat etf3eh highgprs te vx vxd vxe gs vxe2 vxp sort dflt sie\n")
    assert highest_level(cpu_model(str(s390), "s390x")).name == "z15"


def test_z17_is_not_searched_by_glibc_2_36(tmp_path: Path) -> None:
    res = resolve("libfoo.so.1", cpu_model("z17", "s390x"), library_path=[tmp_path],
                  system=False, glibc="2.36")
    z17 = next(s for s in res.trace if "/z17/" in s.path)
    assert z17.verdict == "not-searched" and "2.42" in z17.reason
    res = resolve("libfoo.so.1", cpu_model("z17", "s390x"), library_path=[tmp_path],
                  system=False)
    assert next(s for s in res.trace if "/z17/" in s.path).verdict == "absent"


def test_foreign_tunables_do_not_change_hwcaps() -> None:
    from hwcapdeb.cpu import apply_tunables

    model = apply_tunables(cpu_model("power10", "ppc64el"), "glibc.cpu.hwcaps=-arch_3_1")
    assert highest_level(model).name == "power10"
    assert model.ignored_tunables


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="host is the amd64 case")
def test_host_on_a_foreign_arch_is_an_error() -> None:
    from hwcapdeb.errors import UsageError

    with pytest.raises(UsageError, match="not ppc64el"):
        cpu_model("host", "ppc64el")


@pytest.mark.parametrize("arch", [a for a in ARCHES if a.values[0] == "s390x"])
def test_real_loader_release_limits_hwcaps_names(tmp_path: Path, arch: str) -> None:
    """A model taken from the real loader knows its glibc: z17 (2.42) is not searched by 2.36."""
    seen = parse_diagnostics(diagnostics(arch, "qemu"), "qemu", arch)
    assert seen.glibc
    real_names = set(re_subdirs(diagnostics(arch, "qemu")))
    res = resolve("libfoo.so.1", seen, library_path=[tmp_path], system=False)
    unknown = [s for s in res.trace
               if Path(s.path).parent.name.startswith("z")
               and Path(s.path).parent.name not in real_names]
    assert unknown, "this glibc knows every z level: nothing to check"
    for step in unknown:
        assert step.verdict == "not-searched" and "has no such directory" in step.reason


def re_subdirs(text: str) -> list[str]:
    import re

    m = re.search(r'^dl_hwcaps_subdirs="([^"]*)"$', text, re.M)
    return m.group(1).split(":") if m else []
