"""``hwcapdeb sbuild-config``: print the ~/.sbuildrc snippet, or check an existing file."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.builders.dpkg import host_arch
from hwcapdeb.commands import options
from hwcapdeb.errors import HwcapdebError, UsageError
from hwcapdeb.findings import Finding
from hwcapdeb.profiles import ProfileRegistry
from hwcapdeb.releases import host_codename
from hwcapdeb.sbuild.builder import AUTO, DEFAULT_CACHE, DEFAULT_MIRROR, Preflight, preflight
from hwcapdeb.sbuild.chroot import canonical_dist, check_dist
from hwcapdeb.sbuild.rc import SbuildSettings, check_rc, rc_finding, read_rc, render


@click.command("sbuild-config")
@options.profile_option(
    required=False,
    prefix="Convert every package sbuild builds with PROFILE (a rebuild campaign); ",
)
@options.dist_option(default="the changelog's; --check: this machine's")
@click.option(
    "--chroot-mode",
    default="unshare",
    show_default=True,
    help="sbuild chroot mode the snippet sets.",
)
@click.option("--no-verify", is_flag=True, help="Leave out the post-build verify hook.")
@click.option(
    "--tmpdir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Unpack unshare chroots under this directory (a tmpfs such as /dev/shm is much "
    "faster than disk).",
)
@options.layout_option(prefix=options.WITH_PROFILE)
@options.mode_option(prefix=options.WITH_PROFILE)
@options.variant_make_var_option(prefix=options.WITH_PROFILE)
@options.variant_env_option(prefix=options.WITH_PROFILE)
@options.package_options_option(exists=True, prefix=options.WITH_PROFILE)
@click.option(
    "--check",
    "check_file",
    is_flag=False,
    flag_value="~/.sbuildrc",
    default=None,
    metavar="[FILE]",
    help="Check FILE (default ~/.sbuildrc) and this machine instead of printing; exit 1 if "
    "anything is missing.",
)
@click.option(
    "--mirror",
    default=AUTO,
    show_default=True,
    help="Archive the check expects to reach ('auto': the chroot tarball's).",
)
@click.pass_context
def command(
    ctx: click.Context,
    profile_names: tuple[str, ...],
    dist: str | None,
    chroot_mode: str,
    no_verify: bool,
    tmpdir: Path | None,
    layout: str,
    mode: str,
    variant_make_vars: tuple[str, ...],
    variant_env: tuple[str, ...],
    package_options: Path | None,
    check_file: str | None,
    mirror: str,
) -> None:
    """Print the ~/.sbuildrc snippet that builds in unshare mode and verifies every build.

    With --profile, the snippet also converts each package sbuild builds (save it
    as its own file and select it with SBUILD_CONFIG=FILE).  With --check, report
    what an existing sbuildrc, or this machine, lacks.
    """
    profiles: tuple[str, ...] = ()
    if profile_names:
        arch = host_arch()
        profiles = tuple(p.name for p in ProfileRegistry().resolve_many(list(profile_names), arch))
    if (
        variant_make_vars or variant_env or package_options or layout != "inline" or mode != "embed"
    ) and not profiles:
        raise UsageError(
            "--layout, --variant-make-var, --variant-env and --package-options are "
            "conversion options",
            hint="give --profile too (they configure the convert hook)",
        )
    if dist is not None and chroot_mode == "unshare":
        check_dist(dist, host_arch(), DEFAULT_CACHE, DEFAULT_MIRROR if mirror == AUTO else mirror)
        dist = canonical_dist(dist, host_arch(), DEFAULT_CACHE)
    settings = SbuildSettings(
        chroot_mode=chroot_mode,
        distribution=dist,
        verify=not no_verify,
        profiles=profiles,
        layout=layout,
        mode=mode,
        dh_hwcaps_deb=_dh_hwcaps_deb() if profiles and mode == "addon" else None,
        variant_make_vars=variant_make_vars,
        variant_env=variant_env,
        package_options=str(package_options.resolve()) if package_options else None,
        tmpdir=str(tmpdir.resolve()) if tmpdir else None,
    )
    if check_file is None:
        click.echo(render(settings), nl=False)
        return
    path = Path(check_file).expanduser()
    findings: list[Finding] = check_rc(read_rc(path), settings)
    try:
        preflight(
            Preflight(
                dist=dist or host_codename(),
                arch=host_arch(),
                chroot_mode=chroot_mode,
                mirror=mirror,
            )
        )
    except HwcapdebError as err:
        findings.append(rc_finding("machine-not-ready", str(err)))
    for finding in findings:
        click.echo(finding.file_line(str(path)))
    if findings:
        ctx.exit(1)


def _dh_hwcaps_deb() -> str:
    """The dh-hwcaps .deb the convert hook sends into the chroot, found (or built) now, in
    the user's environment: sbuild runs its hooks with a bare one."""
    from hwcapdeb.builders import dh_hwcaps

    return str(dh_hwcaps.find_deb())
