"""The ``~/.sbuildrc`` side of hwcapdeb: write the snippet, check an existing file.

sbuild reads its configuration as Perl.  The snippet hwcapdeb prints sets
unshare mode and adds external commands (see sbuild(1), "EXTERNAL COMMANDS"):

- ``post-build-commands``: ``hwcapdeb verify %SBUILD_CHANGES`` runs outside the
  chroot once the results are copied out; its exit status fails the build and,
  with ``$log_external_command_output``/``_error``, its findings land in the
  build log;
- with profiles (a rebuild campaign), ``pre-build-commands`` runs
  ``hwcapdeb sbuild-hook prepare`` on the host (converting the package there,
  see :mod:`hwcapdeb.sbuild.hooks`) and ``starting-build-commands`` applies the
  result inside the chroot with ``/bin/sh`` only.

The checker does not parse Perl itself: it asks ``perl`` to evaluate the file
and print the variables that matter as JSON (JSON::PP is a core module), so
any valid sbuildrc, however it is written, is read the way sbuild reads it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.errors import InputError
from hwcapdeb.findings import Finding
from hwcapdeb.tools import find_tool

#: where the apply script lives inside the chroot (written by the prepare hook)
CHROOT_STATE_DIR = "/var/lib/hwcapdeb"
APPLY_SCRIPT = f"{CHROOT_STATE_DIR}/apply"

#: Perl that evaluates an sbuildrc like sbuild does (package main, no strict)
#: and prints the settings hwcapdeb cares about as JSON.
_DUMP_PERL = r"""
use JSON::PP;
my $file = shift @ARGV;
my $ok = do $file;
if ($@) { print STDERR "perl: $@"; exit 3; }
if (!defined $ok && $!) { print STDERR "perl: cannot read $file: $!\n"; exit 4; }
print JSON::PP->new->canonical->encode({
    chroot_mode => $main::chroot_mode,
    external_commands => $main::external_commands,
    log_external_command_output => $main::log_external_command_output,
    log_external_command_error => $main::log_external_command_error,
    distribution => $main::distribution,
});
"""


def hwcapdeb_command() -> list[str]:
    """How a hook calls this very hwcapdeb (the console script beside our Python, if any)."""
    script = Path(sys.executable).parent / "hwcapdeb"
    if script.is_file():
        return [str(script)]
    found = shutil.which("hwcapdeb")
    if found:
        return [found]
    return [sys.executable, "-m", "hwcapdeb.cli"]


@dataclass(frozen=True)
class SbuildSettings:
    """What the snippet configures."""

    chroot_mode: str = "unshare"
    distribution: str | None = None  # None: leave sbuild's default (the changelog's)
    verify: bool = True  # post-build-commands: hwcapdeb verify %SBUILD_CHANGES
    profiles: tuple[str, ...] = ()  # non-empty: convert inside sbuild (campaign mode)
    hwcapdeb: tuple[str, ...] = ()  # the hwcapdeb command the hooks run (default: this one)
    # conversion options of a campaign (see hwcapdeb.sbuild.hooks.CampaignOptions)
    layout: str = "inline"
    variant_make_vars: tuple[str, ...] = ()
    variant_env: tuple[str, ...] = ()
    package_options: str | None = None  # absolute path of a per-package deb822 file
    mode: str = "embed"  # hwcapdeb convert --mode (addon: dh-hwcaps goes into the chroot)
    # addon mode: the dh-hwcaps .deb, found when the snippet is written (sbuild runs its
    # hooks with a bare environment: no $HWCAPDEB_DH_HWCAPS_DEB, no PATH to build one)
    dh_hwcaps_deb: str | None = None
    # where unshare mode unpacks each chroot (None: sbuild's /tmp); a tmpfs such as
    # /dev/shm makes unpacking and removing the chroot fast (measured: 100 s -> 48 s
    # for a small package, most of it the removal)
    tmpdir: str | None = None

    def command(self) -> list[str]:
        return list(self.hwcapdeb) or hwcapdeb_command()


def verify_hook(settings: SbuildSettings) -> list[str]:
    # --matrix: the build log then records which CPU loads which variant
    return [*settings.command(), "verify", "--matrix", "%SBUILD_CHANGES"]


def results_hook(settings: SbuildSettings) -> list[str]:
    """SRC_VERSION_ARCH.verify.json and .bench.json (the package's Bench-Command) for report."""
    return [*settings.command(), "sbuild-hook", "results", "--package-options",
            str(settings.package_options), "%SBUILD_CHANGES"]


def prepare_hook(settings: SbuildSettings) -> list[str]:
    argv = [
        *settings.command(),
        "sbuild-hook",
        "prepare",
        "--profile",
        ",".join(settings.profiles),
    ]
    if settings.layout != "inline":
        argv += ["--layout", settings.layout]
    for item in settings.variant_make_vars:
        argv += ["--variant-make-var", item]
    for item in settings.variant_env:
        argv += ["--variant-env", item]
    if settings.package_options:
        argv += ["--package-options", settings.package_options]
    if settings.mode != "embed":
        argv += ["--mode", settings.mode]
    if settings.dh_hwcaps_deb:
        argv += ["--dh-hwcaps-deb", settings.dh_hwcaps_deb]
    # %SBUILD_CHROOT_EXEC last: sbuild's shell splits it into the trailing words
    return [
        *argv,
        "--arch",
        "%SBUILD_HOST_ARCH",
        "--dsc",
        "%SBUILD_DSC",
        "--",
        "%SBUILD_CHROOT_EXEC",
    ]


def apply_hook() -> list[str]:
    return ["/bin/sh", APPLY_SCRIPT, "%SBUILD_PKGBUILD_DIR"]


def perl_string(text: str) -> str:
    """A single-quoted Perl string literal of ``text``."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _perl_list(argv: Sequence[str]) -> str:
    return "[" + ", ".join(perl_string(a) for a in argv) + "]"


def render(settings: SbuildSettings) -> str:
    """The Perl snippet for ~/.sbuildrc (or a file named by SBUILD_CONFIG)."""
    lines = [
        "# hwcapdeb: glibc-hwcaps builds in sbuild (generated by 'hwcapdeb sbuild-config')",
        f"$chroot_mode = '{settings.chroot_mode}';",
    ]
    if settings.distribution:
        lines.append(f"$distribution = {perl_string(settings.distribution)};")
    if settings.tmpdir:
        template = f"{settings.tmpdir.rstrip('/')}/tmp.sbuild.XXXXXXXXXX"
        lines.append(f"$unshare_tmpdir_template = {perl_string(template)};")
    lines += [
        "# hook output (hwcapdeb's findings) goes into the build log",
        "$log_external_command_output = 1;",
        "$log_external_command_error = 1;",
        "$external_commands = {",
    ]
    if settings.profiles:
        lines += [
            "    # convert on the host, before the chroot build starts ...",
            f"    'pre-build-commands' => [ {_perl_list(prepare_hook(settings))} ],",
            "    # ... and swap the converted debian/ files in (shell only: no python3 there)",
            f"    'starting-build-commands' => [ {_perl_list(apply_hook())} ],",
        ]
    post = [verify_hook(settings)] if settings.verify else []
    if settings.package_options and settings.profiles:
        post.append(results_hook(settings))
    if post:
        lines += [
            "    # a failing verify fails the sbuild run"
            + ("; then verify and bench JSON beside the .changes" if len(post) > 1 else ""),
            f"    'post-build-commands' => [ {', '.join(_perl_list(p) for p in post)} ],",
        ]
    lines += ["};", "1;"]
    return "\n".join(lines) + "\n"


#: the package position of an sbuildrc finding: the file is no package's, and has no path in one
RC_SUBJECT = "sbuildrc"


def rc_finding(tag: str, message: str) -> Finding:
    """One problem of an sbuildrc, lintian style: every one an error
    (``Finding.file_line`` prints ``E: sbuildrc: TAG message``)."""
    return Finding("error", tag, RC_SUBJECT, "", message)


def read_rc(path: Path, *, perl: str | None = None) -> dict[str, object]:
    """Evaluate ``path`` with perl; the settings as a dict. InputError if perl rejects it."""
    if not path.is_file():
        raise InputError(
            f"{path} does not exist",
            hint="write one with 'hwcapdeb sbuild-config > ~/.sbuildrc'",
        )
    perl = perl or find_tool("perl")
    proc = subprocess.run(
        [perl, "-e", _DUMP_PERL, str(path.resolve())],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise InputError(f"{path} is not valid Perl: {first}", hint="fix it, then check again")
    loaded: dict[str, object] = json.loads(proc.stdout)
    return loaded


def _commands(rc: dict[str, object], stage: str) -> list[list[str]]:
    """The commands of one stage, each as an argv (strings split like /bin/sh would)."""
    table = rc.get("external_commands")
    if not isinstance(table, dict):
        return []
    entries = table.get(stage) or []
    commands: list[list[str]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list):
            commands.append([str(a) for a in entry])
        elif isinstance(entry, str):
            try:
                commands.append(shlex.split(entry))
            except ValueError:
                commands.append(entry.split())
    return commands


def has_verify_hook(rc: dict[str, object]) -> bool:
    """Does ``rc`` already run ``hwcapdeb verify`` after each build?"""
    return any(_is_hwcapdeb(a, ["verify"]) for a in _commands(rc, "post-build-commands"))


def _is_hwcapdeb(argv: list[str], subcommand: Sequence[str]) -> bool:
    """Does ``argv`` run hwcapdeb ``subcommand`` (by script name or ``-m hwcapdeb...``)?"""
    for i, word in enumerate(argv):
        if Path(word).name == "hwcapdeb" or word in {"hwcapdeb.cli", "hwcapdeb"}:
            return argv[i + 1 : i + 1 + len(subcommand)] == list(subcommand)
    return False


def _runnable(word: str, path: str | None) -> bool:
    if "/" in word:
        return Path(word).is_file() and os.access(word, os.X_OK)
    return shutil.which(word, path=path) is not None


def check_rc(
    rc: dict[str, object], settings: SbuildSettings, *, path: str | None = None
) -> list[Finding]:
    """What ``rc`` (from :func:`read_rc`) lacks for ``settings``; empty when all is well.

    ``path`` is the PATH the hooks will see (default: this process's).
    """
    findings: list[Finding] = []
    mode = rc.get("chroot_mode")
    if mode != settings.chroot_mode:
        findings.append(
            rc_finding(
                "wrong-chroot-mode",
                f"$chroot_mode is {mode!r}, expected '{settings.chroot_mode}'"
                if mode
                else f"$chroot_mode is not set (sbuild defaults to schroot); "
                f"add \"$chroot_mode = '{settings.chroot_mode}';\"",
            )
        )
    post = _commands(rc, "post-build-commands")
    verify = [argv for argv in post if _is_hwcapdeb(argv, ["verify"])]
    if settings.verify:
        if not verify:
            findings.append(
                rc_finding(
                    "no-verify-hook",
                    "no 'hwcapdeb verify %SBUILD_CHANGES' in post-build-commands: "
                    "a bad multi-build would pass",
                )
            )
        for argv in verify:
            if not any("%SBUILD_CHANGES" in a or a == "%c" for a in argv):
                findings.append(
                    rc_finding(
                        "verify-hook-without-changes",
                        f"'{shlex.join(argv)}' does not pass %SBUILD_CHANGES",
                    )
                )
    for stage in ("pre-build-commands", "post-build-commands"):
        for argv in _commands(rc, stage):
            if (_is_hwcapdeb(argv, []) or any(Path(a).name == "hwcapdeb" for a in argv)) and (
                not _runnable(argv[0], path)
            ):
                findings.append(
                    rc_finding(
                        "hook-not-found",
                        f"{stage} runs '{argv[0]}', which is not an executable on PATH",
                    )
                )
    if verify or settings.profiles:
        for key in ("log_external_command_output", "log_external_command_error"):
            if not rc.get(key):
                findings.append(
                    rc_finding(
                        "hook-output-not-logged",
                        f"${key} is not set: hwcapdeb's findings would not reach the build "
                        f"log; add '${key} = 1;'",
                    )
                )
    prepare = [a for a in _commands(rc, "pre-build-commands") if _is_hwcapdeb(a, ["sbuild-hook"])]
    apply = [
        a for a in _commands(rc, "starting-build-commands") if any(APPLY_SCRIPT in w for w in a)
    ]
    if settings.profiles and not prepare:
        findings.append(
            rc_finding(
                "no-convert-hook",
                "no 'hwcapdeb sbuild-hook prepare' in pre-build-commands: packages would be "
                "built unconverted",
            )
        )
    if (prepare or settings.profiles) and not apply:
        findings.append(
            rc_finding(
                "no-apply-hook",
                f"no '/bin/sh {APPLY_SCRIPT} %SBUILD_PKGBUILD_DIR' in starting-build-commands: "
                "the converted files would never reach the build",
            )
        )
    for argv in prepare:
        if "--package-options" in argv[:-1]:
            options = argv[argv.index("--package-options") + 1]
            if not Path(options).is_file():
                findings.append(
                    rc_finding(
                        "package-options-missing",
                        f"the convert hook reads {options}, which does not exist",
                    )
                )
    if apply and not prepare:
        findings.append(
            rc_finding(
                "no-convert-hook",
                "starting-build-commands applies a conversion but no pre-build-commands entry "
                "prepares one: every build would fail",
            )
        )
    return findings
