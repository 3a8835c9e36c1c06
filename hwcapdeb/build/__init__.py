"""Builders: the programs that turn a (converted) source package into .debs.

Every builder implements :class:`Builder`; the CLI picks one by name
(``dpkg`` runs dpkg-buildpackage, ``sbuild`` runs sbuild).  This package is
the only place that runs package builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BuildRequest:
    """What to build and where the results go."""

    source: Path  # an unpacked, already converted source tree, or a .dsc
    out_dir: Path  # receives .debs, .changes, .buildinfo and logs
    jobs: int = 0  # 0 = number of CPUs
    nocheck: bool = False  # DEB_BUILD_OPTIONS=nocheck for the whole build
    extra_args: tuple[str, ...] = ()  # passed to the builder program as they are
    env: dict[str, str] = field(default_factory=dict)  # extra environment


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
