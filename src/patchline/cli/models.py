"""``patchline model add|list``."""

from __future__ import annotations

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.repository import add_model, releases_of


@click.group()
def model() -> None:
    """Device models: each has its own signed role and key."""


@model.command("add")
@click.argument("name")
@pass_cli
def add_command(cli: CliContext, name: str) -> None:
    """Add device model NAME, with its own delegated targets role and key."""
    keyid = add_model(cli.open_repository(), name)
    cli.console.print(f"Added model [bold]{name}[/] with key {keyid[:12]}.")


@model.command("list")
@pass_cli
def list_command(cli: CliContext) -> None:
    """List the models and how many releases each has."""
    state = cli.open_repository().state()
    names = state.model_names()
    if not names:
        cli.console.print("No models yet: add one with `patchline model add NAME`.")
    for name in names:
        cli.console.print(f"{name}: {len(releases_of(state, name))} releases")
