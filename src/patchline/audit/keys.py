"""The key that signs audit exports: an ``audit`` key in the repository's keyring.

The keyring holds where each private key is; an audit key's public half is kept next
to it in ``KEYS_DIR/<keyid>.pub.json``, because no TUF metadata names it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from securesystemslib.signer import Signer, SSlibKey

from patchline.errors import KeyError_
from patchline.fsutil import write_atomic
from patchline.repository.keyring import Keyring

AUDIT_ROLE = "audit"


def _public_file(keys_dir: Path, keyid: str) -> Path:
    return keys_dir / f"{keyid}.pub.json"


def audit_signer(keyring: Keyring, now: datetime) -> Signer:
    """A signer for the newest audit key; the key is made (encrypted) on first use.

    The passphrase comes from the keyring's PassphraseSource (PATCHLINE_PASSPHRASE_AUDIT,
    PATCHLINE_PASSPHRASE, or a prompt). Raises KeyError_ when the public half is missing.
    """
    entries = [e for e in keyring.entries() if e.role == AUDIT_ROLE]
    if not entries:
        public = keyring.create(AUDIT_ROLE, now)
        document = {"keyid": public.keyid, **public.to_dict()}
        write_atomic(
            _public_file(keyring.keys_dir, public.keyid), json.dumps(document, indent=1).encode()
        )
        return keyring.signer(public)
    newest = max(entries, key=lambda e: e.created)
    path = _public_file(keyring.keys_dir, newest.keyid)
    try:
        document = json.loads(path.read_bytes())
        keyid = document.pop("keyid")
        public = SSlibKey.from_dict(keyid, document)
    except FileNotFoundError:
        raise KeyError_(
            f"the public half of audit key {newest.keyid[:12]} ({path.name}) is missing",
            hint=f"restore {path} from a backup of the keys folder",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyError_(f"the audit public key file {path} is malformed: {exc}") from None
    if public.keyid != newest.keyid:
        raise KeyError_(f"the audit public key file {path} holds key {public.keyid[:12]}")
    return keyring.signer(public)
