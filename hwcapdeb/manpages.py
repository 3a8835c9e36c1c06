"""Manual pages written from the click command tree: ``hwcapdeb(1)``, ``hwcapdeb-verify(1)``...

    python -m hwcapdeb.manpages OUTDIR        (make man: OUTDIR = out/man)

Each page is built from what click itself knows (the command's help, its
usage pieces, every option's help record), so a page cannot say anything the
``--help`` output does not; what click has no place for (the exit status, the
tags, related pages) is added per command below.  Pages are generated at
build time and never committed.

Why not click-man (PyPI): it walks ``Group.commands``, which is empty for the
lazy group in :mod:`hwcapdeb.cli` (subcommands load on demand through
``list_commands``/``get_command``), so it writes no subcommand page at all; it
does not escape roff control characters in help text and has no EXIT STATUS or
SEE ALSO sections.  The generator below is short and uses only click's public
``Context``/``Command.get_params``/``Parameter.get_help_record`` API.
"""

from __future__ import annotations

import datetime
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from hwcapdeb import __version__
from hwcapdeb.cli import cli
from hwcapdeb.tags import catalogue

#: what exit status 1 means, per subcommand (the others never use it)
FINDINGS_EXIT = {
    "verify": "a finding of severity error (printed as E: lines).",
    "sbuild-config": "with --check, the sbuildrc or this machine lacks something "
                     "(one E: line each).",
    "which": "the library cannot be loaded on that CPU, or the real loader disagrees "
             "with the model.",
    "bench": "a variant crashed or failed (the others are still measured).",
}

#: related pages besides hwcapdeb(1), per subcommand
RELATED = {
    "profiles": ["hwcapdeb-cpus(1)", "hwcapdeb-convert(1)", "gcc(1)"],
    "cpus": ["hwcapdeb-profiles(1)", "hwcapdeb-which(1)", "ld.so(8)"],
    "which": ["hwcapdeb-cpus(1)", "hwcapdeb-verify(1)", "ld.so(8)", "ldconfig(8)"],
    "convert": ["hwcapdeb-revert(1)", "hwcapdeb-build(1)", "hwcapdeb-profiles(1)", "dh(1)"],
    "revert": ["hwcapdeb-convert(1)"],
    "build": ["hwcapdeb-convert(1)", "hwcapdeb-verify(1)", "dpkg-buildpackage(1)", "sbuild(1)"],
    "verify": ["hwcapdeb-build(1)", "hwcapdeb-bench(1)", "hwcapdeb-which(1)", "lintian(1)",
               "ld.so(8)"],
    "sbuild-config": ["hwcapdeb-sbuild-hook(1)", "hwcapdeb-verify(1)", "sbuild(1)",
                      "sbuild.conf(5)", "mmdebstrap(1)"],
    "sbuild-hook": ["hwcapdeb-sbuild-config(1)", "sbuild(1)"],
    "bench": ["hwcapdeb-verify(1)", "ld.so(8)"],
}

#: tags listed on a page: the subcommand -> the Check prefix of its tags
TAG_CHECKS = {"verify": "verify", "sbuild-config": "sbuild-config"}

ENVIRONMENT = [
    ("HWCAPDEB_PROFILE_PATH", "Colon-separated directories searched for profiles "
                              "(NAME.json) before ~/.config/hwcapdeb/profiles/ and the "
                              "built-in ones."),
    ("HWCAPDEB_DEBUG", "Set to 1 to get the traceback of an internal error (exit status 70)."),
]


def roff(text: str) -> str:
    """Escape plain text for roff: backslashes, minus signs, control characters at line start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(f"\\&{ln}" if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def _paragraphs(help_text: str) -> Iterator[str]:
    """click help -> roff paragraphs; an indented or ``\\b`` paragraph stays as written."""
    for block in inspect.cleandoc(help_text).split("\n\n"):
        lines = block.split("\n")
        if lines[0] == "\b" or lines[0].startswith(" "):
            body = lines[1:] if lines[0] == "\b" else lines
            yield ".PP\n.nf\n" + roff("\n".join(body)) + "\n.fi"
        else:
            yield ".PP\n" + roff(" ".join(ln.strip() for ln in lines))


@dataclass(frozen=True)
class Page:
    """One manual page: its file name and roff source."""

    name: str  # hwcapdeb-verify
    text: str


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch
            else datetime.datetime.now(datetime.UTC))
    return when.strftime("%Y-%m-%d")


def _summary(command: click.Command) -> str:
    """The NAME line's text: the help's first sentence, lower case first, no full stop."""
    first = " ".join(inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
                     .split())
    first = first.split(". ")[0].rstrip(".")
    return first[:1].lower() + first[1:] if first[1:2].islower() else first


def _option_flags(flags: str) -> str:
    """'-h, --help' / '--cpu CPU' -> options in bold, their values in italics."""
    words = []
    for word in flags.split(" "):
        core = word.rstrip(",")
        font = "B" if core.startswith("-") else "I"
        words.append(f"\\f{font}{roff(core)}\\fR{word[len(core):]}")
    return " ".join(words)


def _exit_status(sub: str | None) -> list[str]:
    findings = FINDINGS_EXIT.get(sub or "")
    rows = [
        ("0", "Success; for a check, nothing was found."),
        ("1", f"Problems found: {findings}" if findings else "Not used by this command."),
        ("2", "Could not run: bad arguments or input, a missing tool, a failed build. One "
              "line on standard error says what is wrong and what to do."),
        ("70", "Internal error: a bug of hwcapdeb (HWCAPDEB_DEBUG=1 shows the traceback)."),
        ("130", "Interrupted."),
    ]
    if sub is None:
        rows[1] = ("1", "Problems found (see each command's page).")
    return [".SH \"EXIT STATUS\""] + [f".TP\n.B {code}\n{roff(text)}" for code, text in rows]


def _tags(sub: str) -> list[str]:
    prefix = TAG_CHECKS.get(sub)
    if prefix is None:
        return []
    lines = [".SH TAGS",
             roff("Each finding is one line: letter (E error, W warning), package or file, "
                  "tag, path and the reason. 'hwcapdeb verify --explain TAG' prints what a "
                  "tag means and what to do.")]
    for tag in catalogue().values():
        if tag.check.split("/")[0] == prefix:
            lines.append(f".TP\n.BR {roff(tag.name)} \" ({tag.letters})\"\n{roff(tag.summary)}")
    return lines


def render(ctx: click.Context, subcommands: Sequence[tuple[str, click.Command]]) -> Page:
    """The page of ``ctx.command``; ``subcommands`` are a group's (name, command) pairs."""
    command = ctx.command
    name = ctx.command_path.replace(" ", "-")
    parts = ctx.command_path.split(" ")
    sub = parts[1] if len(parts) > 1 else None
    out = [
        f'.TH "{roff(name.upper())}" 1 "{_date()}" "hwcapdeb {__version__}" "hwcapdeb manual"',
        ".nh",  # no hyphenation: option and page names are copied from the page
        ".SH NAME",
        f"{roff(name)} \\- {roff(_summary(command))}",
        ".SH SYNOPSIS",
        f".B {roff(ctx.command_path)}",
        roff(" ".join(command.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        # no .PP right after .SH (mandoc -T lint: "skipping paragraph macro")
        *(p.removeprefix(".PP\n") if i == 0 else p
          for i, p in enumerate(_paragraphs(command.help or _summary(command)))),
    ]
    records = [r for p in command.get_params(ctx)
               if isinstance(p, click.Option) and (r := p.get_help_record(ctx)) is not None]
    if records:
        out.append(".SH OPTIONS")
    for flags, help_text in records:
        out.append(f".TP\n{_option_flags(flags)}\n{roff(help_text) or '.'}")
    if subcommands:
        out.append(".SH COMMANDS")
        for sub_name, sub_command in subcommands:
            page = f"{name}-{sub_name}"
            out.append(f".TP\n.B {roff(sub_name)}\n{roff(_summary(sub_command))}; "
                       f"see \\fB{roff(page)}\\fR(1).")
    out += _tags(sub) if sub and len(parts) == 2 else []
    out += _exit_status(sub)
    if sub is None:
        out.append(".SH ENVIRONMENT")
        out += [f".TP\n.B {roff(var)}\n{roff(text)}" for var, text in ENVIRONMENT]
    parent = [f"{'-'.join(parts[:-1])}(1)"] if sub else []
    see = [*parent, *(f"{name}-{s}(1)" for s, _ in subcommands), *RELATED.get(parts[-1], [])]
    out += [".SH \"SEE ALSO\"",
            ",\n".join(".BR {} ({}".format(*map(roff, ref.split("("))) for ref in see)]
    return Page(name, "\n".join(out) + "\n")


def pages(command: click.Command = cli, info_name: str = "hwcapdeb",
          parent: click.Context | None = None) -> list[Page]:
    """Every page of the tree below ``command``, the group's first."""
    ctx = click.Context(command, info_name=info_name, parent=parent)
    children: list[tuple[str, click.Command]] = []
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub_command = command.get_command(ctx, sub_name)
            if sub_command is not None and not sub_command.hidden:
                children.append((sub_name, sub_command))
    result = [render(ctx, children)]
    for sub_name, sub_command in children:
        result += pages(sub_command, sub_name, ctx)
    return result


def write_pages(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages():
        path = out_dir / f"{page.name}.1"
        path.write_text(page.text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m hwcapdeb.manpages OUTDIR", file=sys.stderr)
        return 2
    for path in write_pages(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
