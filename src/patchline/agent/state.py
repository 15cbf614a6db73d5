"""The device's boot state and install progress, kept in one file written atomically.

A reader after kill -9 sees the previous state or the new one, never a mix: every
step that must survive a crash is one ``save_state`` call.
"""

from __future__ import annotations

import msgspec

from patchline.agent.device import DeviceDir
from patchline.errors import DeviceSetupError
from patchline.fsutil import write_atomic
from patchline.wire.device_api import Slot


class SlotContent(msgspec.Struct, forbid_unknown_fields=True):
    """What one slot holds."""

    build: str
    sha256: str
    security_patch_level: str  # YYYY-MM-DD
    target: str = ""


class PendingDownload(msgspec.Struct, forbid_unknown_fields=True):
    """A download in progress into the inactive slot's staging file."""

    target: str
    sha256: str
    length: int
    source: str


class TrialBoot(msgspec.Struct, forbid_unknown_fields=True):
    """A new build installed in the inactive slot, to be tried on the next boot."""

    slot: Slot
    attempts_left: int
    source: str = ""
    delta: bool = False


class BootReport(msgspec.Struct, forbid_unknown_fields=True):
    """How a trial boot ended, saved with the commit or rollback it describes and kept
    until its report is queued: a power cut between the two loses no report."""

    report_id: str
    #: "committed" or "rolled-back".
    result: str
    build: str
    tried_build: str
    reason: str = ""
    boot_failed: bool = False
    source: str = ""
    delta: bool = False


class ServerBackoff(msgspec.Struct, forbid_unknown_fields=True):
    """The server said "not now": the device does not ask it again before ``not_before``
    (``patchline.transport.backoff``); the next answer from it clears this."""

    #: ISO 8601 UTC instant before which the server is not asked.
    not_before: str
    #: Server errors in a row, the last one included.
    failures: int
    #: What the server answered, for the run's output.
    reason: str


class AgentState(msgspec.Struct, forbid_unknown_fields=True):
    """Everything the agent must remember across reboots and crashes."""

    active: Slot
    slots: dict[str, SlotContent]
    trial: TrialBoot | None = None
    pending: PendingDownload | None = None
    last_director_version: int = 0
    last_mirrors: list[str] = msgspec.field(default_factory=list)
    #: Builds that failed their health check here: never tried again.
    refused_builds: list[str] = msgspec.field(default_factory=list)
    #: The end of a trial boot whose report is not queued yet.
    unreported_boot: BootReport | None = None
    #: The server asked the device to wait (503/429, server errors): when to ask again.
    server_backoff: ServerBackoff | None = None

    @property
    def inactive(self) -> Slot:
        """The slot not running now."""
        return Slot.B if self.active is Slot.A else Slot.A

    @property
    def running(self) -> SlotContent:
        """What the active slot holds."""
        return self.slots[self.active.value]


def load_state(device: DeviceDir) -> AgentState:
    """Read state.json; DeviceSetupError when missing or malformed."""
    try:
        return msgspec.json.decode(device.state_file.read_bytes(), type=AgentState)
    except FileNotFoundError:
        raise DeviceSetupError(
            f"{device.path} has no state.json",
            hint="create the device with `patchline agent init`",
        ) from None
    except msgspec.ValidationError as exc:
        raise DeviceSetupError(f"{device.state_file} is malformed: {exc}") from None


def save_state(device: DeviceDir, state: AgentState) -> None:
    """Replace state.json atomically and durably."""
    write_atomic(device.state_file, msgspec.json.encode(state))
