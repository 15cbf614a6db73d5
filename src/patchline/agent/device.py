"""A simulated device's directory: identity, trusted roots, sources, slots, state.

Layout::

    device.json            identity and configuration (DeviceConfig)
    trust/root.json        the image repository root the device shipped with
    trust/director.json    the director root (only when the device has a director)
    slot_a.img, slot_b.img the two A/B slot images
    state.json             boot state and install progress (written atomically)
    metadata/              TUF metadata cache, shared by every source
    outbox/                reports waiting to be sent, one file each
    receipts/              signed receipts of offline installs, until the server has them
    device_key.pem         the device's own Ed25519 key (0600), made at enrollment
    agent.lock             held by the one agent process working on the device
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import msgspec

from patchline.errors import DeviceBusyError, DeviceSetupError
from patchline.fsutil import exclusive_lock, write_atomic
from patchline.wire.device_api import Slot


class Limits(msgspec.Struct, forbid_unknown_fields=True):
    """How long a download may take and how slow it may be (slow-retrieval defence)."""

    deadline_seconds: float = 3600.0
    min_bytes_per_second: int = 16 * 1024
    #: Throughput is judged only after this many seconds, so a slow start is forgiven.
    grace_seconds: float = 5.0
    connect_timeout_seconds: float = 5.0


class HealthCheck(msgspec.Struct, forbid_unknown_fields=True):
    """What "booted healthy" means: a marker the image must hold, and/or a command that
    must exit 0 (run with the booted slot image's path as its last argument)."""

    marker: str = ""
    command: list[str] = msgspec.field(default_factory=list)
    timeout_seconds: float = 60.0


class BootSetup(msgspec.Struct, forbid_unknown_fields=True):
    """A device that boots for real: its slots are GPT partitions of ``disk`` and a real
    bootloader counts the tries of a new slot (docs/agent-boot.md)."""

    #: "systemd-boot", "grub" or "u-boot".
    bootloader: str
    #: The whole disk holding the slot partitions (/dev/mmcblk0), or a disk image file.
    disk: str
    #: The GPT partition label of each slot.
    slot_labels: dict[str, str] = msgspec.field(
        default_factory=lambda: {"a": "patchline-a", "b": "patchline-b"}
    )
    #: The ESP: a mounted directory, or "partlabel:<label>" for a partition of ``disk``
    #: reached with mtools (servicing a disk image).
    esp: str = "/boot/efi"
    #: Kernel command line options of the systemd-boot entries the agent writes.
    kernel_options: str = ""
    #: Where GRUB's environment block is on the ESP.
    grubenv: str = "/EFI/patchline/grubenv"
    #: libubootenv's configuration (where U-Boot's environment is).
    fw_env_config: str = "/etc/fw_env.config"
    #: The kernel command line naming the booted slot (patchline.slot= or
    #: root=PARTLABEL=).
    cmdline: str = "/proc/cmdline"


class DeviceConfig(msgspec.Struct, forbid_unknown_fields=True):
    """A device's identity and where it looks for updates."""

    model: str
    device_id: str = ""
    credential: str = ""  # "<device_id>.<secret>" once enrolled
    region: str | None = None
    deployed_on: str | None = None  # YYYY-MM-DD
    server_url: str = ""  # the director (device API); empty: no server
    server_repository_url: str = ""  # the image repository the server publishes, if any
    bundles: list[str] = msgspec.field(default_factory=list)  # SD card / USB folders
    mirrors: list[str] = msgspec.field(default_factory=list)  # image repository base URLs
    limits: Limits = msgspec.field(default_factory=Limits)
    health: HealthCheck = msgspec.field(default_factory=HealthCheck)
    boot_attempts: int = 1
    #: Update classes the user accepts (security updates are on by default, and so are
    #: the others; a user may turn functional updates off).
    accept_classes: list[str] = msgspec.field(
        default_factory=lambda: ["security", "corrective", "functional"]
    )
    network: str = "wifi"
    battery_percent: int = 100
    #: None: a simulated device (slot files, simulated reboot).
    boot: BootSetup | None = None


@dataclass(frozen=True)
class DeviceDir:
    """The paths of one device directory."""

    path: Path

    @property
    def config_file(self) -> Path:
        """Identity and configuration."""
        return self.path / "device.json"

    @property
    def shipped_root(self) -> Path:
        """The image repository root the device shipped with."""
        return self.path / "trust" / "root.json"

    @property
    def director_root(self) -> Path:
        """The director's root, when the device has one."""
        return self.path / "trust" / "director.json"

    @property
    def state_file(self) -> Path:
        """Boot state and install progress."""
        return self.path / "state.json"

    @property
    def metadata_dir(self) -> Path:
        """The TUF metadata cache."""
        return self.path / "metadata"

    @property
    def outbox(self) -> Path:
        """Reports not yet acknowledged by the server."""
        return self.path / "outbox"

    def slot_image(self, slot: Slot) -> Path:
        """The image file of ``slot``."""
        return self.path / f"slot_{slot.value}.img"

    def staging_file(self, slot: Slot) -> Path:
        """Where an update for ``slot`` is downloaded before it replaces the slot image."""
        return self.path / f"slot_{slot.value}.img.part"

    def load_config(self) -> DeviceConfig:
        """Read device.json; raise DeviceSetupError if it is missing or malformed."""
        try:
            return msgspec.json.decode(self.config_file.read_bytes(), type=DeviceConfig)
        except FileNotFoundError:
            raise DeviceSetupError(
                f"{self.path} is not a device directory (no device.json)",
                hint="create one with `patchline agent init`",
            ) from None
        except msgspec.ValidationError as exc:
            raise DeviceSetupError(f"{self.config_file} is malformed: {exc}") from None

    def save_config(self, config: DeviceConfig) -> None:
        """Write device.json atomically."""
        write_atomic(self.config_file, msgspec.json.format(msgspec.json.encode(config)) + b"\n")

    def read_shipped_root(self) -> bytes:
        """The shipped image repository root; DeviceSetupError when absent."""
        try:
            return self.shipped_root.read_bytes()
        except FileNotFoundError:
            raise DeviceSetupError(
                f"{self.shipped_root} is missing: the device has no trusted root",
                hint="reinstall the device with the root.json it shipped with",
            ) from None

    def locked(self) -> AbstractContextManager[None]:
        """Hold the device lock (one agent at a time); DeviceBusyError if it is taken."""
        return exclusive_lock(
            self.path / "agent.lock",
            lambda: DeviceBusyError(
                f"another agent is working on {self.path}",
                hint="wait for it to finish, then try again",
            ),
        )
