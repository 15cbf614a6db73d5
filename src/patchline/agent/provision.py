"""Making a new simulated device directory: identity, shipped roots, slot A."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

from patchline.agent.device import DeviceConfig, DeviceDir
from patchline.agent.state import AgentState, SlotContent, load_state, save_state
from patchline.errors import DeviceSetupError
from patchline.fsutil import write_atomic
from patchline.wire.device_api import Slot


def create_device(
    path: Path,
    config: DeviceConfig,
    *,
    shipped_root: bytes,
    image: Path,
    build: str,
    security_patch_level: date,
    director_root: bytes | None = None,
) -> DeviceDir:
    """Create a device at ``path`` running ``image`` (build, patch level) from slot A.

    Raises DeviceSetupError when ``path`` already holds a device or the image is missing.
    """
    device = DeviceDir(path)
    if device.config_file.exists():
        raise DeviceSetupError(f"{path} already holds a device")
    if not image.is_file():
        raise DeviceSetupError(f"image {image} not found")
    path.mkdir(parents=True, exist_ok=True)
    write_atomic(device.shipped_root, shipped_root)
    if director_root is not None:
        write_atomic(device.director_root, director_root)
    shutil.copyfile(image, device.slot_image(Slot.A))
    digest = hashlib.sha256()
    with device.slot_image(Slot.A).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    save_state(
        device,
        AgentState(
            active=Slot.A,
            slots={
                Slot.A.value: SlotContent(
                    build=build,
                    sha256=digest.hexdigest(),
                    security_patch_level=security_patch_level.isoformat(),
                )
            },
        ),
    )
    device.save_config(config)
    load_state(device)
    return device
