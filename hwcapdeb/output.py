"""Shared rendering helpers: JSON documents with a top-level version."""

from __future__ import annotations

import json
from typing import Any

import click

from hwcapdeb import JSON_FORMAT_VERSION, __version__


def emit_json(document: dict[str, Any]) -> None:
    """Print ``document`` as JSON with the top-level ``version`` every output carries."""
    payload = {"version": JSON_FORMAT_VERSION, "hwcapdeb": __version__, **document}
    click.echo(json.dumps(payload, indent=2, sort_keys=False))
