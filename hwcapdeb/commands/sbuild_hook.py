"""``hwcapdeb sbuild-hook``: the commands hwcapdeb's sbuildrc snippet runs inside sbuild."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.bench.after_build import write_results
from hwcapdeb.commands import options
from hwcapdeb.sbuild.hooks import CampaignOptions, prepare


@click.group("sbuild-hook")
def command() -> None:
    """Hooks for sbuild's external commands (written by 'hwcapdeb sbuild-config')."""


@command.command("prepare")
@options.profile_option()
@options.arch_option(required=True, note="sbuild's %SBUILD_HOST_ARCH")
@click.option("--dsc", "dsc_spec", required=True, help="%SBUILD_DSC: a .dsc or NAME_VERSION.")
@options.layout_option()
@options.mode_option()
@options.variant_make_var_option()
@options.variant_env_option()
@options.package_options_option()
@click.option("--dh-hwcaps-deb", "dh_hwcaps_deb", metavar="DEB",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="With --mode addon: the dh-hwcaps .deb to install in the chroot "
                   "(default: $HWCAPDEB_DH_HWCAPS_DEB, else the checkout's out/deb/).")
@click.argument("exec_words", nargs=-1, required=True, metavar="-- %SBUILD_CHROOT_EXEC")
def prepare_command(
    profile_names: tuple[str, ...],
    arch_name: str,
    dsc_spec: str,
    layout: str,
    mode: str,
    variant_make_vars: tuple[str, ...],
    variant_env: tuple[str, ...],
    package_options: Path | None,
    dh_hwcaps_deb: Path | None,
    exec_words: tuple[str, ...],
) -> None:
    """pre-build-commands: convert the package on the host, stage the result in the chroot."""
    campaign = CampaignOptions(
        layout=layout,
        variant_make_vars=variant_make_vars,
        variant_env=variant_env,
        package_options=package_options,
        mode=mode,
        dh_hwcaps_deb=dh_hwcaps_deb.resolve() if dh_hwcaps_deb else None,
    )
    prepared = prepare(dsc_spec, exec_words, profile_names, arch_name, campaign)
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
@options.package_options_option()
@click.argument("changes", type=click.Path(dir_okay=False, path_type=Path))
def results_command(package_options: Path | None, changes: Path) -> None:
    """post-build-commands: save verify's and bench's JSON beside CHANGES for 'hwcapdeb report'."""
    for line in write_results(changes, package_options):
        click.echo(f"hwcapdeb: {line}")
