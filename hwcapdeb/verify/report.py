"""What ``hwcapdeb verify`` returns: the :class:`Report` and its JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwcapdeb.findings import Finding
from hwcapdeb.library import Library
from hwcapdeb.target_loader import TargetLoader
from hwcapdeb.verify.matrix import Cell


@dataclass(frozen=True)
class SizeRow:
    """The bytes one build of one library takes in its package."""

    package: str
    library: str
    level: str
    bytes: int
    baseline: bool = False


@dataclass
class Report:
    """What ``hwcapdeb verify`` found; ``exit_code`` 1 if any finding is an error."""

    findings: list[Finding]
    matrix: list[Cell]
    cpus: list[str]
    sizes: list[SizeRow]
    libraries: list[Library]
    arch: str = "amd64"
    loader: TargetLoader | None = None  # the ld.so that answered (None: not asked)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def added_bytes(self) -> dict[str, int]:
        """Package -> bytes its variants add over the baseline builds."""
        totals: dict[str, int] = {}
        for row in self.sizes:
            if not row.baseline:
                totals[row.package] = totals.get(row.package, 0) + row.bytes
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "loader": self.loader.to_json() if self.loader else None,
            "findings": [f.to_json() for f in self.findings],
            "matrix": [c.to_json() for c in self.matrix],
            "cpus": self.cpus,
            "sizes": [
                {"package": r.package, "library": r.library, "level": r.level, "bytes": r.bytes}
                for r in self.sizes
            ],
            "added_bytes": self.added_bytes(),
            "libraries": [
                {
                    "soname": lib.soname,
                    "libdir": lib.libdir,
                    "package": lib.package,
                    "builds": {b.level.name: b.relpath for b in lib.builds},
                }
                for lib in self.libraries
            ],
        }
