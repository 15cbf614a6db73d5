"""Key rotation for any role, root included, without stranding a device.

A new root is signed by a threshold of the keys of the root before it and of its own,
so a device that trusts only an old root walks the chain ``N.root.json``,
``N+1.root.json``... to the newest. The role whose key changed is then re-signed with
its new key, and every role that names it after it (targets, snapshot, timestamp).
The old private key is destroyed only after the new state is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tuf.api.metadata import Root, Targets

from patchline.errors import UsageError
from patchline.repository.config import TOP_LEVEL_ROLES
from patchline.repository.publisher import Repository, Transaction


@dataclass(frozen=True)
class Rotation:
    """What a rotation changed."""

    role: str
    retired: tuple[str, ...]
    added: tuple[str, ...]
    root_version: int


def rotate_key(repo: Repository, role: str, keyid: str | None = None) -> Rotation:
    """Replace one key of ``role`` (``keyid``, or every key of the role) with a new one.

    Raises UsageError for an unknown role or a key id the role does not use, and
    UnknownModelError for an unknown model role. On any error nothing is published.
    """
    with repo.transaction() as tx:
        if role in TOP_LEVEL_ROLES:
            current = list(tx.state.root.signed.roles[role].keyids)
        else:
            tx.state.model(role)  # raises UnknownModelError
            delegations = tx.state.targets.signed.delegations
            assert delegations is not None
            assert delegations.roles is not None
            current = list(delegations.roles[role].keyids)
        old = _select(role, current, keyid)
        # Open the keys that must sign the change before creating anything new.
        tx.require_signers(["root"] if role in TOP_LEVEL_ROLES else ["targets"])
        now = repo.clock.now()
        added: list[str] = []
        try:
            _replace_keys(tx, role, old, added, now)
            tx.commit()
        except BaseException:
            for keyid_added in added:  # never published: forget the new keys again
                repo.keyring.retire(keyid_added)
            raise
        still_used = _keyids_in_use(repo)
        for retired in old:
            if retired not in still_used:
                repo.keyring.retire(retired)
        return Rotation(role, tuple(old), tuple(added), tx.state.root.signed.version)


def _replace_keys(
    tx: Transaction, role: str, old: list[str], added: list[str], now: datetime
) -> None:
    repo = tx.repo
    if role in TOP_LEVEL_ROLES:
        delegator: Root | Targets = tx.edit_root()
    else:
        delegator = tx.edit_targets()
    for retired in old:
        new_key = repo.keyring.create(role, now)
        added.append(new_key.keyid)
        delegator.revoke_key(retired, role)
        delegator.add_key(new_key, role)
    if role != "root":
        tx.resign(role)


def _select(role: str, current: list[str], keyid: str | None) -> list[str]:
    if keyid is None:
        return current
    matches = [k for k in current if k.startswith(keyid)]
    if len(matches) != 1:
        raise UsageError(
            f"the {role} role has no single key starting with {keyid!r}",
            hint=f"its keys are: {', '.join(k[:12] for k in current)}",
        )
    return matches


def _keyids_in_use(repo: Repository) -> set[str]:
    state = repo.state()
    used = {k for role in state.root.signed.roles.values() for k in role.keyids}
    delegations = state.targets.signed.delegations
    if delegations is not None:
        used |= set(delegations.keys)
    return used
