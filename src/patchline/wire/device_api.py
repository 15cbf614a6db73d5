"""Bodies of the device API (``/v1``), shared by the server and the device agent.

msgspec Structs: decoding validates types and rejects unknown shapes in one fast pass,
which keeps the server's device hot path cheap. Field names are the JSON names.

Endpoints::

    POST /v1/enroll    EnrollRequest -> EnrollResponse  (Bearer <enrollment token>)
    POST /v1/check-in  CheckIn       -> CheckInAnswer   (Bearer <device credential>)
    POST /v1/reports   ReportBatch   -> ReportAck       (Bearer <device credential>)
    POST /v1/receipts  ReceiptBatch  -> ReceiptAck      (Bearer <device credential>;
                                                         patchline.wire.receipt)

A device credential is ``<device_id>.<secret>``; the server keeps only a hash of it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
IsoDate = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Region = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,15}$")]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
LongText = Annotated[str, msgspec.Meta(max_length=4096)]
Uuid = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
#: An Ed25519 public key: its raw 32 bytes as lowercase hex.
PublicKeyHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]

#: Largest body the server reads on the device API.
MAX_BODY_BYTES = 64 * 1024


class Slot(enum.StrEnum):
    """An A/B slot."""

    A = "a"
    B = "b"


class Network(enum.StrEnum):
    """The kind of link the device is on now."""

    WIFI = "wifi"
    ETHERNET = "ethernet"
    CELLULAR = "cellular"
    METERED = "metered"
    OFFLINE = "offline"


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True):
    """What a device says about itself once, at first boot."""

    model: Name
    serial: ShortText
    hardware_id: ShortText
    region: Region
    deployed_on: IsoDate
    build: Name
    security_patch_level: IsoDate
    carrier: ShortText = ""
    #: The device's Ed25519 public key, which signs its install receipts
    #: (``patchline.wire.receipt``); None from an agent that has no key.
    public_key: PublicKeyHex | None = None


class EnrollResponse(msgspec.Struct):
    """The identity the device keeps: its id and a secret credential."""

    device_id: str
    credential: str


class SlotState(msgspec.Struct, forbid_unknown_fields=True):
    """Which slot booted, and what the other slot holds."""

    active: Slot
    inactive_build: Name | None = None
    last_boot_ok: bool = True


class CheckIn(msgspec.Struct, forbid_unknown_fields=True):
    """A device's periodic poll: what it runs and what it could take."""

    build: Name
    build_sha256: Sha256
    security_patch_level: IsoDate
    slot: SlotState
    free_bytes: Annotated[int, msgspec.Meta(ge=0)]
    battery_percent: Annotated[int, msgspec.Meta(ge=0, le=100)]
    network: Network
    region: Region | None = None


class CheckInAnswer(msgspec.Struct):
    """The director's signed decision and where to fetch bytes from.

    ``director`` is TUF targets metadata (JSON object) signed by the director's key,
    naming this device: see ``patchline.wire.director``. ``mirrors`` are base URLs of
    image repositories (each serving ``metadata/`` and ``targets/``), tried in order.
    """

    director: dict[str, Any]
    mirrors: list[str]
    poll_after_seconds: int


class ReportStatus(enum.StrEnum):
    """Steps of an install, as update_engine reports them."""

    DOWNLOADING = "downloading"
    INSTALLED = "installed"  # written to the inactive slot, waiting for reboot
    BOOTED_HEALTHY = "booted-healthy"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"


class ReportCode(enum.StrEnum):
    """Why an install failed or rolled back; mirrors update_engine's error codes."""

    NONE = "none"
    NO_SOURCE = "no-source"  # no source reachable
    DOWNLOAD_ERROR = "download-error"
    HASH_MISMATCH = "hash-mismatch"
    METADATA_ERROR = "metadata-error"  # signature, expiry, rollback of metadata
    NOT_ELIGIBLE = "not-eligible"
    DOWNGRADE = "downgrade"
    SOURCE_CHANGED = "source-changed"  # a delta does not fit the running build
    NOT_ENOUGH_SPACE = "not-enough-space"
    HEALTH_CHECK_FAILED = "health-check-failed"
    BOOT_FAILED = "boot-failed"
    DEVICE_CORRUPTED = "device-corrupted"
    INSTALL_FAILED = "install-failed"  # the installer refused or failed to write the image


class Report(msgspec.Struct, forbid_unknown_fields=True):
    """One step of one install; ``report_id`` makes sending it twice harmless."""

    report_id: Uuid
    target: ShortText
    build: Name
    status: ReportStatus
    at: ShortText  # ISO 8601 instant on the device clock
    code: ReportCode = ReportCode.NONE
    detail: LongText = ""
    source: ShortText = ""  # where the bytes came from: server, mirror URL, bundle path
    delta: bool = False


class ReportBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Reports queued on the device, sent together (at most 100)."""

    reports: Annotated[list[Report], msgspec.Meta(min_length=1, max_length=100)]


class ReportAck(msgspec.Struct):
    """The report ids now durable on the server (new or already known)."""

    accepted: list[str]
