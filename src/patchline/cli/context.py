"""What every command shares: the repository home, settings, and the console."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from patchline.repository import Repository
from patchline.settings import Settings


@dataclass
class CliContext:
    """Handed to each command through click's context object."""

    settings: Settings
    console: Console

    @property
    def home(self) -> Path:
        """The data directory: ``--home``, else ``PATCHLINE_HOME``, else here."""
        return self.settings.home

    def open_repository(self) -> Repository:
        """Open the repository in ``--home`` (raises RepositoryNotFoundError)."""
        return Repository.open(self.home, self.settings)


pass_cli = click.make_pass_decorator(CliContext)


def cli_actor() -> str:
    """Who is running the command, as the audit chain names them."""
    return f"cli:{getpass.getuser()}"
