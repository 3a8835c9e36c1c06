"""Legacy hwcaps directories (tls/, x86_64/, haswell/...): searched by glibc <= 2.36
only (rule legacy-hwcaps of profiles/glibc.json).  The model against the host's real
loader under GLIBC_TUNABLES masks, against qemu's Intel Haswell (platform haswell),
and the order of the directories as glibc 2.36 builds it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hwcapdeb.cpu import apply_tunables
from hwcapdeb.cpu_sources import cpu_model, host_model
from hwcapdeb.glibc_rules import applies, legacy_dir_names, legacy_subdirs, parse_version
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from hwcapdeb.target_loader import host_loader
from hwcapdeb.verify.matrix import host_masks
from tests.elfbuild import compile_library, install_variant_tree

SONAME = "libhwtest.so.1"
AMD64 = architecture("amd64")
pytestmark = pytest.mark.skipif(
    not os.path.exists(AMD64.loader or "") or os.uname().machine != "x86_64",
    reason="needs an amd64 host",
)

#: legacy copies per layout (subdirectory -> compiled as which level)
LAYOUTS = {
    "tls": {"tls": "baseline"},
    "x86_64": {"x86_64": "baseline"},
    "tls-x86_64": {"tls/x86_64": "baseline", "x86_64": "baseline"},
    "nested": {"x86_64/x86_64": "baseline", "tls": "baseline"},
    "nested-only": {"x86_64/x86_64": "baseline"},
    "tls-nested-only": {"tls/x86_64/x86_64": "baseline"},
    "haswell": {"haswell": "x86-64-v3", "x86_64": "baseline"},
    "avx512_1": {"avx512_1": "x86-64-v4", "x86_64": "baseline"},
    "v4-marker-in-legacy": {"x86_64": "x86-64-v4"},
}


def _tree(base: Path, layout: dict[str, str], hwcaps: tuple[str, ...]) -> Path:
    install_variant_tree(base, levels=hwcaps)
    for sub, level in layout.items():
        compile_library(base / sub / SONAME, soname=SONAME, variant=f"{level}-{sub}",
                        cflags=["-march=x86-64-v4", "-mneeded"] if level == "x86-64-v4" else
                        ["-march=x86-64-v3"] if level == "x86-64-v3" else ["-march=x86-64"])
    return base


@pytest.mark.parametrize("hwcaps", [(), ("x86-64-v3",)], ids=["no-hwcaps", "v3-variant"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_host_loader_and_model_agree(name: str, hwcaps: tuple[str, ...], tmp_path: Path) -> None:
    host = host_loader(AMD64)
    tree = _tree(tmp_path, LAYOUTS[name], hwcaps)
    model_cpu = host_model()
    for mask in [None, *host_masks(model_cpu)]:
        real = probe(SONAME, library_path=[tree], tunables=mask)
        model = resolve(SONAME, apply_tunables(model_cpu, mask), library_path=[tree],
                        system=False, glibc=host.glibc)
        assert real.path == model.path, (mask, real.error, [s.to_json() for s in model.trace])
        assert (real.error is None) == (model.error is None), (mask, real.error, model.error)


@pytest.mark.parametrize("tunables", ["glibc.cpu.hwcap_mask=0", "glibc.cpu.hwcap_mask=0x2",
                                      "glibc.cpu.hwcap_mask=banana", "glibc.cpu.hwcap_mask=2zz",
                                      "glibc.cpu.hwcap_mask=0:glibc.cpu.hwcaps=-AVX2"])
@pytest.mark.parametrize("name", ["nested-only", "tls-nested-only", "x86_64"])
def test_hwcap_mask_tunable(name: str, tunables: str, tmp_path: Path) -> None:
    """glibc.cpu.hwcap_mask (2.36) drops hwcap names from the legacy power set."""
    host = host_loader(AMD64)
    tree = _tree(tmp_path, LAYOUTS[name], ())
    real = probe(SONAME, library_path=[tree], tunables=tunables)
    model = resolve(SONAME, apply_tunables(host_model(), tunables), library_path=[tree],
                    system=False, glibc=host.glibc)
    assert real.path == model.path, (real.error, [s.to_json() for s in model.trace])
    if name == "nested-only" and tunables.endswith(("=0", "=banana")):
        assert real.path == tree / SONAME  # the mask dropped x86_64/x86_64: not vacuous


def test_legacy_dirs_change_what_236_loads(tmp_path: Path) -> None:
    """Not vacuous: with glibc 2.36 the legacy copy wins over the directory itself."""
    host = host_loader(AMD64)
    if not applies("legacy-hwcaps", host.glibc):
        pytest.skip("the host's glibc does not search legacy directories")
    tree = _tree(tmp_path, LAYOUTS["x86_64"], ())
    real = probe(SONAME, library_path=[tree])
    assert real.path == tree / "x86_64" / SONAME
    newer = resolve(SONAME, host_model(), library_path=[tree], system=False, glibc="2.43")
    assert newer.path == tree / SONAME and newer.legacy_dir is None


@pytest.mark.skipif(not shutil.which("qemu-x86_64"), reason="needs qemu-user")
def test_intel_haswell_platform_under_qemu(tmp_path: Path) -> None:
    """qemu's Haswell is an Intel CPU: glibc 2.36 sets the platform to haswell."""
    host = host_loader(AMD64)
    tree = _tree(tmp_path, LAYOUTS["haswell"], ())
    haswell = cpu_model("haswell")
    assert haswell.vendor == "intel"
    real = probe(SONAME, library_path=[tree], qemu_cpu="Haswell")
    model = resolve(SONAME, haswell, library_path=[tree], system=False, glibc=host.glibc)
    assert real.path == model.path
    if applies("legacy-hwcaps", host.glibc):
        assert model.legacy_dir == "haswell"


def test_order_as_glibc_236_builds_it() -> None:
    """Measured with LD_DEBUG=libs on glibc 2.36: an AMD host and qemu's Intel Haswell."""
    amd = legacy_subdirs("amd64", host_model().features | {"AVX512F"}, "amd")
    assert amd == ["tls/x86_64/x86_64", "tls/x86_64", "tls/x86_64", "tls",
                   "x86_64/x86_64", "x86_64", "x86_64"]
    haswell = cpu_model("haswell")
    assert legacy_subdirs("amd64", haswell.features, "intel") == [
        "tls/haswell/x86_64", "tls/haswell", "tls/x86_64", "tls",
        "haswell/x86_64", "haswell", "x86_64"]
    skx = cpu_model("skylake_avx512")
    assert "haswell/avx512_1/x86_64" in legacy_subdirs("amd64", skx.features, "intel")
    masked = apply_tunables(haswell, "glibc.cpu.hwcaps=-AVX2")
    assert "haswell" not in legacy_subdirs("amd64", masked.features, "intel")


@pytest.mark.parametrize("cpu", ["x86_64", "nehalem", "haswell", "skylake_avx512",
                                 "mic_knl", "zen2", "zen4"])
@pytest.mark.parametrize("vendor", ["intel", "amd"])
def test_legacy_dir_names_cover_every_subdirectory_the_loader_tries(cpu: str, vendor: str) -> None:
    """verify's merged view and the model's legacy-copy note look only below these names:
    every path glibc 2.36 tries must start with one of them."""
    model = cpu_model(cpu)
    for tunables in (None, "glibc.cpu.hwcap_mask=0xffff"):
        for sub in legacy_subdirs("amd64", model.features, vendor, tunables):
            assert sub.split("/")[0] in legacy_dir_names(), (cpu, vendor, sub)


@pytest.mark.parametrize("glibc,searched", [("2.33", True), ("2.36", True), ("2.37", False),
                                            ("2.43", False)])
def test_rule_versions(glibc: str, searched: bool) -> None:
    assert applies("legacy-hwcaps", glibc) is searched


@pytest.mark.parametrize("bad", ["banana", "2", "2.x", "", "2.36.1"])
def test_glibc_version_is_validated(bad: str) -> None:
    from hwcapdeb.errors import UsageError
    with pytest.raises(UsageError):
        parse_version(bad)
    with pytest.raises(UsageError):
        resolve(SONAME, host_model(), system=False, glibc=bad or "x")


@pytest.mark.skipif(not shutil.which("qemu-x86_64"), reason="needs qemu-user")
def test_which_cli_models_the_hosts_legacy_dirs(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """which asks the host's loader, so the model follows the host's release by default."""
    from hwcapdeb.cli import main
    tree = _tree(tmp_path, LAYOUTS["haswell"], ())
    code = main(["which", SONAME, "--library-path", str(tree), "--cpu", "haswell"])
    out = capsys.readouterr().out
    assert code == 0 and "agrees" in out, out
    if applies("legacy-hwcaps", host_loader(AMD64).glibc):
        assert f"{tree}/haswell/{SONAME} (legacy hwcaps directory haswell/)" in out


def test_glibc_facts_match_their_schema() -> None:
    import json

    import jsonschema

    data_dir = Path(__file__).resolve().parent.parent / "profiles"
    data = json.loads((data_dir / "glibc.json").read_text())
    jsonschema.validate(data, json.loads((data_dir / "glibc.schema.json").read_text()))
    for entry in data["rules"]:
        assert entry.get("glibc_min") or entry.get("glibc_max"), entry["id"]
