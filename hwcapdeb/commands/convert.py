"""``hwcapdeb convert``: make a source package build glibc-hwcaps variants."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.commands import options
from hwcapdeb.convert.conversion import convert
from hwcapdeb.convert.options import ConvertOptions, check_options
from hwcapdeb.glibc_rules import host_arch
from hwcapdeb.profiles import ProfileRegistry, check_profile


@click.command("convert")
@click.argument("src_dir", type=click.Path(file_okay=False, path_type=Path))
@options.profile_option()
@options.layout_option()
@options.mode_option(default=None)
@click.option("--dry-run", "-n", is_flag=True, help="Print the diff; change nothing.")
@click.option("--version-suffix", help="Add a changelog entry with version+SUFFIX (e.g. +hwcaps1).")
@options.variant_make_var_option()
@options.variant_env_option()
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
    profile_names: tuple[str, ...],
    layout: str,
    mode: str | None,
    dry_run: bool,
    version_suffix: str | None,
    variant_make_vars: tuple[str, ...],
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
    resolved = ProfileRegistry().resolve_many(list(profile_names))
    if drop:
        from hwcapdeb.profiles import drop_levels  # the bench verdict, applied

        resolved = drop_levels(resolved, drop)
    options = ConvertOptions(
        tuple(resolved),
        layout=layout,
        version_suffix=version_suffix,
        variant_make_vars=variant_make_vars,
        variant_env=variant_env,
        mode=mode,
    )
    check_options(options)
    for profile in resolved:
        # the local gcc can only judge flags for its own architecture
        if profile.level.arch == host_arch():
            check_profile(profile)
    plan = convert(src_dir, options, dry_run=dry_run)
    if dry_run:
        click.echo(plan.diff(), nl=False)
    elif verbose:
        # plan.changes() is empty now: list what the conversion owns
        for rel in plan.files:
            click.echo(f"hwcapdeb: {rel}")
