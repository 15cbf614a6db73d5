"""Private keys at rest: Ed25519 keys encrypted with a passphrase (scrypt + AES-256-GCM).

``EncryptedFileSigner`` plugs these files into securesystemslib's Signer interface under
the URI scheme ``patchline-key:PATH``. Anything that signs goes through
``Signer.from_priv_key_uri``, so a key can move to a KMS or an HSM (``gcpkms:``,
``awskms:``, ``hsm:`` ...) by changing its URI in the keyring and nothing else.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib import parse

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from securesystemslib.signer import (
    SIGNER_FOR_URI_SCHEME,
    CryptoSigner,
    Key,
    SecretsHandler,
    Signature,
    Signer,
    SSlibKey,
)

from patchline.errors import KeyError_, PassphraseError
from patchline.fsutil import write_atomic

FORMAT = "patchline.key/1"
SCHEME = "patchline-key"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(passphrase: str, salt: bytes, log2n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**log2n, r=8, p=1).derive(passphrase.encode())


def generate_key() -> tuple[SSlibKey, Ed25519PrivateKey]:
    """Make a new Ed25519 key pair; the public half carries its TUF key id."""
    private = Ed25519PrivateKey.generate()
    return SSlibKey.from_crypto(private.public_key()), private


def write_key_file(
    path: Path, keyid: str, private: Ed25519PrivateKey, passphrase: str, log2n: int
) -> None:
    """Encrypt ``private`` under ``passphrase`` and write it to ``path`` (mode 0600)."""
    if not passphrase:
        raise PassphraseError("an empty passphrase cannot protect a key")
    salt, nonce = os.urandom(16), os.urandom(12)
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ciphertext = AESGCM(_derive(passphrase, salt, log2n)).encrypt(nonce, der, keyid.encode())
    document = {
        "format": FORMAT,
        "keyid": keyid,
        "kdf": {"name": "scrypt", "log2n": log2n, "r": 8, "p": 1, "salt": _b64(salt)},
        "cipher": {"name": "aes-256-gcm", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    write_atomic(path, json.dumps(document, indent=1).encode(), mode=0o600)


def read_key_file(path: Path, passphrase: str) -> Ed25519PrivateKey:
    """Decrypt a key file; raise PassphraseError on a wrong passphrase."""
    try:
        document: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeyError_(f"private key file {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise KeyError_(f"private key file {path} cannot be read: {exc}") from None
    try:
        if document["format"] != FORMAT:
            raise KeyError_(f"{path} is not a Patchline key file")
        kdf, cipher = document["kdf"], document["cipher"]
        key = _derive(passphrase, base64.b64decode(kdf["salt"]), int(kdf["log2n"]))
        der = AESGCM(key).decrypt(
            base64.b64decode(cipher["nonce"]),
            base64.b64decode(document["ciphertext"]),
            str(document["keyid"]).encode(),
        )
    except InvalidTag:
        raise PassphraseError(
            f"the passphrase does not open key file {path.name}",
            hint="check PATCHLINE_PASSPHRASE (or the role's own variable) and try again",
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyError_(f"private key file {path} is malformed: {exc}") from None
    private = serialization.load_der_private_key(der, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyError_(f"{path} does not hold an Ed25519 key")
    return private


class EncryptedFileSigner(Signer):
    """A Signer for a passphrase-encrypted key file; URI ``patchline-key:/path/to/file``."""

    SCHEME = SCHEME

    def __init__(self, signer: CryptoSigner) -> None:
        self._signer = signer

    @property
    def public_key(self) -> Key:
        """The public key this signer signs for."""
        return self._signer.public_key

    def sign(self, payload: bytes) -> Signature:
        """Sign ``payload`` with the decrypted key."""
        return self._signer.sign(payload)

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> EncryptedFileSigner:
        """Open the key file named by the URI, asking ``secrets_handler`` for the passphrase."""
        uri = parse.urlparse(priv_key_uri)
        if uri.scheme != cls.SCHEME:
            raise ValueError(f"EncryptedFileSigner does not support {priv_key_uri}")
        if not isinstance(public_key, SSlibKey):
            raise ValueError(f"expected an SSlibKey for {priv_key_uri}")
        if secrets_handler is None:
            raise PassphraseError(f"no passphrase source given for {priv_key_uri}")
        private = read_key_file(Path(uri.path), secrets_handler("passphrase"))
        try:
            return cls(CryptoSigner(private, public_key))
        except Exception as exc:  # KeyMismatchError, ValueError: the file is for another key
            raise KeyError_(f"key file {uri.path} does not match key {public_key.keyid}") from exc


SIGNER_FOR_URI_SCHEME[SCHEME] = EncryptedFileSigner
