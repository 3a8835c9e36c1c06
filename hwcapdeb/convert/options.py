"""What to convert to: :class:`ConvertOptions` and the checks that need no source package."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwcapdeb.errors import UsageError
from hwcapdeb.profiles import Profile

MODES = ("addon", "embed")
LAYOUTS = ("inline", "split")
_SUFFIX = re.compile(r"^[A-Za-z0-9.+~]+$")
#: NAME=VALUE that the generated sh and make lines can carry unquoted
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^'\"\n\\`$]*$")


@dataclass(frozen=True)
class ConvertOptions:
    profiles: tuple[Profile, ...]
    layout: str = "inline"
    version_suffix: str | None = None
    #: NAME=VALUE given to every variant's make command line (beats the rules' own
    #: assignments), e.g. DISPATCH=0 for a package whose runtime dispatcher refuses -mavx
    variant_make_vars: tuple[str, ...] = ()
    #: NAME=VALUE put into every variant build's environment
    variant_env: tuple[str, ...] = ()
    #: addon (Build-Depends: dh-sequence-hwcaps + debian/hwcaps), embed (the
    #: machinery copied into debian/hwcapdeb/), or None: addon for rules using
    #: dh's sequencer, else embed
    mode: str | None = "embed"


def check_options(options: ConvertOptions) -> str:
    """The profiles' one architecture; UsageError for options no package could take."""
    if not options.profiles:
        raise UsageError("no profile given", hint="pass --profile, e.g. --profile x86-64-v3")
    arches = sorted({p.arch for p in options.profiles})
    if len(arches) > 1:
        raise UsageError(
            f"the profiles are for different architectures ({', '.join(arches)})",
            hint="convert with the profiles of one architecture",
        )
    if options.mode is not None and options.mode not in MODES:
        raise UsageError(f"unknown mode '{options.mode}'", hint="use addon or embed")
    if options.layout not in LAYOUTS:
        raise UsageError(f"unknown layout '{options.layout}'", hint="use inline or split")
    if options.version_suffix is not None and not _SUFFIX.match(options.version_suffix):
        raise UsageError(
            f"--version-suffix '{options.version_suffix}' has characters a version cannot have",
            hint="use letters, digits, '.', '+' or '~'",
        )
    for item in (*options.variant_make_vars, *options.variant_env):
        if not _ASSIGNMENT.match(item):
            raise UsageError(
                f"'{item}' is not NAME=VALUE",
                hint="names are letters, digits and '_'; values cannot contain quotes or newlines",
            )
    return arches[0]
