"""``--version-suffix``: a new debian/changelog entry, as ``dch -v`` would write it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from debian.changelog import Changelog
from debian.debian_support import Version

from hwcapdeb.errors import UsageError


def changelog_author(original: str) -> str:
    """Who signs a new changelog entry: DEBFULLNAME/DEBEMAIL (as dch), else the last author."""
    name = os.environ.get("DEBFULLNAME") or os.environ.get("NAME")
    mail = os.environ.get("DEBEMAIL") or os.environ.get("EMAIL")
    return f"{name} <{mail}>" if name and mail else str(Changelog(original, max_blocks=1).author)


def changelog_entry(
    original: str, suffix: str, levels: Sequence[str], date: str, author: str
) -> str:
    """The text of debian/changelog with a new top entry for version+suffix (dch -v)."""
    top = Changelog(original, max_blocks=1)
    new_version = f"{top.version}{suffix}"
    try:
        if Version(new_version) <= Version(str(top.version)):
            raise UsageError(
                f"--version-suffix '{suffix}' gives {new_version}, not newer than {top.version}",
                hint="use a suffix such as '+hwcaps1'",
            )
    except ValueError:
        raise UsageError(f"--version-suffix '{suffix}' gives an invalid version") from None
    block = Changelog()
    block.new_block(
        package=top.package,
        version=new_version,
        distributions=top.distributions,
        urgency=top.urgency,
        author=author,
        date=date,
        changes=[
            "",
            f"  * Build the libraries also for {', '.join(levels)} and ship them in",
            "    glibc-hwcaps/ (hwcapdeb convert).",
            "",
        ],
    )
    return str(block).rstrip("\n") + "\n\n" + original
