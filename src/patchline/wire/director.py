"""The director's per-device answer (Uptane pattern), as TUF targets metadata.

The director signs, for one device, TUF ``targets`` metadata whose top-level
``patchline`` field names the device and states the decision with its reasons; each
target it lists copies the length and hashes of the image repository's entry. The
device verifies it with the director root it shipped with, checks that it names this
device and has not expired, and installs only a target on which the director and the
image repository agree (Uptane "full verification"): its length and hashes, and what
it installs (``custom.release``: build, security patch level, update class and the
full image the target produces). Answers replayed to another device
are refused; so are answers older than one the device has already seen.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.api.serialization import SerializationError

from patchline.errors import PatchlineError

FIELD = "patchline"


class DirectorAnswerError(PatchlineError):
    """A director answer is malformed, unsigned, expired, stale or for another device."""


class Action(enum.StrEnum):
    """What the director tells the device to do."""

    INSTALL = "install"
    NONE = "none"


@dataclass(frozen=True)
class DirectorDecision:
    """A verified decision for this device."""

    device_id: str
    action: Action
    reasons: tuple[str, ...]
    version: int
    expires: datetime
    #: The target to install (image repository path), with the length and hashes the
    #: image repository must agree on; None when the action is NONE.
    target: TargetFile | None = None
    #: For a delta: the full image target the delta produces.
    full_target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: What the target installs, as the director states it (None when the answer
    #: does not say): the device checks it against the image repository's entry.
    release: OfferedRelease | None = None


@dataclass(frozen=True)
class OfferedImage:
    """A full image as the director names it: path, length and sha256."""

    path: str
    length: int
    sha256: str


@dataclass(frozen=True)
class OfferedRelease:
    """What an install answer installs: the build, its security patch level
    (YYYY-MM-DD) and update class, and the full image it produces (for a full-image
    install, the target itself)."""

    build: str
    security_patch_level: str
    update_class: str
    full: OfferedImage

    def to_json(self) -> dict[str, Any]:
        """The JSON form signed in the target's ``custom.release``."""
        return {
            "build": self.build,
            "security_patch_level": self.security_patch_level,
            "update_class": self.update_class,
            "full_image": {
                "path": self.full.path,
                "length": self.full.length,
                "sha256": self.full.sha256,
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> OfferedRelease:
        """Read ``to_json``'s form; raise DirectorAnswerError when it is malformed."""
        try:
            full = data["full_image"]
            values = (data["build"], data["security_patch_level"], data["update_class"])
            image = (full["path"], full["length"], full["sha256"])
        except (KeyError, TypeError):
            raise DirectorAnswerError(
                "the release named in the director answer is malformed"
            ) from None
        if not all(isinstance(v, str) for v in (*values, image[0], image[2])) or not (
            isinstance(image[1], int) and not isinstance(image[1], bool)
        ):
            raise DirectorAnswerError("the release named in the director answer is malformed")
        return cls(*values, OfferedImage(image[0], image[1], image[2]))


def sign_decision(
    signer: Signer,
    *,
    device_id: str,
    action: Action,
    reasons: list[str],
    version: int,
    expires: datetime,
    target: TargetFile | None = None,
    full_target: str | None = None,
    extra: dict[str, Any] | None = None,
    release: OfferedRelease | None = None,
) -> Metadata[Targets]:
    """Build and sign the director's targets metadata for one device; ``release``
    (what the target installs) is signed in the target's ``custom.release``."""
    targets: dict[str, TargetFile] = {}
    if target is not None:
        custom = dict(target.custom) if "custom" in target.unrecognized_fields else {}
        custom["device_id"] = device_id
        if release is not None:
            custom["release"] = release.to_json()
        targets[target.path] = TargetFile(
            target.length, dict(target.hashes), target.path, {"custom": custom}
        )
    body = {
        "device_id": device_id,
        "action": action.value,
        "reasons": list(reasons),
        "full_target": full_target,
        **(extra or {}),
    }
    md = Metadata(
        Targets(
            version=version,
            expires=expires,
            targets=targets,
            unrecognized_fields={FIELD: body},
        )
    )
    md.sign(signer)
    return md


def verify_decision(
    director_root: Root,
    data: bytes | dict[str, Any],
    *,
    device_id: str,
    now: datetime,
    last_version: int = 0,
) -> DirectorDecision:
    """Verify a director answer for ``device_id``; raise DirectorAnswerError if unsafe.

    Checks the signature threshold of the director root's ``targets`` role, expiry on
    the device clock ``now``, that the answer names this device (top level and target),
    and that its version is not below ``last_version`` (rollback).
    """
    try:
        md = (
            Metadata[Targets].from_bytes(data)
            if isinstance(data, bytes)
            else Metadata[Targets].from_dict(dict(data))
        )
    except Exception as exc:
        raise DirectorAnswerError(f"director answer is malformed: {exc}") from None
    if not isinstance(md.signed, Targets):
        raise DirectorAnswerError("director answer is not targets metadata")
    try:
        signed_bytes = md.signed_bytes
    except SerializationError:  # e.g. a float: not canonical JSON, so signed by no one
        raise DirectorAnswerError("director answer is malformed: not canonical JSON") from None
    try:
        director_root.verify_delegate("targets", signed_bytes, md.signatures)
    except UnsignedMetadataError:
        raise DirectorAnswerError(
            "director answer is not signed by the director's key",
            hint="the server may be an impostor, or the device's director root is outdated",
        ) from None
    signed = md.signed
    body = signed.unrecognized_fields.get(FIELD)
    if not isinstance(body, dict):
        raise DirectorAnswerError("director answer carries no decision")
    named = body.get("device_id")
    if named != device_id:
        raise DirectorAnswerError(
            f"director answer names device {named!r}, not this device ({device_id})",
            hint="an answer meant for another device was replayed; try again later",
        )
    if signed.is_expired(now):
        raise DirectorAnswerError(
            f"director answer expired at {signed.expires:%Y-%m-%d %H:%M} UTC "
            f"(device clock {now:%Y-%m-%d %H:%M} UTC)",
            hint="check the device clock; then check in again",
        )
    if signed.version < last_version:
        raise DirectorAnswerError(
            f"director answer version {signed.version} is older than {last_version}, "
            "already seen (rollback)"
        )
    try:
        action = Action(str(body.get("action")))
    except ValueError:
        raise DirectorAnswerError(f"unknown director action {body.get('action')!r}") from None
    target = None
    release = None
    if action is Action.INSTALL:
        if len(signed.targets) != 1:
            raise DirectorAnswerError("an install answer must name exactly one target")
        target = next(iter(signed.targets.values()))
        custom = target.unrecognized_fields.get("custom")
        if not isinstance(custom, dict):
            raise DirectorAnswerError("the target in the director answer carries no custom fields")
        if custom.get("device_id") != device_id:
            raise DirectorAnswerError("the target in the director answer names another device")
        if "release" in custom:
            release = OfferedRelease.from_json(custom["release"])
    reasons = body.get("reasons")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise DirectorAnswerError("director answer reasons are malformed")
    full_target = body.get("full_target")
    extra = {
        k: v for k, v in body.items() if k not in {"device_id", "action", "reasons", "full_target"}
    }
    return DirectorDecision(
        device_id=device_id,
        action=action,
        reasons=tuple(reasons),
        version=signed.version,
        expires=signed.expires,
        target=target,
        full_target=full_target if isinstance(full_target, str) else None,
        extra=extra,
        release=release,
    )


def agrees_with_image(director: TargetFile, image: TargetFile) -> bool:
    """True when the director's target and the image repository's have the same path,
    length and hashes (every hash the director names must match)."""
    if director.path != image.path or director.length != image.length:
        return False
    return all(image.hashes.get(name) == value for name, value in director.hashes.items()) and bool(
        director.hashes
    )
