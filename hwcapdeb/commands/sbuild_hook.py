"""``hwcapdeb sbuild-hook``: the commands hwcapdeb's sbuildrc snippet runs inside sbuild."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.bench_results import write_results
from hwcapdeb.sbuild_hooks import CampaignOptions, prepare


@click.group("sbuild-hook")
def command() -> None:
    """Hooks for sbuild's external commands (written by 'hwcapdeb sbuild-config')."""


@command.command("prepare")
@click.option("--profile", "profile_names", multiple=True, required=True, help="Profiles.")
@click.option("--arch", required=True, help="Host architecture (%SBUILD_HOST_ARCH).")
@click.option("--dsc", "dsc_spec", required=True, help="%SBUILD_DSC: a .dsc or NAME_VERSION.")
@click.option("--layout", default="inline", show_default=True, help="inline or split.")
@click.option(
    "--mode",
    type=click.Choice(("addon", "embed")),
    default="embed",
    show_default=True,
    help="Conversion mode; addon installs the dh-hwcaps .deb in the chroot.",
)
@click.option("--variant-make-var", "make_vars", multiple=True, metavar="NAME=VALUE")
@click.option("--variant-env", "variant_env", multiple=True, metavar="NAME=VALUE")
@click.option(
    "--package-options",
    type=click.Path(dir_okay=False, path_type=Path),
    help="deb822 file: per source package Layout, Variant-Make-Vars, Variant-Env.",
)
@click.argument("exec_words", nargs=-1, required=True, metavar="-- %SBUILD_CHROOT_EXEC")
def prepare_command(
    profile_names: tuple[str, ...],
    arch: str,
    dsc_spec: str,
    layout: str,
    mode: str,
    make_vars: tuple[str, ...],
    variant_env: tuple[str, ...],
    package_options: Path | None,
    exec_words: tuple[str, ...],
) -> None:
    """pre-build-commands: convert the package on the host, stage the result in the chroot."""
    options = CampaignOptions(
        layout=layout,
        variant_make_vars=make_vars,
        variant_env=variant_env,
        package_options=package_options,
        mode=mode,
    )
    prepared = prepare(dsc_spec, exec_words, profile_names, arch, options)
    click.echo(
        f"hwcapdeb: prepared {prepared.identity}: {len(prepared.delta.changed)} files changed, "
        f"{len(prepared.delta.removed)} removed"
        + (
            f", adds build-depends {' '.join(prepared.build_depends)}"
            if prepared.build_depends
            else ""
        )
    )


@command.command("results")
@click.option(
    "--package-options",
    type=click.Path(dir_okay=False, path_type=Path),
    help="deb822 file: the package's Bench-Command and Bench-Options.",
)
@click.argument("changes", type=click.Path(dir_okay=False, path_type=Path))
def results_command(package_options: Path | None, changes: Path) -> None:
    """post-build-commands: save verify's and bench's JSON beside CHANGES for 'hwcapdeb report'."""
    for line in write_results(changes, package_options):
        click.echo(f"hwcapdeb: {line}")
