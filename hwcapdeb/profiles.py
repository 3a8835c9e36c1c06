"""ISA levels and build profiles, loaded from the data in profiles/.

Two kinds of data, each with a JSON schema beside it:

* ``profiles/arch/<arch>.json``: what glibc defines for one Debian
  architecture: its glibc-hwcaps levels (subdirectory names), the CPU features
  each level requires (glibc's own names and lists), the x86 ISA marker bit.
* ``profiles/profiles/<name>.json``: a *profile* is one variant build: the
  compiler flags to use and the level (directory) it installs into.  Users add
  their own in ``$HWCAPDEB_PROFILE_PATH`` (colon separated directories),
  ``~/.config/hwcapdeb/profiles/`` or by passing a ``.json`` path.

A profile whose flags enable CPU features its level does not guarantee
(``-march=haswell`` enables AES/PCLMUL, which x86-64-v3 does not require) is
refused unless it sets ``allow_extra_features``: the loader would pick it on
CPUs where it crashes.  The features are measured from the compiler itself
(``gcc -dM -E``), so any flag is judged by what it really enables.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from elftools.elf.enums import ENUM_E_MACHINE

from hwcapdeb.errors import HwcapdebWarning, ProfileError, UnsupportedArchitecture, UsageError
from hwcapdeb.validate import read_json

BASELINE = "baseline"


def _data_root() -> Path:
    return Path(str(resources.files("hwcapdeb.profile_data")))


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    with (_data_root() / name).open() as fh:
        schema: dict[str, Any] = json.load(fh)
        return schema


@functools.cache
def _validator(name: str) -> Any:
    schema = _schema(name)
    return jsonschema.validators.validator_for(schema)(schema)


def _load_json(path: Path, schema_name: str) -> dict[str, Any]:
    # bounded, regular files only, strict UTF-8, nesting limited: one line for any bad file
    what = "profile" if schema_name == "profile.schema.json" else "data file"
    data = read_json(path, what=what, error=ProfileError)
    check_schema(data, schema_name, path)
    result: dict[str, Any] = data
    return result


def check_schema(data: Any, schema_name: str, path: Path, top: str = "top level") -> None:
    """ProfileError naming ``path`` and the field unless ``data`` fits profiles/``schema_name``."""
    try:
        # one validator per schema: jsonschema.validate() checks the schema itself
        # and builds a validator on every call (a fifth of a second for the profiles)
        error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(data))
        if error is not None:
            raise error
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or top
        raise ProfileError(f"{path}: {where}: {err.message}", hint=f"see {schema_name}") from None


@dataclass(frozen=True)
class Level:
    """One glibc-hwcaps level (or the baseline) of one architecture."""

    name: str
    arch: str
    rank: int  # 0 = baseline, higher = more features; glibc searches highest first
    adds: tuple[str, ...]
    features: frozenset[str]  # cumulative: everything a CPU needs for this level
    marker_bit: int | None
    reference_flags: tuple[str, ...]
    qemu_cpu: str | None = None
    glibc_min: str | None = None

    @property
    def is_baseline(self) -> bool:
        return self.rank == 0

    @property
    def marker_bits(self) -> int:
        """Cumulative GNU_PROPERTY_X86_ISA_1_NEEDED bits (what gcc -mneeded emits; -z gives one)."""
        return (1 << self.rank + 1) - 1 if self.marker_bit is not None else 0


def e_machine_name(number: int) -> str:
    """pyelftools' name of an e_machine number (EM_X86_64...), the number if it has none."""
    return next((k for k, v in ENUM_E_MACHINE.items() if v == number), str(number))


@dataclass(frozen=True)
class ElfIdentity:
    """What glibc's open_verify() demands of an architecture's objects (elf/dl-load.c)."""

    elf_class: int  # 32 or 64
    little_endian: bool
    e_machine: int
    page_size: int  # the largest page size its loader aligns segments to

    @property
    def machine(self) -> str:
        """pyelftools' name of e_machine (EM_X86_64...), as ElfFacts.machine spells it."""
        return e_machine_name(self.e_machine)

    @property
    def ei_data(self) -> int:
        """EI_DATA: 1 little-, 2 big-endian."""
        return 1 if self.little_endian else 2


@dataclass(frozen=True)
class Architecture:
    """What glibc defines for one Debian architecture."""

    arch: str
    triplet: str
    glibc_hwcaps: bool
    loader: str | None
    qemu: str | None
    marker: str | None
    source: str
    baseline: Level
    levels: tuple[Level, ...]  # lowest first, baseline excluded
    uname_machine: str | None = None  # uname -m of a native machine
    elf: ElfIdentity | None = None  # None: hwcapdeb does not load this architecture's objects

    @property
    def has_isa_marker(self) -> bool:
        """Whether glibc checks an ISA marker before loading (x86's ISA_1_NEEDED, 2.33+)."""
        return self.marker == "x86-isa-1-needed"

    @property
    def all_levels(self) -> tuple[Level, ...]:
        return (self.baseline, *self.levels)

    @property
    def search_order(self) -> tuple[Level, ...]:
        """glibc-hwcaps subdirectories in the loader's priority order (highest first)."""
        return tuple(reversed(self.levels))

    def level(self, name: str) -> Level:
        for level in self.all_levels:
            if level.name == name:
                return level
        known = ", ".join(lv.name for lv in self.levels) or "none"
        raise UsageError(f"{self.arch} has no glibc-hwcaps level '{name}' (known: {known})")

    def require_hwcaps(self) -> None:
        if not self.glibc_hwcaps:
            raise UnsupportedArchitecture(
                f"{self.arch} has no glibc-hwcaps subdirectories in any glibc release",
                hint="variants can only be built for amd64, ppc64el and s390x",
            )


@dataclass(frozen=True)
class Profile:
    """One variant build: flags for each compiler and the level it installs into."""

    name: str
    level: Level
    aliases: tuple[str, ...] = ()
    description: str = ""
    cflags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # compiler -> flags
    ldflags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allow_extra_features: bool = False
    origin: str = "built-in"

    @property
    def arch(self) -> str:
        return self.level.arch

    @property
    def is_baseline(self) -> bool:
        return self.level.is_baseline

    def flags_for(self, compiler: str = "gcc") -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(cflags, ldflags) for ``compiler`` ('gcc' or 'clang'); gcc's if none given."""
        key = compiler if compiler in self.cflags else "gcc"
        return self.cflags.get(key, ()), self.ldflags.get(key, ())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "level": self.level.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "flags": {
                cc: {"cflags": list(self.cflags[cc]), "ldflags": list(self.ldflags.get(cc, ()))}
                for cc in self.cflags
            },
            "allow_extra_features": self.allow_extra_features,
            "origin": self.origin,
        }


def _parse_elf(raw: dict[str, Any] | None) -> ElfIdentity | None:
    if raw is None:
        return None
    return ElfIdentity(raw["class"], raw["data"] == "little", raw["e_machine"], raw["page_size"])


def _parse_architecture(data: dict[str, Any]) -> Architecture:
    arch = data["arch"]
    base = data["baseline"]
    features = frozenset(base["adds"])
    baseline = Level(
        name=BASELINE,
        arch=arch,
        rank=0,
        adds=tuple(base["adds"]),
        features=features,
        marker_bit=base["marker_bit"],
        reference_flags=tuple(base["reference_flags"]),
    )
    levels = []
    for rank, raw in enumerate(data["levels"], start=1):
        features = features | frozenset(raw["adds"])
        levels.append(
            Level(
                name=raw["name"],
                arch=arch,
                rank=rank,
                adds=tuple(raw["adds"]),
                features=features,
                marker_bit=raw["marker_bit"],
                reference_flags=tuple(raw["reference_flags"]),
                qemu_cpu=raw["qemu_cpu"],
                glibc_min=raw["glibc_min"],
            )
        )
    return Architecture(
        arch=arch,
        triplet=data["triplet"],
        glibc_hwcaps=data["glibc_hwcaps"],
        loader=data["loader"],
        qemu=data["qemu"],
        marker=data["marker"],
        source=data["source"],
        baseline=baseline,
        levels=tuple(levels),
        uname_machine=data.get("uname_machine"),
        elf=_parse_elf(data.get("elf")),
    )


@functools.cache
def architectures() -> dict[str, Architecture]:
    """Every Debian architecture hwcapdeb knows, keyed by its dpkg name."""
    result = {}
    for path in sorted((_data_root() / "arch").glob("*.json")):
        architecture = _parse_architecture(_load_json(path, "arch.schema.json"))
        result[architecture.arch] = architecture
    return result


def architecture(arch: str) -> Architecture:
    """The architecture ``arch`` (a Debian name such as amd64), or a UsageError."""
    known = architectures()
    if arch in known:
        return known[arch]
    close = difflib.get_close_matches(arch, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(known))}"
    raise UsageError(f"unknown Debian architecture '{arch}'", hint=hint)


def architecture_for_triplet(triplet: str) -> Architecture:
    for candidate in architectures().values():
        if candidate.triplet == triplet:
            return candidate
    raise UsageError(f"unknown multiarch triplet '{triplet}'")


def _parse_profile(data: dict[str, Any], origin: str) -> Profile:
    arch = architecture(data["arch"])
    arch.require_hwcaps()
    level = arch.level(data["level"])
    if level.is_baseline:
        raise ProfileError(f"{origin}: a profile cannot install into the baseline")
    flags = data["flags"]
    return Profile(
        name=data["name"],
        level=level,
        aliases=tuple(data.get("aliases", [])),
        description=data.get("description", ""),
        cflags={cc: tuple(v["cflags"]) for cc, v in flags.items()},
        ldflags={cc: tuple(v["ldflags"]) for cc, v in flags.items()},
        allow_extra_features=data.get("allow_extra_features", False),
        origin=origin,
    )


def load_profile_file(path: Path) -> Profile:
    return _parse_profile(_load_json(path, "profile.schema.json"), str(path))


def user_profile_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("HWCAPDEB_PROFILE_PATH", "").split(":") if p]
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    dirs.append(config / "hwcapdeb" / "profiles")
    return dirs


def baseline_profile(arch: str) -> Profile:
    """The pseudo-profile of the unchanged build (no extra flags)."""
    return Profile(name=BASELINE, level=architecture(arch).baseline, description="unchanged build")


class ProfileRegistry:
    """Built-in profiles plus the user's; looks names and aliases up."""

    def __init__(self, extra_dirs: Iterable[Path] = ()) -> None:
        self._profiles: dict[str, Profile] = {}
        for path in sorted((_data_root() / "profiles").glob("*.json")):
            self._add(load_profile_file(path))
        for directory in [*user_profile_dirs(), *extra_dirs]:
            if directory.is_dir():
                for path in sorted(directory.glob("*.json")):
                    if path.is_dir():
                        continue  # a directory named like a profile is not one
                    self._add(load_profile_file(path))

    def _add(self, profile: Profile) -> None:
        # user files override built-ins of the same name: say so, it changes every build
        other = self._profiles.get(profile.name)
        if other is not None and other.origin != profile.origin:
            warnings.warn(f"profile '{profile.name}' from {profile.origin} overrides the one "
                          f"from {other.origin}", HwcapdebWarning, stacklevel=2)
        for alias in profile.aliases:
            owner = next((p for p in self._profiles.values() if p.name != profile.name
                          and alias in (p.name, *p.aliases)), None)
            if owner is not None:
                warnings.warn(f"profile '{profile.name}' from {profile.origin}: its alias "
                              f"'{alias}' already names profile '{owner.name}', which keeps it",
                              HwcapdebWarning, stacklevel=2)
        self._profiles[profile.name] = profile

    def all(self, arch: str | None = None) -> list[Profile]:
        profiles = [p for p in self._profiles.values() if arch is None or p.arch == arch]
        return sorted(profiles, key=lambda p: (p.arch, p.level.rank, p.name))

    def resolve(self, name: str, arch: str = "amd64") -> Profile:
        """A profile by name, alias or .json path; 'baseline' is the unchanged build."""
        if name == BASELINE:
            return baseline_profile(arch)
        if name.endswith(".json"):
            path = Path(name)
            if not path.exists():
                raise UsageError(f"profile file {name} does not exist")
            return load_profile_file(path)
        for profile in self._profiles.values():
            if name == profile.name or name in profile.aliases:
                return profile
        names = [n for p in self._profiles.values() for n in (p.name, *p.aliases)]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "'hwcapdeb profiles' lists them"
        raise UsageError(f"unknown profile '{name}'", hint=hint)

    def resolve_many(self, names: Sequence[str], arch: str = "amd64") -> list[Profile]:
        """Profiles for the command line: comma lists allowed, baseline dropped, checked."""
        result: list[Profile] = []
        for item in names:
            for name in filter(None, (n.strip() for n in item.split(","))):
                profile = self.resolve(name, arch)
                if profile.is_baseline or any(p.name == profile.name for p in result):
                    continue
                result.append(profile)
        by_level: dict[str, Profile] = {}
        for profile in result:
            other = by_level.setdefault(profile.level.name, profile)
            if other is not profile:
                raise UsageError(
                    f"profiles '{other.name}' and '{profile.name}' both install into "
                    f"glibc-hwcaps/{profile.level.name}",
                    hint="choose one profile per level",
                )
        return sorted(result, key=lambda p: p.level.rank)


_FEATURE_MACRO = re.compile(r"^#define __([A-Z0-9_]+)__ 1$", re.MULTILINE)


@functools.cache
def compiler_feature_macros(compiler: str, flags: tuple[str, ...]) -> frozenset[str]:
    """ISA feature macros (``AVX2``, ``AES``...) the compiler defines with ``flags``.

    Asking the compiler is the only exact answer for arbitrary flags.
    """
    try:
        out = subprocess.run(
            [compiler, *flags, "-dM", "-E", "-x", "c", "-"],
            input="",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except FileNotFoundError:
        raise ProfileError(
            f"cannot check profile flags: '{compiler}' is not installed",
            hint=f"install {compiler}",
        ) from None
    except subprocess.CalledProcessError as err:
        first = (err.stderr.strip().splitlines() or ["failed"])[0]
        raise ProfileError(f"{compiler} rejects flags {' '.join(flags)}: {first}") from None
    return frozenset(_FEATURE_MACRO.findall(out))


def extra_features(profile: Profile, compiler: str = "gcc") -> frozenset[str]:
    """Features the profile's flags enable beyond what its level guarantees."""
    cflags, _ = profile.flags_for(compiler)
    wanted = compiler_feature_macros(compiler, cflags)
    guaranteed = compiler_feature_macros(compiler, profile.level.reference_flags)
    return wanted - guaranteed


def check_profile(profile: Profile, compiler: str = "gcc") -> None:
    """Refuse a profile whose flags need features its level does not guarantee."""
    if profile.is_baseline or profile.allow_extra_features:
        return
    extra = extra_features(profile, compiler)
    if extra:
        raise ProfileError(
            f"profile '{profile.name}' enables {', '.join(sorted(extra))}, which "
            f"glibc-hwcaps/{profile.level.name} does not guarantee: CPUs that load it could crash",
            hint='set "allow_extra_features": true in the profile to accept this',
        )


def drop_levels(profiles: Sequence[Profile], drop: Sequence[str]) -> list[Profile]:
    """``profiles`` without those of the levels (or profile names) in ``drop``.

    ``hwcapdeb convert --drop LEVEL`` uses it to act on a bench verdict; each
    item may be a comma list.  Naming a level no profile builds is a
    UsageError (a typo would otherwise ship the variant silently), and so is
    dropping every profile (revert the package instead).
    """
    names = [n.strip() for item in drop for n in item.split(",") if n.strip()]
    known = {p.level.name for p in profiles} | {p.name for p in profiles}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"--drop {unknown[0]}: no profile given builds that level",
            hint="the profiles build " + ", ".join(p.level.name for p in profiles),
        )
    kept = [p for p in profiles if p.level.name not in names and p.name not in names]
    if not kept:
        raise UsageError(
            "--drop leaves no profile to build",
            hint="no variant pays: keep the package as it is ('hwcapdeb revert' if converted)",
        )
    return kept
