"""One way to draw byte progress bars for every long command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn


@contextlib.contextmanager
def byte_progress(console: Console) -> Iterator[Progress]:
    """A transient progress display of bytes done, total and speed; silent off a terminal."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        yield bar
