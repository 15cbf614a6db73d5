"""``patchline audit verify|export|verify-export``."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

import click

from patchline.audit import audit_signer, export, verify, verify_export
from patchline.cli.context import CliContext, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.clock import SystemClock
from patchline.errors import AuditChainBrokenError, AuditError
from patchline.store.db import Database

day = click.DateTime(formats=["%Y-%m-%d"])


def _database(cli: CliContext, url: str | None) -> contextlib.AbstractContextManager[Database]:
    return open_database(cli, url, "read the audit chain", AuditError)


@click.group()
def audit() -> None:
    """The audit chain: prove it unbroken, export evidence, check an export."""


@audit.command("verify")
@database_option
@pass_cli
def verify_command(cli: CliContext, database_url: str | None) -> None:
    """Check every entry of the chain and its head; exit non-zero at the first problem."""
    with _database(cli, database_url) as db:
        result = verify(db)
    if result.problem is not None:
        raise AuditChainBrokenError(
            f"the audit chain is broken at entry {result.problem.seq} "
            f"({result.problem.code}): {result.problem.message}; "
            f"{result.count} entries before it verified",
            hint="keep this database as evidence and compare it with the latest export",
        )
    head = result.head
    cli.console.print(
        f"The audit chain is whole: {result.count} entries; head seq "
        f"{head.seq if head else 0}, hash {head.hash if head else '(none: empty chain)'}."
    )


@audit.command("export")
@click.option("--from", "start", type=day, required=True, help="First day (UTC), YYYY-MM-DD.")
@click.option("--to", "end", type=day, required=True, help="Last day (UTC), YYYY-MM-DD.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@database_option
@pass_cli
def export_command(
    cli: CliContext, start: datetime, end: datetime, out_dir: Path, database_url: str | None
) -> None:
    """Write the entries of a date range and a summary signed with the audit key to OUT_DIR."""
    clock = SystemClock()
    repo = cli.open_repository()
    with _database(cli, database_url) as db:
        signer = audit_signer(repo.keyring, clock.now())
        summary = export(db, start.date(), end.date(), out_dir, signer, now=clock.now())
    span = f"seq {summary.first_seq}..{summary.last_seq}" if summary.count else "no entries"
    cli.console.print(
        f"Exported {summary.count} entries ({span}) dated {summary.start}..{summary.end} "
        f"to {out_dir}, signed by audit key {summary.keyid[:16]}."
    )


@audit.command("verify-export")
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--trusted-key",
    "trusted",
    multiple=True,
    help="A key id the export must be signed by (repeatable); default: the key it names.",
)
def verify_export_command(out_dir: Path, trusted: tuple[str, ...]) -> None:
    """Check an export offline: signature, file hash, every link of its entries, and every
    offline install receipt in it against its device's signature."""
    summary = verify_export(out_dir, trusted_keyids=frozenset(trusted) if trusted else None)
    click.echo(
        f"The export is valid: {summary.count} entries dated {summary.start}..{summary.end}, "
        f"last hash {summary.last_hash or '-'}, signed by key {summary.keyid}; "
        f"{summary.receipts_verified} offline install receipts signed by their devices."
    )
