"""The JSON documents of hawkBit's DDI API, built from the director's decisions.

Action and software module ids are numbers derived from what they stand for (the
device and the release's target path), so every server process gives the same ids
without storing any: SWUpdate reads them as 32-bit integers, so they are 31 bits.
"""

from __future__ import annotations

import hashlib
from typing import Any

from patchline.policy.facts import ReleaseFacts

#: Image file names a DDI controller installs: SWUpdate images and RAUC bundles.
DDI_IMAGE_SUFFIXES = (".swu", ".raucb")


def _id31(text: str) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
    return value or 1


def action_id(device_id: str, target_path: str) -> int:
    """The DDI action id of installing ``target_path`` on ``device_id``."""
    return _id31(f"action\0{device_id}\0{target_path}")


def module_id(target_path: str) -> int:
    """The DDI software module id of a release's image."""
    return _id31(f"module\0{target_path}")


def is_ddi_image(target_path: str) -> bool:
    """Whether a DDI controller can install this image (a ``.swu`` or ``.raucb``)."""
    return target_path.endswith(DDI_IMAGE_SUFFIXES)


def filename_of(target_path: str) -> str:
    """The image's file name: the last part of its target path."""
    return target_path.rsplit("/", 1)[-1]


def polling_sleep(seconds: int) -> str:
    """``config.polling.sleep`` as hawkBit writes it: ``HH:MM:SS``."""
    hours, rest = divmod(max(seconds, 1), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def root_document(
    base: str,
    sleep_seconds: int,
    *,
    deployment: int | None,
    installed: int | None,
    cancel: int | None,
    ask_config: bool,
    reasons: list[str],
) -> dict[str, Any]:
    """The controller's root resource: when to poll again and what is open for it.

    ``patchline`` (ignored by hawkBit clients) says what the director decided and why.
    """
    links: dict[str, Any] = {}
    if cancel is not None:
        links["cancelAction"] = {"href": f"{base}/cancelAction/{cancel}"}
    elif deployment is not None:
        links["deploymentBase"] = {"href": f"{base}/deploymentBase/{deployment}"}
    if installed is not None:
        links["installedBase"] = {"href": f"{base}/installedBase/{installed}"}
    if ask_config:
        links["configData"] = {"href": f"{base}/configData"}
    return {
        "config": {"polling": {"sleep": polling_sleep(sleep_seconds)}},
        "_links": links,
        "patchline": {"reasons": reasons},
    }


def artifact_document(base: str, release: ReleaseFacts, sha1: str, md5: str) -> dict[str, Any]:
    """One artifact of a chunk: the image, its size, hashes and download links."""
    name = filename_of(release.target_path)
    href = f"{base}/softwaremodules/{module_id(release.target_path)}/artifacts/{name}"
    return {
        "filename": name,
        "hashes": {"sha1": sha1, "md5": md5, "sha256": release.sha256},
        "size": release.length,
        "_links": {
            "download": {"href": href},
            "download-http": {"href": href},
            "md5sum": {"href": f"{href}.MD5SUM"},
            "md5sum-http": {"href": f"{href}.MD5SUM"},
        },
    }


def deployment_document(
    action: int,
    release: ReleaseFacts,
    artifact: dict[str, Any],
    *,
    forced: bool,
    messages: list[str],
    history_status: str = "proceeding",
) -> dict[str, Any]:
    """``deploymentBase/{actionId}`` (or, with a finished history, ``installedBase``):
    one chunk holding the release's image, ``download`` and ``update`` forced for a
    security release and attempted otherwise."""
    how = "forced" if forced else "attempt"
    return {
        "id": str(action),
        "deployment": {
            "download": how,
            "update": how,
            "chunks": [
                {
                    "part": "os",
                    "version": release.build,
                    "name": release.model,
                    "artifacts": [artifact],
                }
            ],
        },
        "actionHistory": {"status": history_status, "messages": messages},
    }


def cancel_document(action: int) -> dict[str, Any]:
    """``cancelAction/{actionId}``: the action the server withdrew."""
    return {"id": str(action), "cancelAction": {"stopId": str(action)}}
