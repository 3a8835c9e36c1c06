"""``hwcapdeb sbuild-hook``: the commands hwcapdeb's sbuildrc snippet runs inside sbuild."""

from __future__ import annotations

import click

from hwcapdeb.sbuild_hooks import prepare


@click.group("sbuild-hook")
def command() -> None:
    """Hooks for sbuild's external commands (written by 'hwcapdeb sbuild-config')."""


@command.command("prepare")
@click.option("--profile", "profile_names", multiple=True, required=True, help="Profiles.")
@click.option("--arch", required=True, help="Host architecture (%SBUILD_HOST_ARCH).")
@click.option("--dsc", "dsc_spec", required=True, help="%SBUILD_DSC: a .dsc or NAME_VERSION.")
@click.argument("exec_words", nargs=-1, required=True, metavar="-- %SBUILD_CHROOT_EXEC")
def prepare_command(
    profile_names: tuple[str, ...], arch: str, dsc_spec: str, exec_words: tuple[str, ...]
) -> None:
    """pre-build-commands: convert the package on the host, stage the result in the chroot."""
    prepared = prepare(dsc_spec, exec_words, profile_names, arch)
    click.echo(
        f"hwcapdeb: prepared {prepared.identity}: {len(prepared.delta.changed)} files changed, "
        f"{len(prepared.delta.removed)} removed"
        + (
            f", adds build-depends {' '.join(prepared.build_depends)}"
            if prepared.build_depends
            else ""
        )
    )
