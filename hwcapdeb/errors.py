"""One exception tree for the whole tool.

Every error a user can cause is a :class:`HwcapdebError`: the CLI prints its
message on one line (``hwcapdeb: error: ...``) and exits with its
``exit_code``; no traceback.  Messages say what is wrong *and* what to do.
Exit codes follow lintian/diffoscope: 0 clean, 1 problems found, 2 could not run.
"""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_CANNOT_RUN = 2


class HwcapdebError(Exception):
    """A failure the user can act on.  ``str(err)`` is the one-line message."""

    exit_code: int = EXIT_CANNOT_RUN

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}; {hint}")


class UsageError(HwcapdebError):
    """Bad arguments: unknown profile, unknown CPU name, bad tunables string."""


class ProfileError(HwcapdebError):
    """A profile file is invalid or asks for something its level cannot give."""


class UnsupportedArchitecture(HwcapdebError):
    """The architecture has no glibc-hwcaps subdirectories."""


class InputError(HwcapdebError):
    """An input file or directory is missing, unreadable or malformed."""


class SourcePackageError(HwcapdebError):
    """The Debian source package cannot be converted (and was left untouched)."""


class MissingToolError(HwcapdebError):
    """An external program is not installed; the message names its package."""


class BuildError(HwcapdebError):
    """A package build failed; the message names the variant and its log."""


class ExternalCommandError(HwcapdebError):
    """An external command failed in a way that stops the job."""


class HwcapdebWarning(UserWarning):
    """Something accepted that the user should know about (the CLI prints one line)."""
