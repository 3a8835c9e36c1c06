"""The ``hwcapdeb`` command: a thin click group over the library.

Each subcommand lives in ``hwcapdeb/commands/<name>.py`` and exposes a click
command named ``command``; this module only finds them, renders nothing itself
and maps :class:`~hwcapdeb.errors.HwcapdebError` to a one-line message and
its exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
import warnings
from collections.abc import Sequence

import click

from hwcapdeb import __version__
from hwcapdeb.errors import EXIT_CANNOT_RUN, HwcapdebError, HwcapdebWarning

#: subcommand -> module; a module that is not there is simply not offered
COMMANDS: dict[str, str] = {
    "profiles": "hwcapdeb.commands.profiles",
    "cpus": "hwcapdeb.commands.cpus",
    "which": "hwcapdeb.commands.which",
    "convert": "hwcapdeb.commands.convert",
    "revert": "hwcapdeb.commands.revert",
    "build": "hwcapdeb.commands.build",
    "verify": "hwcapdeb.commands.verify",
    "sbuild-config": "hwcapdeb.commands.sbuild_config",
    "sbuild-hook": "hwcapdeb.commands.sbuild_hook",
    "bench": "hwcapdeb.commands.bench",
    "report": "hwcapdeb.commands.report",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, mod in COMMANDS.items() if importlib.util.find_spec(mod)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None or importlib.util.find_spec(module_name) is None:
            return None
        command: click.Command = importlib.import_module(module_name).command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hwcapdeb")
def cli() -> None:
    """Build, verify and benchmark glibc-hwcaps variants of Debian libraries."""


def _show_warning(message: Warning | str, category: type[Warning], *_: object,
                  **__: object) -> None:
    """The library's warnings as one line on stderr, like errors."""
    click.echo(f"hwcapdeb: warning: {message}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of calling sys.exit (archspec's habit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", HwcapdebWarning)
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        # without standalone mode click *returns* ctx.exit()'s code instead of raising Exit
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    except HwcapdebError as err:
        click.echo(f"hwcapdeb: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Exit as exit_:
        return int(exit_.exit_code)
    except click.ClickException as err:
        click.echo(f"hwcapdeb: error: {err.format_message()}", err=True)
        return EXIT_CANNOT_RUN
    except click.exceptions.Abort as abort:
        if isinstance(abort.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("hwcapdeb: interrupted", err=True)
            return 130
        click.echo("hwcapdeb: aborted", err=True)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        click.echo("hwcapdeb: interrupted", err=True)
        return 130
    except Exception as err:  # a bug of ours: one line, traceback only on request
        if os.environ.get("HWCAPDEB_DEBUG"):
            raise
        click.echo(
            f"hwcapdeb: internal error: {type(err).__name__}: {err} "
            "(set HWCAPDEB_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        return 70
    return 0


def _terminate(signum: int, frame: object) -> None:
    # unwinds like Ctrl-C: every scratch directory is a context manager and goes away
    raise SystemExit(128 + signum)


def run() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())


if __name__ == "__main__":
    run()
