"""The device key: made once, kept private (0600), reused, and a damaged one is named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from patchline.agent.device import DeviceDir
from patchline.agent.device_key import KEY_FILE, device_key, load_device_key
from patchline.errors import DeviceSetupError
from patchline.wire.receipt import public_key_bytes


def test_the_key_is_made_once_private_and_then_reused(tmp_path: Path) -> None:
    device = DeviceDir(tmp_path / "phone")
    assert load_device_key(device) is None

    made = device_key(device)
    path = device.path / KEY_FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not list(device.path.glob(f".{KEY_FILE}.*"))  # no temporary file left
    again = device_key(device)
    assert public_key_bytes(again) == public_key_bytes(made)
    loaded = load_device_key(device)
    assert loaded is not None
    assert public_key_bytes(loaded) == public_key_bytes(made)


@pytest.mark.parametrize(
    "content",
    [
        b"not a key",
        # Another kind of key: X25519, in PKCS#8.
        b"-----BEGIN PRIVATE KEY-----\n"
        b"MC4CAQAwBQYDK2VuBCIEIGDqMIPfRbqGfQnPmJ7kqxQ6n0S2cCzLhV8m3HdqZLZD\n"
        b"-----END PRIVATE KEY-----\n",
    ],
)
def test_a_damaged_or_foreign_key_file_is_named_with_what_to_do(
    tmp_path: Path, content: bytes
) -> None:
    device = DeviceDir(tmp_path / "phone")
    device.path.mkdir()
    (device.path / KEY_FILE).write_bytes(content)
    with pytest.raises(DeviceSetupError) as refused:
        device_key(device)
    assert KEY_FILE in refused.value.message
    assert refused.value.hint is not None
    assert "enroll the device again" in refused.value.hint
