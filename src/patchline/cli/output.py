"""What commands print: a console that cuts nothing when piped, and JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

#: Console width off a terminal: wide enough that no table row is cut or wrapped.
PIPED_WIDTH = 100_000

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON (the keys are listed in docs/cli-json.md) instead of a table.",
)


def make_console(*, stderr: bool = False) -> Console:
    """A console for people; off a terminal (a pipe, a file) it neither cuts nor wraps
    table rows at any width."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPED_WIDTH)


def print_json(document: dict[str, Any]) -> None:
    """Print ``document`` as indented JSON on standard output, keys in the order given."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def iso_utc(moment: datetime) -> str:
    """``moment`` in ISO 8601, in UTC, to the second: ``2026-01-31T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
