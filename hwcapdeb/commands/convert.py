"""``hwcapdeb convert``: make a source package build glibc-hwcaps variants."""

from __future__ import annotations

import platform
from pathlib import Path

import click

from hwcapdeb.convert import LAYOUTS, MODES, ConvertOptions, check_options, convert
from hwcapdeb.profiles import ProfileRegistry, check_profile


@click.command("convert")
@click.argument("src_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--profile",
    "-p",
    "profiles",
    multiple=True,
    required=True,
    help="Profile to build (name, alias or .json file); repeat or comma-separate.",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="inline",
    show_default=True,
    help="inline: variants in the library package; split: one package per level.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=None,
    help="addon: Build-Depends on dh-sequence-hwcaps plus debian/hwcaps (the default "
    "for rules using dh); embed: the machinery copied into debian/hwcapdeb/ (the "
    "default otherwise; no new build dependency).",
)
@click.option("--dry-run", "-n", is_flag=True, help="Print the diff; change nothing.")
@click.option("--version-suffix", help="Add a changelog entry with version+SUFFIX (e.g. +hwcaps1).")
@click.option(
    "--variant-make-var",
    "make_vars",
    multiple=True,
    metavar="NAME=VALUE",
    help="Pass NAME=VALUE on each variant build's make command line (repeatable).",
)
@click.option(
    "--variant-env",
    "variant_env",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set NAME=VALUE in each variant build's environment (repeatable).",
)
@click.option(
    "--drop",
    "drop",
    multiple=True,
    metavar="LEVEL",
    help="Leave out LEVEL's profile (repeat or comma-separate), e.g. what "
    "'hwcapdeb bench' dropped.",
)
@click.option("--verbose", "-v", is_flag=True, help="Name every file written.")
def command(
    src_dir: Path,
    profiles: tuple[str, ...],
    layout: str,
    mode: str | None,
    dry_run: bool,
    version_suffix: str | None,
    make_vars: tuple[str, ...],
    variant_env: tuple[str, ...],
    drop: tuple[str, ...],
    verbose: bool,
) -> None:
    """Convert the Debian source package in SRC_DIR (only debian/ changes).

    The converted package builds with plain dpkg-buildpackage or sbuild,
    without hwcapdeb installed (addon mode: with dh-hwcaps installed);
    'hwcapdeb revert' restores the original.
    Converting again with the same options changes nothing.
    """
    resolved = ProfileRegistry().resolve_many(list(profiles))
    if drop:
        from hwcapdeb.bench import drop_levels  # the bench verdict, applied

        resolved = drop_levels(resolved, drop)
    options = ConvertOptions(
        tuple(resolved),
        layout=layout,
        version_suffix=version_suffix,
        variant_make_vars=make_vars,
        variant_env=variant_env,
        mode=mode,
    )
    check_options(options)
    for profile in resolved:
        # the local gcc can only judge flags for its own architecture
        if profile.level.arch == _machine_arch():
            check_profile(profile)
    plan = convert(src_dir, options, dry_run=dry_run)
    if dry_run:
        click.echo(plan.diff(), nl=False)
    elif verbose:
        # plan.changes() is empty now: list what the conversion owns
        for rel in plan.files:
            click.echo(f"hwcapdeb: {rel}")


def _machine_arch() -> str:
    """This machine's Debian architecture (amd64, ppc64el, s390x...)."""
    return {"x86_64": "amd64", "ppc64le": "ppc64el", "s390x": "s390x"}.get(
        platform.machine(), platform.machine()
    )
