"""Key rotation for any role, root included, without stranding a device.

A new root is signed by a threshold of the keys of the root before it and of its own,
so a device that trusts only an old root walks the chain ``N.root.json``,
``N+1.root.json``... to the newest. The role whose key changed is then re-signed with
its new key, and every role that names it after it (targets, snapshot, timestamp).
The old private key is destroyed only after the new state is published.

The offline-bundle role (``offline``) is named in a custom field of root, so rotating
its key is a new root version alone: every bundle signed with the old key is refused
by a device that has seen that root, which is how leaked or bad bundles are revoked.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from tuf.api.metadata import Root, Targets

from patchline.errors import BundleError, UsageError
from patchline.repository.config import TOP_LEVEL_ROLES
from patchline.repository.publisher import Repository, Transaction
from patchline.repository.state import RepositoryState, archive_role
from patchline.repository.successors import successor_keyids
from patchline.wire.offline import (
    OFFLINE_FIELD,
    OFFLINE_ROLE,
    OfflineRoleMissing,
    offline_delegator,
    offline_keys,
)


@dataclass(frozen=True)
class Rotation:
    """What a rotation changed."""

    role: str
    retired: tuple[str, ...]
    added: tuple[str, ...]
    root_version: int


def rotate_key(repo: Repository, role: str, keyid: str | None = None) -> Rotation:
    """Replace one key of ``role`` (``keyid``, or every key of the role) with a new one.

    ``role`` ``offline`` is the offline-bundle role named in root (when root names one).
    Raises UsageError for an unknown role or a key id the role does not use,
    UnknownModelError for an unknown model role, and BundleError for ``offline`` when
    root names no offline role. On any error nothing is published.
    """
    if role == OFFLINE_ROLE and (
        OFFLINE_FIELD in repo.state().root.signed.unrecognized_fields
        or OFFLINE_ROLE not in repo.state().model_names()
    ):
        return _rotate_offline(repo, keyid)
    with repo.transaction() as tx:
        old = keys_to_replace(tx.state, role, keyid)
        # Open the keys that must sign the change before creating anything new.
        tx.require_signers(["root"] if role in TOP_LEVEL_ROLES else ["targets"])
        now = repo.clock.now()
        added: list[str] = []
        try:
            replace_keys(tx, role, old, added, now)
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


def keys_to_replace(state: RepositoryState, role: str, keyid: str | None = None) -> list[str]:
    """The key ids ``rotate_key(repo, role, keyid)`` replaces in ``state``: ``keyid``'s
    match, or every key of ``role`` but a named successor's.

    Raises UsageError for a key id the role does not use, UnknownModelError for an
    unknown model role. For the top-level and model roles (not ``offline``).
    """
    if role in TOP_LEVEL_ROLES:
        current = list(state.root.signed.roles[role].keyids)
    else:
        state.model(role)  # raises UnknownModelError
        current = list(state.delegated_role(role).keyids)
    if keyid is None:  # a named successor's root keys are not the maker's to replace
        current = [k for k in current if k not in successor_keyids(state.root.signed)]
    return _select(role, current, keyid)


def replace_keys(
    tx: Transaction, role: str, old: list[str], added: list[str], now: datetime
) -> None:
    """In ``tx``, replace each key id of ``old`` for ``role`` by a new key of ``tx``'s keyring.

    The id of every key made is appended to ``added`` as it is made, so a caller can
    retire them if the transaction is not committed.
    """
    repo = tx.repo
    # Who names the key: root for a top-level role; for a model, targets names the
    # model's key and the model's role names the same key for its archive.
    # The archive names it once more for all its bins (a succinct delegation: no name).
    delegators: list[tuple[Root | Targets, str | None]]
    resigned: list[str]
    if role in TOP_LEVEL_ROLES:
        delegators = [(tx.edit_root(), role)]
        resigned = [] if role == "root" else [role]
    else:
        delegators = [(tx.edit_targets(), role), (tx.edit_model(role), archive_role(role))]
        resigned = [role, archive_role(role)]
        bins = tx.state.archive_bins(role)
        if bins:
            delegators.append((tx.edit_archive(role), None))
            resigned += bins
    for retired in old:
        new_key = repo.keyring.create(role, now)
        added.append(new_key.keyid)
        for delegator, delegated in delegators:
            if isinstance(delegator, Root):
                assert delegated is not None
                delegator.revoke_key(retired, delegated)
                delegator.add_key(new_key, delegated)
            else:
                delegator.revoke_key(retired, delegated)
                delegator.add_key(new_key, delegated)
    for name in resigned:
        tx.resign(name)


def _rotate_offline(repo: Repository, keyid: str | None) -> Rotation:
    """Replace the offline role's key (``keyid``, or all of them) under a new root."""
    with repo.transaction() as tx:
        root = tx.state.root.signed
        if OFFLINE_FIELD not in root.unrecognized_fields:
            raise BundleError(
                "this repository has no offline key to rotate",
                hint="create one with: patchline bundle init-key",
            )
        try:
            keys = {key.keyid: key for key in offline_keys(root)}
            delegations = offline_delegator(root).delegations
            assert delegations is not None
            assert delegations.roles is not None
            threshold = delegations.roles[OFFLINE_ROLE].threshold
        except OfflineRoleMissing as exc:
            raise BundleError(f"cannot rotate the offline key: {exc}") from None
        old = _select(OFFLINE_ROLE, list(keys), keyid)
        tx.require_signers(["root"])
        now = repo.clock.now()
        added: list[str] = []
        try:
            for retired in old:
                new_key = repo.keyring.create(OFFLINE_ROLE, now)
                added.append(new_key.keyid)
                keys = {k: v for k, v in keys.items() if k != retired}
                keys[new_key.keyid] = new_key
            tx.edit_root().unrecognized_fields[OFFLINE_FIELD] = {
                "keys": {k: v.to_dict() for k, v in keys.items()},
                "keyids": list(keys),
                "threshold": threshold,
            }
            tx.commit()
        except BaseException:
            for keyid_added in added:
                repo.keyring.retire(keyid_added)
            raise
        still_used = _keyids_in_use(repo)
        for retired in old:
            if retired not in still_used:
                repo.keyring.retire(retired)
        return Rotation(OFFLINE_ROLE, tuple(old), tuple(added), tx.state.root.signed.version)


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
    for role in state.delegated_roles():
        used |= set(state.delegated_role(role).keyids)
    with contextlib.suppress(OfflineRoleMissing):  # the offline role is optional
        used |= {key.keyid for key in offline_keys(state.root.signed)}
    return used
