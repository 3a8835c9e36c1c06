"""The tag catalogue (profiles/tags/*.tag) against the code that emits the tags.

The code is read with :mod:`ast`: every string literal that looks like a tag
(``word-word``) and is an argument of a call that records a finding
(``Finding(...)``, ``rc_finding(...)``, ``hint(...)``...) must
have a catalogue entry with the severities used beside it, and every entry
must be emitted somewhere.  A real verify run on a broken tree checks the
same from the other end.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hwcapdeb import tags as tags_mod
from hwcapdeb.cli import main
from hwcapdeb.errors import ProfileError, UsageError
from hwcapdeb.verify import verify_paths
from tests.elfbuild import install_variant_tree

ROOT = Path(__file__).resolve().parent.parent
TAG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
#: callees that record a finding; a new recorder's name must match this
RECORDER_RE = re.compile(r"(^add$|^_?add_|finding|^hint$|^_?emit|^_?flag$)", re.IGNORECASE)
SEVERITIES = {"error", "warning", "info"}


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _constants(node: ast.AST) -> list[str]:
    """String constants of an argument, through conditional expressions, not f-strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    return []


def emitted_tags() -> dict[str, set[str]]:
    """tag -> severities written beside it, over every call that records a finding."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "hwcapdeb").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not RECORDER_RE.search(_callee(node)):
                continue
            words = [w for arg in [*node.args, *(k.value for k in node.keywords)]
                     for w in _constants(arg)]
            names = [w for w in words if TAG_RE.match(w)]
            for name in names:
                found.setdefault(name, set()).update(w for w in words if w in SEVERITIES)
    return found


def test_catalogue_loads_and_is_valid() -> None:
    catalogue = tags_mod.catalogue()
    assert len(catalogue) >= 20
    for tag in catalogue.values():
        assert tag.paragraphs and tag.summary.endswith((".", ")")), tag.name
        assert set(tag.severities) <= SEVERITIES


def test_every_emitted_tag_is_catalogued_and_back() -> None:
    emitted = emitted_tags()
    catalogue = tags_mod.catalogue()
    assert "isa-leak" in emitted and "no-apply-hook" in emitted  # the scan itself works
    assert sorted(set(emitted) - set(catalogue)) == [], "tags the code emits without an entry"
    assert sorted(set(catalogue) - set(emitted)) == [], "entries no code emits"
    for name, severities in emitted.items():
        # rc_finding takes no severity: every sbuildrc finding is an error
        assert set(catalogue[name].severities) == (severities or {"error"}), name


def test_docs_tags_md_is_in_sync() -> None:
    committed = (ROOT / "docs/tags.md").read_text()
    assert committed == tags_mod.markdown(), (
        "docs/tags.md is stale: python -m hwcapdeb.tags --markdown > docs/tags.md"
    )


def test_a_bad_tag_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "some-tag.tag").write_text("Tag: some-tag\nSeverity: fatal\nCheck: verify\n"
                                           "Explanation: too short\n")
    with pytest.raises(ProfileError, match=r"some-tag.tag: Severity: 'fatal' does not match"):
        tags_mod.catalogue(tmp_path)
    (tmp_path / "some-tag.tag").write_text(
        "Tag: other-tag\nSeverity: error\nCheck: verify/layout\n"
        "Explanation: a long enough explanation of what is wrong here\n")
    with pytest.raises(ProfileError, match=r"file is named some-tag\.tag"):
        tags_mod.catalogue(tmp_path)


def test_unknown_tag_names_the_close_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="did you mean isa-leak"):
        tags_mod.lookup("isa-leek")
    assert tags_mod.main(["--explain", "isa-leek"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert tags_mod.main(["--explain", "isa-leak"]) == 0
    assert capsys.readouterr().out.startswith("E: isa-leak\n")


def test_explain_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--explain", "missing-soname-link", "--explain", "no-apply-hook"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("E: missing-soname-link\n") and "\nE: no-apply-hook\n" in out
    assert "looks up the NEEDED name" in out and "See also: ld.so(8)" in out and err == ""
    assert main(["verify", "--explain", "soname-link-missing"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("hwcapdeb: error: unknown tag 'soname-link-missing'; did you mean ")
    assert "missing-soname-link" in err


def test_tags_of_a_real_broken_tree_are_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gcc-built variants without SONAME links, a legacy directory, a stray file."""
    libdir = tmp_path / "usr/lib/x86_64-linux-gnu"
    install_variant_tree(libdir, levels=("x86-64-v3",), soname_links=False)
    (libdir / "glibc-hwcaps/haswell").mkdir()
    (libdir / "glibc-hwcaps/x86-64-v3/README").write_text("not a library\n")
    report = verify_paths([tmp_path], arch_name="amd64", cpus=["x86_64"], ask_real_loader=False)
    found = {(f.tag, f.severity) for f in report.findings}
    assert {t for t, _ in found} == {
        "missing-soname-link", "unknown-hwcaps-directory", "unreadable-file"}
    catalogue = tags_mod.catalogue()
    for tag, severity in found:
        assert severity in catalogue[tag].severities
        assert main(["verify", "--explain", tag]) == 0
        assert capsys.readouterr().out.startswith(f"{catalogue[tag].letters}: {tag}\n")
