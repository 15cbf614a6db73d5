"""The device's own Ed25519 key, which signs its install receipts.

Made at enrollment when the device has none (a device enrolled before receipts were
signed gets one at its next enrollment, or when it first keeps a receipt), kept in
``DEVICE/device_key.pem`` (PKCS#8, mode 0600, written atomically) and never sent
anywhere: enrollment sends only its public half. Re-enrolling keeps the key, so
receipts kept but not yet sent still verify; a factory reset that wipes the device
directory makes a new one, and the server then holds the new public key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from patchline.agent.device import DeviceDir
from patchline.errors import DeviceSetupError
from patchline.fsutil import write_atomic

KEY_FILE = "device_key.pem"


def load_device_key(device: DeviceDir) -> Ed25519PrivateKey | None:
    """The device's key, or None when it has none yet.

    Raises DeviceSetupError when the key file is unreadable or not an Ed25519 key.
    """
    path = device.path / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeviceSetupError(f"cannot read the device key {path}: {exc}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise DeviceSetupError(
            f"the device key {path} is damaged: {exc}",
            hint="remove it and enroll the device again (a new key is made then)",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DeviceSetupError(
            f"the device key {path} is not an Ed25519 key",
            hint="remove it and enroll the device again (a new key is made then)",
        )
    return key


def device_key(device: DeviceDir) -> Ed25519PrivateKey:
    """The device's key, made and kept (0600, atomically) when it has none yet."""
    key = load_device_key(device)
    if key is None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_atomic(device.path / KEY_FILE, pem, mode=0o600)
    return key
