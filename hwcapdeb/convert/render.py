"""The files embed mode renders from ``templates/`` and what the templates are given.

The templates are rendered with Jinja's StrictUndefined: a name that
:class:`TemplateContext` lacks fails the render instead of writing nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2

from hwcapdeb.source import BinaryPackage


@dataclass(frozen=True)
class SplitPackage:
    """A package of the split layout: the ``level`` build of ``library``'s libraries."""

    name: str  # LIBRARY-LEVEL
    library: str
    level: str
    multi_arch: str | None
    section: str | None
    synopsis: str

    @classmethod
    def of(cls, library: BinaryPackage, level: str) -> SplitPackage:
        return cls(
            name=f"{library.name}-{level}",
            library=library.name,
            level=level,
            multi_arch=library.multi_arch,
            section=library.section,
            synopsis=library.synopsis,
        )


@dataclass(frozen=True)
class TemplateContext:
    """What every template may use."""

    version: str  # hwcapdeb's, named in the generated files
    arch: str
    triplet: str
    levels: tuple[str, ...]  # lowest first
    layout: str
    split: tuple[SplitPackage, ...]  # empty for the inline layout


def render(template: str, context: TemplateContext) -> bytes:
    """``templates/<template>`` rendered with ``context``."""
    return _environment().get_template(template).render(dataclasses.asdict(context)).encode()


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("hwcapdeb.template_data"))),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
