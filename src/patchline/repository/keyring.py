"""The keyring: which private key (by TUF key id) lives where, and for which role.

``KEYS_DIR/keyring.json`` maps each key id to a role and a securesystemslib private-key
URI. Keys made here are ``patchline-key:FILE`` (a passphrase-encrypted file in the
same folder); an operator may point a key at a KMS or an HSM instead by editing its
URI, and nothing else changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key, Signer, SSlibKey

from patchline.errors import KeyError_, PassphraseError
from patchline.fsutil import write_atomic
from patchline.repository import keyfile
from patchline.repository.passphrases import PassphraseSource

FORMAT = "patchline.keyring/1"


@dataclass(frozen=True)
class KeyEntry:
    """Where one private key is, and which role it signs for."""

    keyid: str
    role: str
    uri: str
    created: str


class Keyring:
    """The private keys of one repository, loaded lazily and at most once per process."""

    def __init__(self, keys_dir: Path, passphrases: PassphraseSource, kdf_log2n: int) -> None:
        self.keys_dir = keys_dir
        self._passphrases = passphrases
        self._kdf_log2n = kdf_log2n
        self._entries = self._load()
        self._signers: dict[str, Signer] = {}

    def elsewhere(self, keys_dir: Path) -> Keyring:
        """A keyring in another folder, with the same passphrases and key-derivation cost."""
        return Keyring(keys_dir, self._passphrases, self._kdf_log2n)

    @property
    def _file(self) -> Path:
        return self.keys_dir / "keyring.json"

    def _load(self) -> dict[str, KeyEntry]:
        try:
            data: dict[str, Any] = json.loads(self._file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyError_(f"keyring {self._file} cannot be read: {exc}") from None
        if data.get("format") != FORMAT:
            raise KeyError_(f"{self._file} is not a Patchline keyring")
        return {
            keyid: KeyEntry(keyid, str(e["role"]), str(e["uri"]), str(e["created"]))
            for keyid, e in data["keys"].items()
        }

    def _save(self) -> None:
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "format": FORMAT,
            "keys": {
                e.keyid: {"role": e.role, "uri": e.uri, "created": e.created}
                for e in sorted(self._entries.values(), key=lambda e: (e.role, e.created))
            },
        }
        write_atomic(self._file, json.dumps(document, indent=1).encode(), mode=0o600)

    def entries(self) -> list[KeyEntry]:
        """Every key the keyring knows, in a stable order."""
        return sorted(self._entries.values(), key=lambda e: (e.role, e.created, e.keyid))

    def has(self, keyid: str) -> bool:
        """True when the private key for ``keyid`` is reachable from here.

        A key file that is not present (its medium is offline) does not count.
        """
        entry = self._entries.get(keyid)
        if entry is None:
            return False
        scheme, _, path = entry.uri.partition(":")
        return scheme != keyfile.SCHEME or (self.keys_dir / path).is_file()

    def create(self, role: str, now: datetime) -> SSlibKey:
        """Make a new key for ``role``, store it encrypted, and return its public half."""
        passphrase = self._passphrases.for_role(role, new=True)
        public, private = keyfile.generate_key()
        filename = f"{public.keyid}.key"
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keyfile.write_key_file(
            self.keys_dir / filename, public.keyid, private, passphrase, self._kdf_log2n
        )
        self._entries[public.keyid] = KeyEntry(
            public.keyid, role, f"{keyfile.SCHEME}:{filename}", now.isoformat()
        )
        self._save()
        return public

    def retire(self, keyid: str) -> None:
        """Forget a key and destroy its file (it must no longer be trusted anywhere)."""
        entry = self._entries.pop(keyid, None)
        if entry is None:
            return
        self._signers.pop(keyid, None)
        self._save()
        scheme, _, path = entry.uri.partition(":")
        if scheme == keyfile.SCHEME:
            (self.keys_dir / path).unlink(missing_ok=True)

    def signer(self, public_key: Key) -> Signer:
        """Return a signer for ``public_key``; raise KeyError_ when the key is not here."""
        keyid = public_key.keyid
        if keyid in self._signers:
            return self._signers[keyid]
        entry = self._entries.get(keyid)
        if entry is None:
            raise KeyError_(f"no private key for key {keyid[:12]} in {self.keys_dir}")
        uri = entry.uri
        scheme, _, path = uri.partition(":")
        if scheme == keyfile.SCHEME and not Path(path).is_absolute():
            uri = f"{scheme}:{self.keys_dir / path}"
        try:
            signer = Signer.from_priv_key_uri(
                uri, public_key, self._passphrases.handler(entry.role)
            )
        except (KeyError_, PassphraseError):
            raise
        except Exception as exc:
            raise KeyError_(f"cannot open the {entry.role} key {keyid[:12]}: {exc}") from exc
        self._signers[keyid] = signer
        return signer
