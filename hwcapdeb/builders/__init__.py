"""Builders: the programs that turn a (converted) source package into .debs.

Every builder implements :class:`Builder`; the CLI picks one by name
(``dpkg`` runs dpkg-buildpackage, ``sbuild`` runs sbuild).  This package is
the only place that runs package builds.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hwcapdeb.errors import UsageError


@dataclass(frozen=True)
class BuildRequest:
    """What to build and where the results go."""

    source: Path  # an unpacked, already converted source tree, or a .dsc
    out_dir: Path  # receives .debs, .changes, .buildinfo and logs
    jobs: int = 0  # 0 = number of CPUs
    nocheck: bool = False  # DEB_BUILD_OPTIONS=nocheck for the whole build
    extra_args: tuple[str, ...] = ()  # passed to the builder program as they are
    env: dict[str, str] = field(default_factory=dict)  # extra environment
    # Where the build log goes (None: the builder's own name in out_dir).
    log: Path | None = None
    # Called with every line of the build's output as it comes (progress display).
    on_line: Callable[[str], None] | None = None


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    changes: Path | None
    debs: tuple[Path, ...]
    log: Path


class Builder(Protocol):
    """A way to build a Debian source package."""

    name: str

    def check(self) -> None:
        """Raise MissingToolError (naming the package) if the builder cannot run here."""

    def build(self, request: BuildRequest) -> BuildResult:
        """Build, or raise BuildError with the log's tail."""
        ...


#: builder name -> "module:Class"; a builder whose module is missing is not offered
BUILDERS: dict[str, str] = {
    "dpkg": "hwcapdeb.builders.dpkg:DpkgBuilder",
    "sbuild": "hwcapdeb.sbuild.builder:SbuildBuilder",
}


def available_builders() -> list[str]:
    """Names of the builders whose modules are installed."""
    return [name for name, ref in BUILDERS.items() if importlib.util.find_spec(ref.split(":")[0])]


def get_builder(name: str) -> Builder:
    """A builder by name (its class called without arguments)."""
    ref = BUILDERS.get(name)
    if ref is None or name not in available_builders():
        known = ", ".join(available_builders())
        raise UsageError(f"unknown builder '{name}'", hint=f"choose one of: {known}")
    module_name, class_name = ref.split(":")
    builder: Builder = getattr(importlib.import_module(module_name), class_name)()
    return builder
