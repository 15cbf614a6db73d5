"""The agent's side of "the server said not now": remember until when it is not asked
again (in state.json, so later runs honour it), and say so in the run's output.

The wait itself is ``patchline.transport.backoff.wait_before_asking``, the rule the
fleet simulator follows too.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import msgspec

from patchline.agent.state import AgentState, ServerBackoff
from patchline.errors import ServerBusyError
from patchline.transport.backoff import wait_before_asking


def _instant(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def waiting_until(state: AgentState, now: datetime) -> datetime | None:
    """The instant before which the server must not be asked, when ``now`` is before it."""
    backoff = state.server_backoff
    if backoff is None:
        return None
    try:
        not_before = datetime.fromisoformat(backoff.not_before)
    except ValueError:
        return None  # an unreadable instant never keeps the device from its server
    if not_before.tzinfo is None or now >= not_before:
        return None
    return not_before


def not_asked(state: AgentState) -> str:
    """Why the server is skipped this run, for the run's output: what it answered last
    and when it will be asked again."""
    backoff = state.server_backoff
    assert backoff is not None
    return (
        f"not asked until {backoff.not_before}: {backoff.reason} "
        f"({backoff.failures} time{'s' if backoff.failures != 1 else ''} in a row)"
    )


def backed_off(
    state: AgentState, exc: ServerBusyError, now: datetime, rng: random.Random
) -> AgentState:
    """``state`` with the server not to be asked again before a jittered wait from
    ``now`` (the server's Retry-After, or an exponential backoff over the errors in a
    row)."""
    failures = (state.server_backoff.failures if state.server_backoff else 0) + 1
    wait = wait_before_asking(exc.retry_after, failures, rng)
    # Rounded up to the second the instant is written with: never sooner than asked.
    until = now + timedelta(seconds=wait)
    not_before = until.replace(microsecond=0) + timedelta(seconds=1 if until.microsecond else 0)
    return msgspec.structs.replace(
        state,
        server_backoff=ServerBackoff(_instant(not_before), failures, exc.message),
    )


def cleared(state: AgentState) -> AgentState:
    """``state`` with no wait: the server answered."""
    if state.server_backoff is None:
        return state
    return msgspec.structs.replace(state, server_backoff=None)
