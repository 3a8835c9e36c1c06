"""QA: one real package (this machine's release) beyond the acceptance corpus, end to end.

libogg (autotools + libtool, plain ``dh``, Build-Depends only debhelper) is
fetched with ``apt-get source``, built by ``hwcapdeb build`` with x86-64-v2,
-v3 and -v4 and its own test suite run against every variant this CPU runs;
then ``hwcapdeb verify`` must find nothing wrong in the .changes, and the real
loader, with GLIBC_TUNABLES masks taking the CPU down level by level, must
map the variant of that level.  The acceptance corpus (tests/test_corpus.py)
does not run ``verify`` on what it builds; this test does, on a package none
of the areas was written against.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from tests import corpus
from tests.test_corpus import (
    LEVELS,
    LOADER,
    MASKS,
    libraries_with_variants,
    loaded_path,
    top_supported_level,
    unpack,
)

PACKAGE = "libogg"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(LOADER).exists(), reason="needs the amd64 loader"),
]


def test_libogg_builds_verifies_and_loads_per_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for level, mask in MASKS.items():
        if top_supported_level(mask) != level:
            pytest.skip(f"this CPU does not reach exactly {level} with mask {mask}")
    dsc = corpus.fetch(PACKAGE)
    out = tmp_path / "out"
    monkeypatch.delenv("DEB_BUILD_OPTIONS", raising=False)  # tests on: variants too
    status = main(["build", str(dsc), "-p", ",".join(LEVELS), "--out", str(out), "-j2"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    (changes,) = out.glob("*.changes")
    build_log = next(out.glob("*.build")).read_text(errors="replace")
    for level in LEVELS:
        # the package's own test suite ran against each variant (this CPU runs them all)
        assert f"hwcapdeb: {level}: tests ran natively" in build_log
        assert f"hwcapdeb: {level}: installed 1 libraries into libogg0" in build_log

    assert main(["verify", str(changes)]) == 0, capsys.readouterr().out

    root = tmp_path / "root"
    unpack(tuple(out.glob("*.deb")), root)
    libraries = libraries_with_variants(root)
    assert [soname for _, soname in libraries] == ["libogg.so.0"]
    libdir, soname = libraries[0]
    for level, mask in MASKS.items():
        expected = libdir / soname
        if level != "baseline":
            expected = libdir / "glibc-hwcaps" / level / soname
        chosen = loaded_path(libdir, soname, mask)
        assert os.path.normpath(chosen) == os.path.normpath(expected), (level, chosen)
