"""Entry point of the ``patchline`` command, and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from patchline import __version__
from patchline.cli.agent import agent
from patchline.cli.audit import audit
from patchline.cli.bundle import bundle
from patchline.cli.context import CliContext
from patchline.cli.continuity import continuity
from patchline.cli.demo import demo
from patchline.cli.devices import device
from patchline.cli.groups import group
from patchline.cli.keys import key
from patchline.cli.mirror import mirror
from patchline.cli.models import model
from patchline.cli.output import make_console
from patchline.cli.proposals import proposal
from patchline.cli.releases import release
from patchline.cli.repo import init, repo
from patchline.cli.rollouts import rollout
from patchline.cli.serve import director, serve, token
from patchline.cli.simulate import simulate
from patchline.cli.support import support
from patchline.cli.webhooks import webhook
from patchline.errors import PatchlineError
from patchline.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The repository's data directory (or set PATCHLINE_HOME; default: here).",
)
@click.version_option(__version__, prog_name="patchline")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """Patchline: signed over-the-air updates that any static host can deliver."""
    overrides = {} if home is None else {"home": home}
    settings = Settings.from_env(os.environ, **overrides)
    ctx.obj = CliContext(settings=settings, console=make_console())


for command in (
    init,
    repo,
    model,
    release,
    key,
    demo,
    agent,
    audit,
    serve,
    director,
    token,
    device,
    mirror,
    bundle,
    continuity,
    simulate,
    proposal,
    rollout,
    group,
    webhook,
    support,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; map every Patchline error to a message and an exit code."""
    try:
        cli.main(args=argv, prog_name="patchline", standalone_mode=False)
    except PatchlineError as exc:
        err = make_console(stderr=True)
        err.print(f"[bold red]error:[/] {escape(exc.message)}")
        if exc.hint:
            err.print(f"[bold]what to do:[/] {escape(exc.hint)}")
        return exc.exit_code
    except click.exceptions.Abort:
        make_console(stderr=True).print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
