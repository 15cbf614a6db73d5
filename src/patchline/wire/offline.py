"""The offline-bundle role and a bundle's file names, shared by the exporter and the agent.

The offline role (Uptane PURE-2 style) is named in the image repository's root, in the
signed custom field ``x-patchline-offline``::

    "x-patchline-offline": {"keys": {KEYID: KEY}, "keyids": [KEYID], "threshold": 1}

Root signs it, so it is trusted exactly as far as the root chain is, and a new root
version replaces or revokes it. Its key signs two files for one bundle: the offline
snapshot (which pins the exact image repository metadata the bundle carries, and the
offline targets) and the offline targets (the image and deltas that may be installed
from the bundle, each agreeing with the image repository's signed entry).

A bundle folder::

    metadata/N.root.json            every root version
    metadata/V.targets.json         the image repository's targets ...
    metadata/V.MODEL.json           ... and the model's roles that sign the release
    metadata/offline-snapshot.json  signed by the offline key
    metadata/offline-targets.json   signed by the offline key
    targets/MODEL/BUILD/SHA256.FILE the image and its deltas
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from securesystemslib.signer import Key
from tuf.api.metadata import DelegatedRole, Delegations, Metadata, Root, Targets

OFFLINE_FIELD = "x-patchline-offline"
BUNDLE_FIELD = "x-patchline-bundle"
OFFLINE_ROLE = "offline"
OFFLINE_SNAPSHOT = "offline-snapshot.json"
OFFLINE_TARGETS = "offline-targets.json"


class OfflineRoleMissing(ValueError):
    """The root names no offline role (or names a malformed one)."""


def offline_field(key: Key, threshold: int = 1) -> dict[str, Any]:
    """The root's custom field naming ``key`` as the offline role's key."""
    return {"keys": {key.keyid: key.to_dict()}, "keyids": [key.keyid], "threshold": threshold}


def offline_delegator(root: Root) -> Targets:
    """A throwaway Targets delegating ``offline`` to the keys root names, so that
    python-tuf's own threshold verification checks offline signatures.

    Raises OfflineRoleMissing when root names no usable offline role.
    """
    raw = root.unrecognized_fields.get(OFFLINE_FIELD)
    if not isinstance(raw, Mapping):
        raise OfflineRoleMissing("the root names no offline role")
    try:
        keys = {keyid: Key.from_dict(keyid, dict(value)) for keyid, value in raw["keys"].items()}
        role = DelegatedRole(
            name=OFFLINE_ROLE,
            keyids=[str(k) for k in raw["keyids"]],
            threshold=int(raw["threshold"]),
            terminating=True,
            paths=["*"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise OfflineRoleMissing(f"the root's offline role is malformed: {exc}") from None
    return Targets(delegations=Delegations(keys=keys, roles={OFFLINE_ROLE: role}))


def offline_keys(root: Root) -> list[Key]:
    """The offline role's public keys, as named in ``root``."""
    delegations = offline_delegator(root).delegations
    assert delegations is not None
    assert delegations.roles is not None
    return [delegations.keys[k] for k in delegations.roles[OFFLINE_ROLE].keyids]


def verify_offline(root: Root, md: Metadata[Any]) -> None:
    """Raise python-tuf's UnsignedMetadataError unless ``md`` carries a threshold of
    offline signatures; OfflineRoleMissing when root names no offline role."""
    offline_delegator(root).verify_delegate(OFFLINE_ROLE, md.signed_bytes, md.signatures)
