"""Options several subcommands share, each declared once (as auditwheel's ``options.py``).

Every function returns a click decorator carrying the option's name, parameter
name, type, metavar and help text; the few arguments say only what truly
differs between commands (required or not, the default, what the default is
where the command finds it).  The manual pages are generated from these.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: what a --cpu value may be (hwcapdeb.cpu_sources.cpu_model reads it)
CPU_SPEC = ("'host', an archspec name (haswell, zen4, x86_64_v2...) or a saved "
            "/proc/cpuinfo or 'ld.so --list-diagnostics' file")

#: prefix of the conversion options of 'hwcapdeb sbuild-config' (they need --profile)
WITH_PROFILE = "With --profile: "


def _help(text: str, prefix: str = "", default: str = "") -> str:
    """One help text: PREFIX (e.g. WITH_PROFILE), TEXT, then where the default comes from."""
    if prefix:
        text = text[0].lower() + text[1:]
    return f"{prefix}{text}" + (f" (default: {default})" if default else "") + "."


def profile_option(*, required: bool = True, prefix: str = "") -> Callable[[F], F]:
    """--profile/-p PROFILE (repeatable, comma lists allowed) -> ``profile_names``."""
    return click.option(
        "--profile", "-p", "profile_names", multiple=True, required=required, metavar="PROFILE",
        help=_help("Profile to add: a name, an alias or a .json file (see 'hwcapdeb profiles'); "
                   "repeat or comma-separate", prefix),
    )


def layout_option(*, prefix: str = "") -> Callable[[F], F]:
    """--layout inline|split -> ``layout``."""
    from hwcapdeb.convert.options import LAYOUTS

    return click.option(
        "--layout", type=click.Choice(LAYOUTS), default="inline", show_default=True,
        help=_help("inline: variants in the library's own package; split: one package per "
                   "level", prefix),
    )


def mode_option(*, default: str | None = "embed", prefix: str = "") -> Callable[[F], F]:
    """--mode addon|embed -> ``mode`` (None: convert chooses from debian/rules)."""
    from hwcapdeb.convert.options import MODES

    return click.option(
        "--mode", type=click.Choice(MODES), default=default, show_default=default is not None,
        help=_help("Conversion mode: addon adds Build-Depends dh-sequence-hwcaps and "
                   "debian/hwcaps (hwcapdeb build and the sbuild hook install the dh-hwcaps .deb "
                   "from out/deb, 'make deb'); embed copies the machinery into "
                   "debian/hwcapdeb/ (no new build dependency)", prefix,
                   "" if default is not None else "addon for rules using dh, else embed"),
    )


def variant_make_var_option(*, prefix: str = "") -> Callable[[F], F]:
    """--variant-make-var NAME=VALUE (repeatable) -> ``variant_make_vars``."""
    return click.option(
        "--variant-make-var", "variant_make_vars", multiple=True, metavar="NAME=VALUE",
        help=_help("Pass NAME=VALUE on each variant build's make command line; repeatable",
                   prefix),
    )


def variant_env_option(*, prefix: str = "") -> Callable[[F], F]:
    """--variant-env NAME=VALUE (repeatable) -> ``variant_env``."""
    return click.option(
        "--variant-env", "variant_env", multiple=True, metavar="NAME=VALUE",
        help=_help("Set NAME=VALUE in each variant build's environment; repeatable", prefix),
    )


def package_options_option(*, exists: bool = False, prefix: str = "") -> Callable[[F], F]:
    """--package-options FILE -> ``package_options``."""
    return click.option(
        "--package-options", type=click.Path(dir_okay=False, exists=exists, path_type=Path),
        metavar="FILE",
        help=_help("deb822 file, one stanza per source package (Source:): its Layout, "
                   "Variant-Make-Vars, Variant-Env, Bench-Command and Bench-Options", prefix),
    )


def dist_option(*, default: str, prefix: str = "") -> Callable[[F], F]:
    """--dist RELEASE -> ``dist``."""
    return click.option(
        "--dist", metavar="RELEASE",
        help=_help("The Debian release to build for, e.g. unstable", prefix, default),
    )


def arch_option(*, default: str | None = None, required: bool = False,
                note: str = "") -> Callable[[F], F]:
    """--arch ARCH -> ``arch_name``; NOTE says what it is, or where an unset one comes from."""
    return click.option(
        "--arch", "arch_name", metavar="ARCH", default=default, required=required,
        show_default=default is not None,
        help="Debian architecture, e.g. amd64" + (f" ({note})" if note else "") + ".",
    )


def cpu_option(*, multiple: bool, what: str, default: str | None = None, also: str = "",
               default_text: str = "") -> Callable[[F], F]:
    """--cpu CPU -> ``cpus`` (a tuple when repeatable) or ``cpu_spec``; WHAT says its role."""
    return click.option(
        "--cpu", "cpus" if multiple else "cpu_spec", multiple=multiple, metavar="CPU",
        default=default, show_default=default is not None,
        help=_help(f"{what}: {CPU_SPEC}{also}" + ("; repeatable" if multiple else ""),
                   default=default_text),
    )


def loader_root_option(*, default: str) -> Callable[[F], F]:
    """--loader-root ROOT -> ``loader_root``."""
    return click.option(
        "--loader-root", type=click.Path(path_type=Path), metavar="ROOT",
        help=_help("Ask the ld.so of this unpacked root (or chroot tarball) of the target "
                   "release", "", default),
    )


def json_option() -> Callable[[F], F]:
    """--json -> ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")
