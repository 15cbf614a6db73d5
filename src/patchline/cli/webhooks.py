"""``patchline webhook``: subscriptions to signed event notifications and their
deliveries, on the server's database (docs/webhooks.md)."""

from __future__ import annotations

import click
from rich.table import Table

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.cli.output import json_option, print_json
from patchline.clock import SystemClock
from patchline.webhooks import subscriptions
from patchline.webhooks.events import EVENT_TYPES
from patchline.webhooks.subscriptions import InvalidSubscriptionError


@click.group()
def webhook() -> None:
    """Signed event notifications (webhooks)."""


@webhook.command("add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    help=f"An event to send (repeat it): {', '.join(EVENT_TYPES)}.",
)
@click.option("--secret", default=None, help="A whsec_ signing secret (default: a new one).")
@click.option("--description", default="", help="What the receiver is.")
@database_option
@pass_cli
def add_command(
    cli: CliContext,
    url: str,
    events: tuple[str, ...],
    secret: str | None,
    description: str,
    database_url: str | None,
) -> None:
    """Subscribe URL to events; print the subscription's id and its signing secret (once)."""
    with (
        open_database(cli, database_url, "add the webhook", InvalidSubscriptionError) as db,
        db.transaction() as session,
    ):
        new = subscriptions.add_subscription(
            session, url, list(events), cli_actor(), SystemClock().now(), secret, description
        )
        sub_id = new.row.id
    click.echo(f"{sub_id} {new.secret}")


@webhook.command("list")
@database_option
@json_option
@pass_cli
def list_command(cli: CliContext, database_url: str | None, as_json: bool) -> None:
    """List live subscriptions (never their secrets)."""
    with (
        open_database(cli, database_url, "list webhooks", InvalidSubscriptionError) as db,
        db.transaction() as session,
    ):
        rows = [
            (r.id, r.url, list(r.events), r.description)
            for r in subscriptions.list_subscriptions(session)
        ]
    if as_json:
        print_json(
            {
                "webhooks": [
                    {"id": i, "url": u, "events": e, "description": d} for i, u, e, d in rows
                ]
            }
        )
        return
    table = Table()
    for column in ("id", "url", "events", "description"):
        table.add_column(column)
    for sub_id, url, events, description in rows:
        table.add_row(str(sub_id), url, ", ".join(events), description)
    cli.console.print(table)


@webhook.command("remove")
@click.argument("subscription_id", type=click.IntRange(1, 2**31 - 1))
@database_option
@pass_cli
def remove_command(cli: CliContext, subscription_id: int, database_url: str | None) -> None:
    """Stop sending to subscription SUBSCRIPTION_ID."""
    with (
        open_database(cli, database_url, "remove the webhook", InvalidSubscriptionError) as db,
        db.transaction() as session,
    ):
        subscriptions.remove_subscription(
            session, subscription_id, cli_actor(), SystemClock().now()
        )
    cli.console.print(f"Removed webhook {subscription_id}.")


@webhook.command("deliveries")
@click.option(
    "--state",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only these.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@database_option
@json_option
@pass_cli
def deliveries_command(
    cli: CliContext, state: str | None, limit: int, database_url: str | None, as_json: bool
) -> None:
    """List messages, newest first, with their attempts and last error."""
    with (
        open_database(cli, database_url, "list deliveries", InvalidSubscriptionError) as db,
        db.transaction() as session,
    ):
        shown = [
            {
                "id": m.id,
                "message_id": m.message_id,
                "subscription_id": m.subscription_id,
                "event_type": m.event_type,
                "state": m.state,
                "attempts": m.attempts,
                "last_error": m.last_error,
            }
            for m in subscriptions.list_deliveries(session, state, limit)
        ]
    if as_json:
        print_json({"deliveries": shown})
        return
    table = Table()
    for column in ("id", "event", "webhook", "state", "attempts", "last error"):
        table.add_column(column)
    for m in shown:
        table.add_row(
            str(m["id"]),
            str(m["event_type"]),
            str(m["subscription_id"]),
            str(m["state"]),
            str(m["attempts"]),
            str(m["last_error"]) or "-",
        )
    cli.console.print(table)


@webhook.command("resend")
@click.argument("message_ids", nargs=-1, type=click.IntRange(1, 2**31 - 1))
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
@database_option
@pass_cli
def resend_command(
    cli: CliContext, message_ids: tuple[int, ...], all_failed: bool, database_url: str | None
) -> None:
    """Send the messages MESSAGE_IDS (or, with --failed, every failed one) again."""
    if bool(message_ids) == all_failed:
        raise click.UsageError("give message ids or --failed (one of them)")
    ids = None if all_failed else list(message_ids)
    with (
        open_database(cli, database_url, "resend", InvalidSubscriptionError) as db,
        db.transaction() as session,
    ):
        count = subscriptions.resend(session, ids, SystemClock().now())
    cli.console.print(f"{count} message(s) will be sent again.")
