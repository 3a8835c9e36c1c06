"""DT_RPATH / DT_RUNPATH / library path order against the real loader, with real
executables linked against a real library."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.elf import read_elf
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import install_variant_tree

SONAME = "libhwtest.so.1"
pytestmark = pytest.mark.skipif(
    not os.path.exists(architecture("amd64").loader or ""), reason="needs the amd64 loader"
)
MAIN_C = 'const char *hw_variant(void);\nint main(void) { return hw_variant()[0] == 0; }\n'


def link_program(out: Path, lib: Path, *, tag: str, path: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(MAIN_C)
    dtags = "--enable-new-dtags" if tag == "runpath" else "--disable-new-dtags"
    subprocess.run(["gcc", "-o", str(out), str(src), str(lib / SONAME),
                    f"-Wl,{dtags},-rpath,{path}"], check=True)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("rpath")
    full = base / "prefix" / "lib"
    install_variant_tree(full, soname=SONAME)
    only_v2 = base / "v2only"
    install_variant_tree(only_v2, soname=SONAME, levels=("x86-64-v2",))
    bindir = base / "prefix" / "bin"
    bindir.mkdir()
    return {
        "full": full,
        "v2only": only_v2,
        "origin-runpath": link_program(bindir / "origin-runpath", full, tag="runpath",
                                       path="$ORIGIN/../lib"),
        "rpath-v2only": link_program(bindir / "rpath-v2only", only_v2, tag="rpath",
                                     path=str(only_v2)),
        "runpath-v2only": link_program(bindir / "runpath-v2only", only_v2, tag="runpath",
                                       path=str(only_v2)),
    }


CASES = [
    ("origin-runpath", None),   # $ORIGIN expansion
    ("rpath-v2only", "full"),   # DT_RPATH beats the library path
    ("runpath-v2only", "full"), # the library path beats DT_RUNPATH
]
CPUS = ["host"] + (["nehalem", "haswell"] if shutil.which("qemu-x86_64") else [])


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize(("program", "library_path"), CASES)
def test_dt_paths_agree_with_the_real_loader(
    setup: dict[str, Path], program: str, library_path: str | None, cpu: str
) -> None:
    prog = setup[program]
    facts = read_elf(prog, with_exports=False)
    assert facts.rpath or facts.runpath
    dirs = [setup[library_path]] if library_path else []
    model = cpu_model(cpu)
    real = probe(SONAME, program=prog, library_path=dirs, qemu_cpu=model.qemu_cpu)
    res = resolve(SONAME, model, library_path=dirs, rpath=facts.rpath,
                  runpath=facts.runpath, origin=prog.parent)
    assert real.path is not None, real
    assert res.path == real.path, (real, res.trace)
