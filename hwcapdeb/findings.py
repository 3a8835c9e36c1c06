"""The one finding type: a lintian-style verdict with its reason.

Tags and their severities, explanations and references are data
(``profiles/tags/*.tag``, :mod:`hwcapdeb.tags`); a finding names one.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_LETTER = {"error": "E", "warning": "W", "info": "I"}


@dataclass(frozen=True)
class Finding:
    """One lintian-style finding: every verdict carries its reason."""

    severity: str  # error, warning, info
    tag: str
    package: str
    path: str  # inside the package: usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3
    message: str

    def lintian_line(self) -> str:
        letter = SEVERITY_LETTER[self.severity]
        return f"{letter}: {self.package}: {self.tag} {self.path} ({self.message})"

    def file_line(self, subject: str | None = None) -> str:
        """The line for a finding about a whole file (an sbuildrc), which has no path
        inside a package: ``E: SUBJECT: tag message``, SUBJECT the package by default."""
        letter = SEVERITY_LETTER[self.severity]
        return f"{letter}: {subject or self.package}: {self.tag} {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "tag": self.tag,
            "package": self.package,
            "path": self.path,
            "message": self.message,
        }
