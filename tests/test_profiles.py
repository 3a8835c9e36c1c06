"""The profile data: valid against its schema, exactly glibc's lists, sane lookups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from hwcapdeb import profiles
from hwcapdeb.cli import main
from hwcapdeb.errors import ProfileError, UnsupportedArchitecture, UsageError

DATA = Path(profiles.__file__).resolve().parent.parent / "profiles"
EXAMPLE_PROFILES = Path(__file__).resolve().parent.parent / "examples" / "profiles"

# glibc sysdeps/x86/get-isa-level.h, the "usable" features of each level.
GLIBC_X86 = {
    "baseline": {"CMOV", "CX8", "FPU", "FXSR", "MMX", "SSE", "SSE2"},
    "x86-64-v2": {"CMPXCHG16B", "LAHF64_SAHF64", "POPCNT", "SSE3", "SSSE3", "SSE4_1", "SSE4_2"},
    "x86-64-v3": {"AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA", "LZCNT", "MOVBE"},
    "x86-64-v4": {"AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL"},
}


@pytest.mark.parametrize("path", sorted((DATA / "arch").glob("*.json")), ids=lambda p: p.stem)
def test_arch_files_match_schema(path: Path) -> None:
    schema = json.loads((DATA / "arch.schema.json").read_text())
    jsonschema.validate(json.loads(path.read_text()), schema)


@pytest.mark.parametrize(
    "path",
    [*sorted((DATA / "profiles").glob("*.json")), *sorted(EXAMPLE_PROFILES.glob("*.json"))],
    ids=lambda p: p.stem,
)
def test_profile_files_match_schema(path: Path) -> None:
    schema = json.loads((DATA / "profile.schema.json").read_text())
    jsonschema.validate(json.loads(path.read_text()), schema)


def test_amd64_levels_are_glibcs_cumulative_sets() -> None:
    amd64 = profiles.architecture("amd64")
    assert [lv.name for lv in amd64.search_order] == ["x86-64-v4", "x86-64-v3", "x86-64-v2"]
    cumulative: set[str] = set()
    for level in amd64.all_levels:
        cumulative |= GLIBC_X86[level.name]
        assert level.features == cumulative, level.name
    assert [lv.marker_bits for lv in amd64.all_levels] == [0x1, 0x3, 0x7, 0xF]


def test_profiles_json_lists_exactly_glibcs_sets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--arch", "amd64", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == 1
    (amd64,) = document["architectures"]
    for level in amd64["levels"]:
        assert set(level["adds"]) == GLIBC_X86[level["name"]]


def test_other_architectures() -> None:
    ppc64el = profiles.architecture("ppc64el")
    assert [lv.name for lv in ppc64el.search_order] == ["power10", "power9"]
    assert [lv.name for lv in profiles.architecture("s390x").search_order] == [
        "z17", "z16", "z15", "z14", "z13",
    ]
    with pytest.raises(UnsupportedArchitecture):
        profiles.architecture("arm64").require_hwcaps()


@pytest.mark.parametrize("arch", ["arm64", "armhf", "i386"])
def test_profiles_for_arch_without_hwcaps_is_one_line_exit_2(
    arch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "--arch", arch]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no glibc-hwcaps" in err


def test_resolve_names_aliases_and_typos() -> None:
    registry = profiles.ProfileRegistry()
    assert registry.resolve("avx2").name == "x86-64-v3"
    assert registry.resolve("avx512").level.name == "x86-64-v4"
    assert registry.resolve("baseline").is_baseline
    with pytest.raises(UsageError, match="did you mean 'x86-64-v3'"):
        registry.resolve("x86-64-v33")
    chosen = registry.resolve_many(["baseline,x86-64-v4", "avx2", "v3"])
    assert [p.name for p in chosen] == ["x86-64-v3", "x86-64-v4"]
    with pytest.raises(UsageError, match="both install into"):
        registry.resolve_many(["x86-64-v4", "x86-64-v4-512"])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_builtin_profiles_enable_nothing_beyond_their_level() -> None:
    for profile in profiles.ProfileRegistry().all("amd64"):
        profiles.check_profile(profile)  # raises if the flags need more than the level
        assert profiles.extra_features(profile) == frozenset()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_haswell_flavour_is_refused_unless_allowed(tmp_path: Path) -> None:
    haswell = profiles.load_profile_file(EXAMPLE_PROFILES / "haswell.json")
    assert haswell.level.name == "x86-64-v3"
    assert "PCLMUL" in profiles.extra_features(haswell)  # measured from gcc -dM
    with pytest.raises(ProfileError, match="PCLMUL"):
        profiles.check_profile(haswell)
    data = json.loads((EXAMPLE_PROFILES / "haswell.json").read_text())
    data["allow_extra_features"] = True
    allowed = tmp_path / "haswell-ok.json"
    allowed.write_text(json.dumps(data))
    profiles.check_profile(profiles.load_profile_file(allowed))


def test_user_profile_dir_and_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = {
        "name": "v3-o3", "arch": "amd64", "level": "x86-64-v3",
        "flags": {"gcc": {"cflags": ["-march=x86-64-v3", "-mneeded", "-O3"], "ldflags": []}},
    }
    (tmp_path / "v3-o3.json").write_text(json.dumps(good))
    monkeypatch.setenv("HWCAPDEB_PROFILE_PATH", str(tmp_path))
    assert profiles.ProfileRegistry().resolve("v3-o3").level.name == "x86-64-v3"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**good, "level": "x86-64-v9"}))
    with pytest.raises(UsageError, match="no glibc-hwcaps level 'x86-64-v9'"):
        profiles.load_profile_file(bad)
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        profiles.load_profile_file(bad)
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ProfileError, match="required"):
        profiles.load_profile_file(bad)


def test_drop_levels_by_level_or_profile_name() -> None:
    """convert --drop: what bench dropped leaves the build; typos and dropping all are refused."""
    chosen = profiles.ProfileRegistry().resolve_many(["x86-64-v2,x86-64-v3,x86-64-v4"])
    kept = profiles.drop_levels(chosen, ["x86-64-v2, x86-64-v4"])
    assert [p.level.name for p in kept] == ["x86-64-v3"]
    assert [p.level.name for p in profiles.drop_levels(chosen, ["x86-64-v3"])] == \
        ["x86-64-v2", "x86-64-v4"]
    with pytest.raises(UsageError, match="no profile given builds that level"):
        profiles.drop_levels(chosen, ["x86-64-v9"])
    with pytest.raises(UsageError, match="leaves no profile to build"):
        profiles.drop_levels(chosen, ["x86-64-v2", "x86-64-v3,x86-64-v4"])
