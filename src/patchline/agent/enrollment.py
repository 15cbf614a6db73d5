"""Enrolling a device with the server: once, with the fleet's enrollment token.

The request carries the public half of the device's Ed25519 key
(``patchline.agent.device_key``, made here when the device has none), which the server
keeps to verify the device's install receipts.
"""

from __future__ import annotations

import msgspec
import urllib3

from patchline.agent.device import DeviceDir
from patchline.agent.device_key import device_key
from patchline.agent.state import load_state
from patchline.errors import DeviceSetupError
from patchline.transport.device_api_client import DeviceApiClient
from patchline.wire.device_api import EnrollRequest
from patchline.wire.receipt import public_key_hex


def enroll(
    device: DeviceDir,
    pool: urllib3.PoolManager,
    *,
    token: str,
    serial: str,
    hardware_id: str,
    carrier: str = "",
) -> str:
    """Enroll ``device`` with its configured server; keep and return its device id.

    The device key is made first if the device has none, and its public half sent.

    Raises DeviceSetupError when the device lacks a server, region or deployment date,
    or the server refuses (wrong token, serial enrolled with other hardware), and
    SourceUnreachableError when the server cannot be reached.
    """
    with device.locked():
        config = device.load_config()
        if not config.server_url:
            raise DeviceSetupError("the device has no server to enroll with")
        if not config.region or not config.deployed_on:
            raise DeviceSetupError("enrollment needs the device's region and deployment date")
        running = load_state(device).running
        key = device_key(device)
        body = EnrollRequest(
            model=config.model,
            serial=serial,
            hardware_id=hardware_id,
            region=config.region,
            deployed_on=config.deployed_on,
            build=running.build,
            security_patch_level=running.security_patch_level,
            carrier=carrier,
            public_key=public_key_hex(key),
        )
        answer = DeviceApiClient(pool, config.server_url).enroll(token, body)
        device.save_config(
            msgspec.structs.replace(
                config, device_id=answer.device_id, credential=answer.credential
            )
        )
        return answer.device_id
