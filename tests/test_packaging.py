"""The Python package ships every subpackage: a directory of hwcapdeb/ with an
``__init__.py`` that pyproject.toml does not list would be missing from a
non-editable install (pip install ., a wheel), and only there."""

from __future__ import annotations

import tomllib
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((TOP / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(TOP).parts)
        for init in (TOP / "hwcapdeb").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    data_dirs = {name for name in listed if name not in on_disk}
    # the data packages are directories mapped by package-dir, each of which exists
    for name in data_dirs:
        assert (TOP / config["package-dir"][name]).is_dir(), name
