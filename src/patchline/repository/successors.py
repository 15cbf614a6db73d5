"""The named successors recorded in root: who may take over signing if the maker cannot.

Root carries ``x-patchline-successors``, signed with the rest of root::

    {"NAME": {"keyids": [KEYID, ...], "added": "2026-01-01T00:00:00Z",
              "took_over": "2026-06-01T00:00:00Z"}}   # took_over only after a handover

Every key id listed is also one of root's root-role keys; the field only says whose
they are. Devices ignore the field: what lets a successor sign is the root role itself.
"""

from __future__ import annotations

from typing import Any

from tuf.api.metadata import Root

SUCCESSORS_FIELD = "x-patchline-successors"
#: The keyring role of a successor's root keys (its passphrase: PATCHLINE_PASSPHRASE_SUCCESSOR).
SUCCESSOR_ROLE = "successor"


def successors(root: Root) -> dict[str, dict[str, Any]]:
    """Every successor named in ``root``, by name (empty when none is)."""
    field = root.unrecognized_fields.get(SUCCESSORS_FIELD, {})
    return dict(field) if isinstance(field, dict) else {}


def successor_keyids(root: Root) -> set[str]:
    """The root-role key ids that belong to a named successor rather than to the maker."""
    return {str(k) for entry in successors(root).values() for k in entry.get("keyids", [])}
