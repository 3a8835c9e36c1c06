"""CPU models: parsing real dumps, archspec names, and glibc's tunables rules checked
against the real loader (its own --list-diagnostics under GLIBC_TUNABLES)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwcapdeb.cpu import (
    apply_tunables,
    feature_table,
    highest_level,
    hwcaps_tunable,
    supported_levels,
    why_not,
)
from hwcapdeb.cpu_sources import cpu_model, load_dump, parse_cpuinfo, parse_diagnostics
from hwcapdeb.errors import InputError, UsageError
from hwcapdeb.profiles import architecture

DATA = Path(__file__).parent / "data"
AMD64 = architecture("amd64")
LOADER = AMD64.loader or ""
needs_loader = pytest.mark.skipif(not os.path.exists(LOADER), reason="no amd64 loader")


def diagnostics(tunables: str | None = None, qemu: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    prefix = ["qemu-x86_64", "-cpu", qemu] if qemu else []
    return subprocess.run(
        [*prefix, LOADER, "--list-diagnostics"], env=env, capture_output=True, text=True,
        check=True,
    ).stdout


def active_subdirs(text: str) -> int:
    """How many glibc-hwcaps subdirectories the real loader searches (its own bitmask)."""
    m = re.search(r"^dl_hwcaps_subdirs_active=0x([0-9a-f]+)$", text, re.M)
    assert m, "no dl_hwcaps_subdirs_active in the diagnostics"
    return bin(int(m.group(1), 16)).count("1")


def test_feature_table_covers_every_level_feature() -> None:
    names = feature_table().names
    for level in AMD64.all_levels:
        assert level.features <= names, level.features - names


@pytest.mark.parametrize(
    ("name", "qemu", "level"),
    [("Haswell", "Haswell", "x86-64-v3"), ("Nehalem", "Nehalem", "x86-64-v2"),
     ("qemu64", "qemu64", "baseline")],
)
def test_saved_diagnostics_from_qemu(name: str, qemu: str, level: str) -> None:
    model = load_dump(DATA / f"ld-diagnostics-qemu-{name}.txt")
    assert highest_level(model).name == level
    assert model.isa_level is not None and model.isa_level.name == level
    assert "diagnostics" in model.source


def test_saved_diagnostics_taken_under_a_mask_keep_the_unmasked_isa_level() -> None:
    model = load_dump(DATA / "ld-diagnostics-host-masked-AVX2.txt")
    assert "AVX2" not in model.features
    assert highest_level(model).name == "x86-64-v2"
    assert model.isa_level is not None and model.isa_level.rank > 2  # isa_1 was 0xf
    assert "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2" in model.source


def test_saved_cpuinfo() -> None:
    model = load_dump(DATA / "cpuinfo-amd64-host.txt")
    assert "cpuinfo" in model.source
    assert {"SSE3", "LAHF64_SAHF64", "CMPXCHG16B", "LZCNT", "OSXSAVE"} <= model.features
    assert highest_level(model).name == "x86-64-v4"  # captured on an AVX-512 machine


def test_cpuinfo_without_xsave_has_no_usable_avx() -> None:
    flags = "fpu cx8 cmov mmx fxsr sse sse2 pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm avx avx2"
    model = parse_cpuinfo(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert "AVX" not in model.features
    assert highest_level(model).name == "x86-64-v2"
    assert why_not(model, AMD64.level("x86-64-v3"))[:2] == ["AVX", "AVX2"]


@needs_loader
def test_live_diagnostics_agree_with_live_cpuinfo() -> None:
    real = parse_diagnostics(diagnostics(), "live")
    mine = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    assert highest_level(real) == highest_level(mine)
    for level in AMD64.all_levels:
        assert (level.features & real.features) == (level.features & mine.features), level.name
    # the loader's own answer, cross-checked with its bitmask
    assert len(supported_levels(real)) - 1 == active_subdirs(diagnostics())


@needs_loader
def test_host_model_comes_from_the_real_loader() -> None:
    host = cpu_model("host")
    assert host.source.startswith("real loader")
    assert host.isa_1 == int(re.search(r"isa_1=0x(\w+)", diagnostics()).group(1), 16)  # type: ignore[union-attr]


def _tunable_cases() -> list[str]:
    table = feature_table()
    cases = [f"-{f}" for lv in AMD64.all_levels for f in lv.adds]  # maskable or not
    cases += ["-XSAVE", "-XSAVE,-XSAVEC", "-OSXSAVE", "+AVX2", "-avx2", "-AVX2,+AVX2",
              "-AVX2_Usable", "-AVX512F,,-BMI2", "-Prefer_No_AVX512", "-NOSUCH"]
    assert len(table.maskable) > 20
    return cases


@needs_loader
@pytest.mark.parametrize("mask", _tunable_cases())
def test_tunables_match_the_real_loader(mask: str) -> None:
    tunables = f"glibc.cpu.hwcaps={mask}"
    text = diagnostics(tunables)
    model = apply_tunables(cpu_model("host"), tunables)
    assert len(supported_levels(model)) - 1 == active_subdirs(text), mask
    isa = re.search(r"isa_1=0x(\w+)", text)
    assert isa and model.isa_1 == int(isa.group(1), 16)  # masks never change isa_1


def test_tunables_unknown_and_plus_are_ignored_and_reported() -> None:
    base = cpu_model("haswell")
    model = apply_tunables(base, "glibc.cpu.hwcaps=+AVX512F,-avx2,-F16C")
    assert model.features == base.features
    assert len(model.ignored_tunables) == 3
    assert "never enables" in model.ignored_tunables[0]


def test_tunables_other_tunables_pass_and_last_hwcaps_wins() -> None:
    assert hwcaps_tunable("glibc.malloc.check=3:glibc.cpu.hwcaps=-AVX2") == "-AVX2"
    assert hwcaps_tunable("glibc.malloc.check=3") is None


@pytest.mark.parametrize("bad", ["-AVX2", "glibc.cpu.hwcaps", "-AVX2,-BMI2"])
def test_malformed_tunables(bad: str) -> None:
    """Nothing glibc would read (no name=value at all): the mask passed alone."""
    with pytest.raises(UsageError):
        hwcaps_tunable(bad)


@pytest.mark.parametrize(
    ("tunables", "value"),
    [("glibc.cpu.hwcaps=-AVX2:", "-AVX2"),  # a trailing ':'
     ("glibc.malloc.check=1:glibc.cpu.hwcaps=-AVX2,-BMI2", "-AVX2,-BMI2"),
     (":junk:glibc.cpu.hwcaps=-AVX2", "-AVX2"),  # an item without '=' is skipped
     ("=x", None), ("glibc..cpu=1", None),  # unknown names: ignored by glibc
     ("glibc.cpu.hwcaps=-AVX2:glibc.cpu.hwcaps=-SSE4_2", "-SSE4_2")],
)
def test_tunables_glibc_accepts_are_accepted(tunables: str, value: str | None) -> None:
    """glibc 2.36's parse_tunables() reads these; so does hwcapdeb (elf/dl-tunables.c)."""
    assert hwcaps_tunable(tunables) == value


@pytest.mark.parametrize(
    ("name", "level", "qemu"),
    [("x86_64", "baseline", "qemu64"), ("nehalem", "x86-64-v2", "Nehalem"),
     ("haswell", "x86-64-v3", "Haswell"), ("skylake_avx512", "x86-64-v4", None),
     ("icelake", "x86-64-v4", None), ("zen2", "x86-64-v3", None), ("zen4", "x86-64-v4", None),
     ("x86_64_v2", "x86-64-v2", None), ("x86-64-v3", "x86-64-v3", None)],
)
def test_archspec_names(name: str, level: str, qemu: str | None) -> None:
    model = cpu_model(name)
    assert highest_level(model).name == level
    assert model.qemu_cpu == qemu
    assert model.source.startswith("archspec")


def test_unknown_cpu_suggests() -> None:
    with pytest.raises(UsageError, match="did you mean 'haswell'"):
        cpu_model("haswel")


def test_unrecognised_dump(tmp_path: Path) -> None:
    bad = tmp_path / "dump.txt"
    bad.write_text("hello\n")
    with pytest.raises(InputError, match="neither"):
        cpu_model(str(bad))
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    with pytest.raises(InputError, match="not an x86"):
        cpu_model(str(arm))


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
@pytest.mark.parametrize("name", sorted(feature_table().qemu_models))
def test_named_cpu_matches_what_qemu_shows_the_loader(name: str) -> None:
    named = cpu_model(name)
    assert named.qemu_cpu
    seen = parse_diagnostics(diagnostics(qemu=named.qemu_cpu), named.qemu_cpu)
    assert highest_level(seen) == highest_level(named)
    assert seen.isa_1 == named.isa_1
    # what the named model has, the emulated CPU has too (qemu may add more)
    level_features = {f for lv in AMD64.all_levels for f in lv.features}
    assert (named.features - seen.features) & level_features == set()


def test_py_cpuinfo_fallback_agrees_with_the_loader() -> None:
    from hwcapdeb.cpu_sources import host_model_from_py_cpuinfo

    fallback = host_model_from_py_cpuinfo()
    assert fallback.source.startswith("py-cpuinfo")
    if os.path.exists(LOADER):
        real = cpu_model("host")
        assert highest_level(fallback) == highest_level(real)
        assert fallback.isa_1 == real.isa_1


@needs_loader
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(sorted(feature_table().maskable | {"F16C", "SSE3", "NOSUCH"})),
        min_size=1, max_size=4,
    ),
    st.booleans(),
)
def test_random_mask_combinations_match_the_real_loader(names: list[str], plus: bool) -> None:
    items = [f"-{n}" for n in names] + ([f"+{names[0]}"] if plus else [])
    tunables = "glibc.cpu.hwcaps=" + ",".join(items)
    model = apply_tunables(cpu_model("host"), tunables)
    assert len(supported_levels(model)) - 1 == active_subdirs(diagnostics(tunables)), tunables
