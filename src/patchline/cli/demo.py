"""``patchline demo``: the whole system on this machine, narrated."""

from __future__ import annotations

import time
from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.demo.scenario import run_demo


@click.command()
@click.option("--port", default=8000, show_default=True, help="Port of the demo's host.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps its data (wiped at start).",
)
@click.option("--no-wait", is_flag=True, help="Stop when the story ends instead of serving on.")
@pass_cli
def demo(cli: CliContext, port: int, workdir: Path, no_wait: bool) -> None:
    """Run the server with signed releases and phones updating through it, narrated."""
    demo = run_demo(workdir, port, cli.console.print, cli.settings)
    try:
        if no_wait:
            return
        cli.console.print(
            f"\nServing {demo.server_url}: API docs at /docs, the signed repository at "
            "/repository/. Ctrl-C to stop."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cli.console.print("Stopped.")
    finally:
        demo.stop_server()
