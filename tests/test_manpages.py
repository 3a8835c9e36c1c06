"""Manual pages from the click tree: one per (sub)command, lint-clean, no option left out.

The expected pages and options are read from click independently of the
generator, so a new subcommand or option without a page entry fails here;
every page goes through groff's own checker (``groff -man -ww -z``) and, where
installed, ``mandoc -T lint``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from hwcapdeb import manpages
from hwcapdeb.cli import cli
from hwcapdeb.tags import catalogue


def _tree(command: click.Command, name: str, parent: click.Context | None = None
          ) -> dict[str, click.Context]:
    """page name -> context of its command, for the whole CLI."""
    ctx = click.Context(command, info_name=name, parent=parent)
    found = {ctx.command_path.replace(" ", "-"): ctx}
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            sub_command = command.get_command(ctx, sub)
            assert sub_command is not None
            found.update(_tree(sub_command, sub, ctx))
    return found


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("man")
    assert manpages.main([str(out)]) == 0
    return {p.name.removesuffix(".1"): p for p in out.glob("*.1")}


def test_every_command_has_a_page(pages: dict[str, Path]) -> None:
    expected = _tree(cli, "hwcapdeb")
    assert {"hwcapdeb", "hwcapdeb-verify", "hwcapdeb-sbuild-hook-prepare"} <= set(expected)
    assert sorted(pages) == sorted(expected)


def test_every_option_is_on_its_page(pages: dict[str, Path]) -> None:
    for name, ctx in _tree(cli, "hwcapdeb").items():
        text = pages[name].read_text()
        for param in ctx.command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                for opt in [*param.opts, *param.secondary_opts]:
                    assert f"\\fB{manpages.roff(opt)}\\fR" in text, f"{opt} missing from {name}(1)"


def test_pages_pass_groff_lint(pages: dict[str, Path]) -> None:
    groff = shutil.which("groff")
    assert groff, "groff is missing: apt-get install groff-base (scripts/setup does)"
    for name, path in pages.items():
        proc = subprocess.run([groff, "-man", "-ww", "-z", str(path)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and proc.stderr == "", f"{name}(1): {proc.stderr}"
        rendered = subprocess.run([groff, "-man", "-Tutf8", "-P-cbu", str(path)],
                                  capture_output=True, text=True, check=True).stdout
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "SEE ALSO"):
            assert f"\n{section}\n" in rendered, f"{name}(1) lacks {section}"


def test_pages_pass_mandoc_lint(pages: dict[str, Path]) -> None:
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.skip("mandoc is not installed (groff's check above ran)")
    for name, path in pages.items():
        proc = subprocess.run([mandoc, "-T", "lint", "-W", "warning", str(path)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{name}(1): {proc.stdout}{proc.stderr}"


def test_verify_page_lists_every_verify_tag_and_its_exit_status(pages: dict[str, Path]) -> None:
    text = pages["hwcapdeb-verify"].read_text()
    for tag in catalogue().values():
        assert (f".BR {manpages.roff(tag.name)} " in text) == tag.check.startswith("verify")
    assert "Problems found: a finding of severity error" in text
    assert "Not used by this command" in pages["hwcapdeb-convert"].read_text()
    assert ".BR hwcapdeb\\-sbuild\\-config (1)" in pages["hwcapdeb-sbuild-hook"].read_text()


def test_roff_escapes_what_groff_would_take_as_requests() -> None:
    @click.command("demo")
    @click.option("--seen", help=".nf would start no-fill; \\fB is a font change")
    @click.option("--unseen", hidden=True)
    def demo(seen: str, unseen: str) -> None:
        """Demo.

        'quoted first word, then a line
        .starting with a dot"""

    page = manpages.render(click.Context(demo, info_name="demo"), []).text
    assert "\\&'quoted first word" in page and "\\&.nf would start" in page and "\\efB is" in page
    assert "\\&.starting" not in page  # a folded paragraph: the dot is mid-line
    assert "\\-\\-unseen" not in page and "\\fB\\-\\-seen\\fR" in page
