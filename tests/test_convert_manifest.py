"""The manifest of embed mode (hwcapdeb/convert/manifest.py) on synthetic and real trees.

``tests/data/manifest-format1.json`` was written by hwcapdeb before the
manifest became a dataclass (vecmath, split layout, a version suffix and
debian/rules a symbolic link: every kind of entry).  Trees converted then
must still revert, so it must read back and write out the same bytes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hwcapdeb.cli import main
from hwcapdeb.convert import manifest
from hwcapdeb.convert.manifest import MANIFEST, STATE_DIR, Entry, Manifest, relink
from hwcapdeb.convert.plan import FileState
from hwcapdeb.errors import SourcePackageError
from tests.test_convert import EXAMPLE

FORMAT_1 = Path(__file__).parent / "data" / "manifest-format1.json"


def test_a_format_1_manifest_is_written_back_byte_for_byte() -> None:
    text = FORMAT_1.read_text()
    loaded = Manifest.from_json(json.loads(text))
    assert loaded.to_json() == text
    assert (loaded.format, loaded.source, loaded.layout) == (1, "vecmath", "split")
    assert loaded.profiles == ("x86-64-v3",)
    assert (loaded.variant_env, loaded.variant_make_vars) == (("A=1",), ("B=2",))
    assert loaded.version_suffix == "+hw1"
    assert loaded.changelog_author == "Test Er <t@example.org>"


def test_format_1_entries_are_typed() -> None:
    files = Manifest.from_json(json.loads(FORMAT_1.read_text())).files
    changelog = files["debian/changelog"]
    assert changelog.original == f"{STATE_DIR}/original/debian/changelog"
    assert changelog.original_mode == 0o644 and changelog.original_link is None
    rules = files["debian/rules"]
    assert (rules.original, rules.original_link) == (f"{STATE_DIR}/maintainer.rules", "rules.real")
    assert rules.original_sha256 is None and rules.original_mode is None
    assert files[f"{STATE_DIR}/maintainer.rules"] == Entry(original=None, link="../rules.real")
    triggers = files["debian/libvecmath1-x86-64-v3.triggers"]
    assert triggers.original is None and triggers.sha256 is not None


def test_an_entry_matches_what_conversion_wrote() -> None:
    written = FileState(b"new\n", 0o644)
    entry = Entry(original="debian/hwcapdeb/original/debian/x", sha256=written.sha256,
                  original_sha256=FileState(b"old\n", 0o600).sha256, original_mode=0o600)
    assert entry.written_matches(written)
    assert entry.written_matches(FileState(b"new\n", 0o755))  # the mode is not recorded
    assert not entry.written_matches(FileState(b"edited\n", 0o644))
    assert not entry.written_matches(None)
    assert not entry.written_matches(FileState(b"", 0, "new"))
    assert entry.store_matches("debian/x", FileState(b"old\n", 0o600))
    assert not entry.store_matches("debian/x", FileState(b"new\n", 0o600))
    assert entry.to_json() == {
        "original": entry.original,
        "original_sha256": entry.original_sha256,
        "original_mode": "600",
        "sha256": written.sha256,
    }


def test_a_link_entry_and_its_store() -> None:
    assert Entry.created(FileState(b"", 0, "../x")) == Entry(original=None, link="../x")
    assert Entry.created(FileState(b"a", 0o644)).to_json() == {
        "original": None, "sha256": FileState(b"a", 0o644).sha256}
    entry = Entry(original=f"{STATE_DIR}/maintainer.rules", sha256="0" * 64,
                  original_link="shared/rules")
    # the store sits one directory deeper: its target says so
    assert entry.store_matches("debian/rules", FileState(b"", 0, "../shared/rules"))
    assert not entry.store_matches("debian/rules", FileState(b"", 0, "shared/rules"))
    assert not entry.store_matches("debian/rules", None)


@pytest.mark.parametrize(
    ("target", "rel", "store", "want"),
    [
        ("rules.real", "debian/rules", "debian/hwcapdeb/maintainer.rules", "../rules.real"),
        ("../x", "debian/rules", "debian/hwcapdeb/original/debian/rules", "../../../../x"),
        ("/usr/share/x", "debian/rules", "debian/hwcapdeb/maintainer.rules", "/usr/share/x"),
    ],
)
def test_relink(target: str, rel: str, store: str, want: str) -> None:
    assert relink(target, rel, store) == want


def test_facts_nothing_relies_on_are_read_as_found() -> None:
    doc = json.loads(FORMAT_1.read_text())
    doc.update(profiles=5, source=None, variant_env=["A=1", 3], format="one")
    loaded = Manifest.from_json(doc)
    assert (loaded.profiles, loaded.source, loaded.variant_env) == ((), "", ("A=1",))
    assert loaded.format == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("files"), "no 'files' object"),
        (lambda d: d.update(changelog_date=7), "'changelog_date' is not a string"),
        (lambda d: d["files"]["debian/rules"].pop("original"), "has no 'original'"),
        (lambda d: d["files"]["debian/control"].update(link=5), "a link that is not a path"),
        (lambda d: d["files"]["debian/control"].pop("original_mode"), "has no sha256 or mode"),
    ],
)
def test_a_damaged_manifest_is_refused(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = json.loads(FORMAT_1.read_text())
    change(doc)
    with pytest.raises(SourcePackageError, match=message):
        Manifest.from_json(doc)


def test_load(tmp_path: Path) -> None:
    assert manifest.load(tmp_path) is None  # not converted
    (tmp_path / STATE_DIR).mkdir(parents=True)
    (tmp_path / MANIFEST).write_text(FORMAT_1.read_text())
    loaded = manifest.load(tmp_path)
    assert loaded is not None and loaded.to_json() == FORMAT_1.read_text()
    (tmp_path / MANIFEST).unlink()
    (tmp_path / STATE_DIR / "maintainer.rules").write_text("%:\n\tdh $@\n")
    with pytest.raises(SourcePackageError, match=r"exists but has no manifest\.json"):
        manifest.load(tmp_path)


def test_a_converted_tree_reads_back_its_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, src, symlinks=True)
    argv = ["convert", str(src), "-p", "x86-64-v2,x86-64-v3", "--mode", "embed",
            "--version-suffix", "+hw1"]
    assert main(argv) == 0, capsys.readouterr().err
    loaded = manifest.load(src)
    assert loaded is not None
    assert loaded.to_json() == (src / MANIFEST).read_text()
    assert loaded.profiles == ("x86-64-v2", "x86-64-v3")
    for rel, entry in loaded.files.items():
        assert entry.written_matches(FileState((src / rel).read_bytes(), 0o644)), rel
