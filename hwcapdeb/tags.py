"""The catalogue of finding tags: one deb822 file per tag in ``profiles/tags/``.

Each ``profiles/tags/<tag>.tag`` holds the fields lintian uses for its tags
(``Tag``, ``Severity``, ``Check``, ``Explanation``, ``See-Also``), checked
against ``profiles/tag.schema.json``.  ``hwcapdeb verify --explain TAG`` prints
an entry (as ``lintian-explain-tags`` does), the manual pages list them, and
``python -m hwcapdeb.tags --markdown`` writes ``docs/tags.md``.  A test checks
that every tag the code can emit has an entry and every entry is emitted.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jsonschema
from debian.deb822 import Deb822

from hwcapdeb.errors import ProfileError, UsageError
from hwcapdeb.profiles import _data_root, _schema

SCHEMA = "tag.schema.json"
SEVERITY_LETTER = {"error": "E", "warning": "W", "info": "I"}


@dataclass(frozen=True)
class Tag:
    """One catalogue entry."""

    name: str
    severities: tuple[str, ...]  # most serious first
    check: str
    paragraphs: tuple[str, ...]  # the explanation, one unwrapped string per paragraph
    see_also: tuple[str, ...] = ()

    @property
    def letters(self) -> str:
        return "/".join(SEVERITY_LETTER[s] for s in self.severities)

    @property
    def summary(self) -> str:
        """The explanation's first sentence."""
        first = self.paragraphs[0]
        end = first.find(". ")
        return first if end < 0 else first[: end + 1]


def _paragraphs(value: str) -> tuple[str, ...]:
    """deb822 continuation lines -> paragraphs (a line ' .' separates them)."""
    result: list[list[str]] = [[]]
    for line in value.splitlines():
        line = line.strip()
        if line == ".":
            result.append([])
        elif line:
            result[-1].append(line)
    return tuple(" ".join(words) for words in result if words)


def load_tag(path: Path) -> Tag:
    """Read and validate one ``.tag`` file; ProfileError names the file and the field."""
    try:
        with path.open(encoding="utf-8") as fh:
            fields = dict(Deb822(fh))
    except OSError as err:
        raise ProfileError(f"cannot read {path}: {err.strerror}") from None
    try:
        jsonschema.validate(fields, _schema(SCHEMA))
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "paragraph"
        raise ProfileError(f"{path}: {where}: {err.message}", hint=f"see {SCHEMA}") from None
    if fields["Tag"] != path.stem:
        raise ProfileError(f"{path}: Tag is {fields['Tag']!r}, but the file is named {path.name}",
                           hint="name the file <Tag>.tag")
    see_also = fields.get("See-Also", "")
    return Tag(
        name=fields["Tag"],
        severities=tuple(s.strip() for s in fields["Severity"].split(",")),
        check=fields["Check"],
        paragraphs=_paragraphs(fields["Explanation"]),
        see_also=tuple(s.strip() for s in see_also.split(",")) if see_also else (),
    )


@functools.cache
def catalogue(directory: Path | None = None) -> dict[str, Tag]:
    """Every tag, by name, sorted; ``directory`` defaults to profiles/tags/."""
    directory = directory or _data_root() / "tags"
    return {tag.name: tag for tag in (load_tag(p) for p in sorted(directory.glob("*.tag")))}


def lookup(name: str) -> Tag:
    """The tag ``name``; UsageError (exit 2) naming the closest tags when there is none."""
    tags = catalogue()
    if name in tags:
        return tags[name]
    close = difflib.get_close_matches(name, list(tags), n=3, cutoff=0.5)
    hint = (f"did you mean {' or '.join(close)}?" if close
            else f"the {len(tags)} tags are listed in hwcapdeb-verify(1) and docs/tags.md")
    raise UsageError(f"unknown tag '{name}'", hint=hint)


def explain(tag: Tag, width: int = 78) -> str:
    """The text ``hwcapdeb verify --explain`` prints, lintian-explain-tags style."""
    lines = [f"{tag.letters}: {tag.name}",
             f"Severity: {', '.join(tag.severities)}; check: {tag.check}", ""]
    for paragraph in tag.paragraphs:
        lines += textwrap.wrap(paragraph, width, initial_indent="  ", subsequent_indent="  ",
                               break_on_hyphens=False)
        lines.append("")
    if tag.see_also:
        lines.append(f"See also: {', '.join(tag.see_also)}")
    return "\n".join(lines).rstrip("\n") + "\n"


def table(tags: Iterable[Tag]) -> list[str]:
    """A markdown table of ``tags``: name (linked to its section), severity, check, summary."""
    out = ["| tag | severity | check | what it means |", "|---|---|---|---|"]
    for tag in tags:
        summary = tag.summary.replace("|", r"\|")
        out.append(f"| [`{tag.name}`](#{tag.name}) | {tag.letters} | {tag.check} | {summary} |")
    return out


def markdown(tags: dict[str, Tag] | None = None) -> str:
    """docs/tags.md: a summary table per command, then every explanation."""
    tags = tags if tags is not None else catalogue()
    out = [
        "# Finding tags",
        "",
        "<!-- generated by `python -m hwcapdeb.tags --markdown > docs/tags.md` from",
        "     profiles/tags/*.tag; do not edit by hand (a test keeps it in sync) -->",
        "",
        "`hwcapdeb verify` and `hwcapdeb sbuild-config --check` print one lintian-style",
        "line per finding: `E: package: tag path (message)` (E error, W warning).",
        "`hwcapdeb verify --explain TAG` prints a tag's explanation.",
    ]
    for command in dict.fromkeys(t.check.split("/")[0] for t in tags.values()):
        out += ["", f"`hwcapdeb {command}`:", "",
                *table(t for t in tags.values() if t.check.split("/")[0] == command)]
    for tag in tags.values():
        out += ["", f"## {tag.name}", "",
                f"Severity: {', '.join(tag.severities)}. Check: `{tag.check}`.", ""]
        for paragraph in tag.paragraphs:
            out += [paragraph, ""]
        if tag.see_also:
            out.append(f"See also: {', '.join(tag.see_also)}.")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwcapdeb.tags", description=__doc__)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--markdown", action="store_true", help="print docs/tags.md")
    what.add_argument("--explain", metavar="TAG", help="print one tag's explanation")
    args = parser.parse_args(argv)
    try:
        if args.explain:
            sys.stdout.write(explain(lookup(args.explain)))
        elif args.markdown:
            sys.stdout.write(markdown())
        else:
            for tag in catalogue().values():
                print(f"{tag.letters}\t{tag.name}\t{tag.check}")
    except (UsageError, ProfileError) as err:
        print(f"hwcapdeb: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
