"""hawkBit's Direct Device Integration API (``/{tenant}/controller/v1/{controllerId}``).

For devices that run SWUpdate or RAUC and speak hawkBit. Nothing here decides or
records on its own: a poll is a check-in (the director's decision for the device, its
reasons and rules recorded in the audit chain when it changes), the deployment is that
decision's release, and feedback is an install report through the same writer, so it
is reconciled, audited and counted by rollout brakes like any other.

A controller is a device enrolled with ``patchline device enroll-ddi``: its
controllerId is its device id and its target token its credential. The running build
is the one the server records (enrollment, then each successful install), as hawkBit's
protocol carries none; a controller is taken to be on mains power and a wired link with
room to spare, as the protocol says nothing of either.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from patchline.bounded_cache import BoundedCache
from patchline.fleet.beliefs import failure_of, failure_sentence
from patchline.fleet.ddi_controllers import CONTROLLER_ID, cancel_install, record_attributes
from patchline.fleet.reconcile import IN_FLIGHT
from patchline.policy.decide import Action as DecisionAction
from patchline.policy.decide import Decision
from patchline.policy.facts import ReleaseFacts
from patchline.repository.layout import RepositoryLayout
from patchline.server.asgi_io import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_bytes,
    send_error,
)
from patchline.server.ddi_shapes import (
    action_id,
    artifact_document,
    cancel_document,
    deployment_document,
    filename_of,
    is_ddi_image,
    module_id,
    root_document,
)
from patchline.server.devices_cache import DeviceEntry
from patchline.server.outage_log import OutageLog
from patchline.server.writer import CheckInWrite, DecisionChange, ReportWrite, Waiter
from patchline.store.models import Device
from patchline.wire.ddi import (
    MAX_DDI_BODY_BYTES,
    ConfigData,
    Execution,
    Feedback,
    Finished,
)
from patchline.wire.device_api import Report, ReportCode, ReportStatus
from patchline.wire.release import UpdateClass

if TYPE_CHECKING:
    from patchline.server.runtime import Runtime

log = logging.getLogger(__name__)

_FEEDBACK = msgspec.json.Decoder(Feedback)
_CONFIG = msgspec.json.Decoder(ConfigData)
_ENCODER = msgspec.json.Encoder()
_REGION = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,15}$")
_REPORTS = uuid.UUID("6b0f5b52-3f0e-4a43-9d7c-2b8f1c4f7e11")
_CHUNK = 256 * 1024
_NOT_FOUND = "no such controller, or wrong token"
_ANY_SPACE = 2**62


@dataclass
class ControllerRow:
    """What a poll reads of the device row: what it runs and what it was assigned."""

    build: str
    build_sha256: str
    security_patch_level: date
    assigned_target: str | None
    install_state: str | None
    attributes: dict[str, str] | None


class DdiApi:
    """ASGI app for ``/{tenant}/controller/v1/{controllerId}/...``."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.failures = OutageLog(log)
        self.layout = RepositoryLayout(runtime.settings.home)
        #: (target path, sha256) -> (sha1, md5) of images already read once.
        self._digests: BoundedCache[tuple[str, str], tuple[str, str]] = BoundedCache(256)

    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` is a DDI controller path."""
        parts = path.split("/")
        return len(parts) >= 5 and parts[2] == "controller" and parts[3] == "v1"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a DDI request; unknown resources are 404, wrong methods 405."""
        parts = scope["path"].split("/")
        tenant, controller, rest = parts[1], parts[4], [p for p in parts[5:] if p]
        method = scope["method"]
        if tenant != self.rt.settings.ddi_tenant or not CONTROLLER_ID.match(controller):
            await send_error(send, 404, f"no controller {controller} in tenant {tenant}")
            return
        entry = await self._signed_in(scope, controller, send)
        if entry is None:
            return
        try:
            body = await read_body(receive, MAX_DDI_BODY_BYTES)
        except BodyTooLarge:
            await send_error(send, 413, f"request body larger than {MAX_DDI_BODY_BYTES} bytes")
            return
        try:
            await self._route(scope, method, rest, entry, body, send)
        except msgspec.ValidationError as exc:
            await send_error(send, 400, f"invalid request body: {exc}")
        except msgspec.DecodeError as exc:
            await send_error(send, 400, f"malformed JSON: {exc}")

    async def _route(
        self,
        scope: Scope,
        method: str,
        rest: list[str],
        entry: DeviceEntry,
        body: bytes,
        send: Send,
    ) -> None:
        resource = rest[0] if rest else ""
        if not rest:
            if method != "GET":
                await send_error(send, 405, "the controller resource takes GET")
                return
            await self.poll(entry, send)
            return
        if resource == "configData" and len(rest) == 1:
            if method != "PUT":
                await send_error(send, 405, "configData takes PUT")
                return
            await self.config_data(entry, body, send)
            return
        if resource in ("deploymentBase", "installedBase", "cancelAction") and len(rest) >= 2:
            number = _number(rest[1])
            if number is None:
                await send_error(send, 404, f"no action {rest[1]}")
                return
            if len(rest) == 2 and method == "GET":
                await self.action(resource, entry, number, send)
                return
            if len(rest) == 3 and rest[2] == "feedback" and resource != "installedBase":
                if method != "POST":
                    await send_error(send, 405, "feedback takes POST")
                    return
                await self.feedback(resource, entry, number, body, send)
                return
        if resource == "softwaremodules" and len(rest) == 4 and rest[2] == "artifacts":
            if method not in ("GET", "HEAD"):
                await send_error(send, 405, "artifacts take GET")
                return
            await self.artifact(scope, entry, rest[1], rest[3], send)
            return
        await send_error(send, 404, f"no DDI resource {'/'.join(rest)}")

    # -- authentication ---------------------------------------------------------------

    async def _signed_in(self, scope: Scope, controller: str, send: Send) -> DeviceEntry | None:
        """The controller, when the request carries its target token, the gateway token,
        or none while anonymous access is on; else None with 401 sent (nothing changed)."""
        raw = header(scope, b"authorization") or ""
        scheme, _, token = raw.partition(" ")
        token = token.strip()
        settings = self.rt.settings
        try:
            entry = await self.rt.devices.get(controller)
        except Exception:
            self.failures.failed("load", "could not load controller %s", controller)
            await send_error(send, 503, "try again shortly")
            return None
        allowed = False
        if entry is not None and scheme.lower() == "targettoken" and token:
            allowed = _token_matches(token, entry.credential_hash)
            if not allowed:  # a token issued through another process?
                entry = await self.rt.devices.reload(
                    entry, older_than=settings.credential_recheck_seconds
                )
                allowed = entry is not None and _token_matches(token, entry.credential_hash)
        elif scheme.lower() == "gatewaytoken" and settings.ddi_gateway_token is not None:
            allowed = hmac.compare_digest(
                token.encode(), settings.ddi_gateway_token.get_secret_value().encode()
            )
        elif not raw and settings.ddi_anonymous:
            allowed = True
        if not allowed or entry is None:
            await send_error(send, 401, _NOT_FOUND, "send Authorization: TargetToken <token>")
            return None
        if entry.device_id in self.rt.decommissioned:
            await send_error(send, 401, f"device {entry.device_id} was decommissioned")
            return None
        return entry

    # -- the decision -----------------------------------------------------------------

    def _base(self, device_id: str) -> str:
        settings = self.rt.settings
        return f"{settings.server_public_url()}/{settings.ddi_tenant}/controller/v1/{device_id}"

    def _row(self, device_id: str) -> ControllerRow | None:
        query = select(
            Device.build,
            Device.build_sha256,
            Device.security_patch_level,
            Device.assigned_target,
            Device.install_state,
            Device.ddi_attributes,
        ).where(Device.id == device_id)
        with self.rt.db.engine.connect() as conn:
            row = conn.execute(query).first()
            conn.rollback()
        if row is None:
            return None
        return ControllerRow(
            row.build,
            row.build_sha256 or "0" * 64,
            row.security_patch_level,
            row.assigned_target,
            row.install_state,
            row.ddi_attributes,
        )

    async def _state(self, entry: DeviceEntry, send: Send) -> ControllerRow | None:
        loop = asyncio.get_running_loop()
        try:
            row = await loop.run_in_executor(None, self._row, entry.device_id)
        except Exception:
            self.failures.failed("read", "could not read controller %s", entry.device_id)
            row = None
        if row is None:
            await send_error(send, 503, "try again shortly")
        return row

    def _decide(self, entry: DeviceEntry, row: ControllerRow) -> tuple[Decision, str]:
        return self.rt.director.decide(
            model=entry.model,
            region=entry.region,
            deployed_on=entry.deployed_on,
            build=row.build,
            build_sha256=row.build_sha256,
            security_patch_level=row.security_patch_level.isoformat(),
            free_bytes=_ANY_SPACE,
            battery_percent=100,
            network="ethernet",
            now=self.rt.clock.now(),
            failed_builds=entry.failed_builds,
            device_id=entry.device_id,
            carrier=entry.carrier,
        )

    async def _record(
        self,
        entry: DeviceEntry,
        row: ControllerRow,
        decision: Decision,
        digest: str,
        claimed_region: str | None = None,
    ) -> bool:
        """Record the poll as a check-in (the decision when it changed, and a claimed
        region, durably before the device hears back); False when it could not be."""
        rt = self.rt
        now = rt.clock.now()
        rt.metrics.count_checkin(decision.action.value)
        changed = digest != entry.decision_digest
        stale = (
            entry.written_seen_at is None
            or now - entry.written_seen_at >= rt.tuning.last_seen_resolution
        )
        if not (changed or stale or claimed_region is not None):
            return True
        trust = rt.settings.trust_claimed_region
        write = CheckInWrite(
            device_id=entry.device_id,
            now=now,
            facts={"last_seen_at": now, "network": "ethernet", "battery_percent": 100},
            last_boot_ok=True,
            decision=DecisionChange(
                digest=digest,
                action=decision.action.value,
                target=decision.release.target_path if decision.release else None,
                build=decision.release.build if decision.release else None,
                from_build=row.build,
                reasons=list(decision.reasons),
                rule_ids=list(decision.rule_ids),
                allowed_by=decision.allowed_by,
            ),
            claimed_region=claimed_region,
            trust_claim=trust,
        )
        if trust and claimed_region:
            entry.region = claimed_region
        if changed or claimed_region is not None:
            loop = asyncio.get_running_loop()
            write.waiter = Waiter(loop, loop.create_future())
            rt.writer.submit(write)
            try:
                await write.waiter.future
            except Exception:
                return False
            entry.decision_digest = digest
        else:
            rt.writer.submit(write)
        entry.written_seen_at = now
        return True

    def _offered(self, decision: Decision) -> ReleaseFacts | None:
        """The release a DDI controller is to install now, if any."""
        release = decision.release
        if decision.action is not DecisionAction.INSTALL or release is None:
            return None
        return release if is_ddi_image(release.target_path) else None

    def _release(self, model: str, target_path: str | None) -> ReleaseFacts | None:
        if target_path is None:
            return None
        for release in self.rt.director.catalog.releases_of(model):
            if release.target_path == target_path:
                return release
        return None

    def _running(self, model: str, build: str) -> ReleaseFacts | None:
        for release in self.rt.director.catalog.releases_of(model):
            if release.build == build and is_ddi_image(release.target_path):
                return release
        return None

    def _withdrawn(
        self, entry: DeviceEntry, row: ControllerRow, offered: ReleaseFacts | None
    ) -> str | None:
        """The target of an install under way that the director no longer offers."""
        target = row.assigned_target
        if target is None or row.install_state not in IN_FLIGHT:
            return None
        if offered is not None and offered.target_path == target:
            return None
        return target if is_ddi_image(target) else None

    # -- resources --------------------------------------------------------------------

    async def poll(self, entry: DeviceEntry, send: Send) -> None:
        """The root resource: the poll interval and links to what is open."""
        row = await self._state(entry, send)
        if row is None:
            return
        decision, digest = self._decide(entry, row)
        if not await self._record(entry, row, decision, digest):
            await send_error(send, 503, "the decision could not be recorded; try again shortly")
            return
        offered = self._offered(decision)
        withdrawn = self._withdrawn(entry, row, offered)
        running = self._running(entry.model, row.build)
        reasons = list(decision.reasons)
        if decision.release is not None and offered is None and decision.action.value == "install":
            reasons.append(
                f"{decision.release.target_path} is not an SWUpdate or RAUC image: "
                "not offered through DDI"
            )
        document = root_document(
            self._base(entry.device_id),
            self.rt.settings.ddi_poll_seconds,
            deployment=action_id(entry.device_id, offered.target_path) if offered else None,
            installed=action_id(entry.device_id, running.target_path) if running else None,
            cancel=action_id(entry.device_id, withdrawn) if withdrawn else None,
            ask_config=row.attributes is None,
            reasons=reasons,
        )
        await send_bytes(send, 200, _ENCODER.encode(document))

    async def action(self, resource: str, entry: DeviceEntry, number: int, send: Send) -> None:
        """``deploymentBase``, ``installedBase`` or ``cancelAction`` of one action of this
        controller; 404 for any other (another device's action among them)."""
        row = await self._state(entry, send)
        if row is None:
            return
        decision, _digest = self._decide(entry, row)
        base = self._base(entry.device_id)
        if resource == "cancelAction":
            withdrawn = self._withdrawn(entry, row, self._offered(decision))
            if withdrawn is None or action_id(entry.device_id, withdrawn) != number:
                await send_error(send, 404, f"no action {number} to cancel")
                return
            await send_bytes(send, 200, _ENCODER.encode(cancel_document(number)))
            return
        if resource == "deploymentBase":
            release, status = self._offered(decision), "proceeding"
        else:
            release, status = self._running(entry.model, row.build), "finished"
        if release is None or action_id(entry.device_id, release.target_path) != number:
            await send_error(send, 404, f"no action {number} for this controller")
            return
        artifact = await self._artifact_document(base, release)
        if artifact is None:
            await send_error(send, 503, "the image is not readable on this server")
            return
        document = deployment_document(
            number,
            release,
            artifact,
            forced=release.update_class is UpdateClass.SECURITY,
            messages=list(decision.reasons),
            history_status=status,
        )
        await send_bytes(send, 200, _ENCODER.encode(document))

    async def _artifact_document(self, base: str, release: ReleaseFacts) -> dict[str, Any] | None:
        key = (release.target_path, release.sha256)
        digests = self._digests.get(key)
        if digests is None:
            path = self.layout.target_file(release.target_path, release.sha256)
            loop = asyncio.get_running_loop()
            try:
                digests = await loop.run_in_executor(None, _sha1_md5, path)
            except OSError:
                log.exception("could not read image %s", release.target_path)
                return None
            self._digests.put(key, digests)
        return artifact_document(base, release, *digests)

    async def feedback(
        self, resource: str, entry: DeviceEntry, number: int, body: bytes, send: Send
    ) -> None:
        """Take feedback on an action as an install report (reconciled, audited and
        counted by rollout brakes); a cancel acknowledged (closed) marks the install
        canceled, which no brake counts as a failure."""
        feedback = _FEEDBACK.decode(body)
        row = await self._state(entry, send)
        if row is None:
            return
        status = feedback.status
        detail = "; ".join(status.details)
        if status.code is not None:
            detail = f"{detail}; device code {status.code}" if detail else f"code {status.code}"
        detail = detail[:4000]
        if resource == "cancelAction":
            withdrawn = row.assigned_target
            if withdrawn is None or action_id(entry.device_id, withdrawn) != number:
                await send_error(send, 404, f"no action {number} to cancel")
                return
            # hawkBit: closed (not failed) confirms the cancel; anything else leaves the
            # install as it was.
            confirmed = (
                status.execution is Execution.CLOSED
                and status.result.finished is not Finished.FAILURE
            )
            if confirmed and not await self._cancel(entry, withdrawn, detail):
                await send_error(send, 503, "feedback not stored; send it again")
                return
            await send_bytes(send, 200, b"{}")
            return
        release = self._action_release(entry, row, number)
        if release is None:
            await send_error(send, 404, f"no action {number} for this controller")
            return
        mapped = _report_status(status.execution, status.result.finished)
        if mapped is None:  # canceled: the device confirms a cancel
            if not await self._cancel(entry, release.target_path, detail):
                await send_error(send, 503, "feedback not stored; send it again")
                return
            await send_bytes(send, 200, b"{}")
            return
        report_status, code = mapped
        if status.execution is not Execution.CLOSED:
            detail = f"{status.execution.value}: {detail}" if detail else status.execution.value
        progress = status.result.progress
        seed = (
            f"{entry.device_id}/{number}/{resource}/{status.execution}/"
            f"{status.result.finished}/{progress.cnt if progress else ''}/"
            f"{progress.of if progress else ''}/{detail}"
        )
        now = self.rt.clock.now()
        report = Report(
            report_id=str(uuid.uuid5(_REPORTS, seed)),
            target=release.target_path,
            build=release.build,
            status=report_status,
            at=now.isoformat(),
            code=code,
            detail=detail,
            source="ddi",
        )
        loop = asyncio.get_running_loop()
        waiter: Waiter = Waiter(loop, loop.create_future())
        self.rt.writer.submit(ReportWrite(entry.device_id, now, [report], waiter))
        try:
            await waiter.future
        except Exception:
            await send_error(send, 503, "feedback not stored; send it again")
            return
        self.rt.metrics.reports.labels(report_status.value).inc()
        what = failure_of(report_status, code)
        if what is not None:
            sentence = failure_sentence(release.build, what, now.date().isoformat())
            entry.failed_builds.setdefault(release.build, sentence)
        await send_bytes(send, 200, b"{}")

    async def _cancel(self, entry: DeviceEntry, target: str, detail: str) -> bool:
        now = self.rt.clock.now()

        def store() -> None:
            with self.rt.db.transaction() as session:
                cancel_install(session, entry.device_id, target, detail, now)

        try:
            await asyncio.get_running_loop().run_in_executor(None, store)
        except Exception:
            log.exception("could not record the cancel of %s", entry.device_id)
            return False
        return True

    def _action_release(
        self, entry: DeviceEntry, row: ControllerRow, number: int
    ) -> ReleaseFacts | None:
        """The release of one of this controller's actions: the one offered now, or the
        one it was assigned (an install the director has since withdrawn)."""
        decision, _digest = self._decide(entry, row)
        assigned = self._release(entry.model, row.assigned_target)
        for candidate in (self._offered(decision), assigned):
            if candidate is None:
                continue
            if action_id(entry.device_id, candidate.target_path) == number:
                return candidate
        return None

    async def config_data(self, entry: DeviceEntry, body: bytes, send: Send) -> None:
        """Store the attributes the controller reports; a ``region`` among them is a claim
        (flagged when it differs, taken only where the server trusts claimed regions)."""
        config = _CONFIG.decode(body)
        now = self.rt.clock.now()
        loop = asyncio.get_running_loop()

        def store() -> None:
            with self.rt.db.transaction() as session:
                record_attributes(session, entry.device_id, config.data, config.mode, now)

        try:
            await loop.run_in_executor(None, store)
        except Exception:
            log.exception("could not store attributes of %s", entry.device_id)
            await send_error(send, 503, "attributes not stored; send them again")
            return
        claimed = next((v.upper() for k, v in config.data.items() if k.lower() == "region"), None)
        if claimed is not None and _REGION.match(claimed):
            row = await self._state(entry, send)
            if row is None:
                return
            decision, digest = self._decide(entry, row)
            if not await self._record(entry, row, decision, digest, claimed_region=claimed):
                await send_error(send, 503, "the region claim could not be recorded")
                return
        await send_bytes(send, 200, b"{}")

    async def artifact(
        self, scope: Scope, entry: DeviceEntry, module: str, name: str, send: Send
    ) -> None:
        """An image of an action open to this controller (offered now, an install still
        under way, or the build it runs) or its ``.MD5SUM``, whole or one byte range."""
        row = await self._state(entry, send)
        if row is None:
            return
        decision, _digest = self._decide(entry, row)
        under_way = row.install_state in IN_FLIGHT
        candidates = (
            self._offered(decision),
            self._release(entry.model, row.assigned_target) if under_way else None,
            self._running(entry.model, row.build),
        )
        md5sum = name.endswith(".MD5SUM")
        filename = name.removesuffix(".MD5SUM")
        release = next(
            (
                c
                for c in candidates
                if c is not None
                and str(module_id(c.target_path)) == module
                and filename_of(c.target_path) == filename
            ),
            None,
        )
        if release is None:
            await send_error(send, 404, f"no artifact {name} for this controller")
            return
        path = self.layout.target_file(release.target_path, release.sha256)
        if md5sum:
            document = await self._artifact_document(self._base(entry.device_id), release)
            if document is None:
                await send_error(send, 503, "the image is not readable on this server")
                return
            text = f"{document['hashes']['md5']}  {filename}\n".encode()
            await _send_plain(send, text)
            return
        await _send_file(scope, send, path, release.length, filename)


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 10 else None


def _token_matches(token: str, stored: bytes) -> bool:
    return len(token) <= 200 and hmac.compare_digest(
        hashlib.sha256(token.encode()).digest(), stored
    )


def _report_status(
    execution: Execution, finished: Finished
) -> tuple[ReportStatus, ReportCode] | None:
    """The install report a deployment feedback stands for, as hawkBit reads it: closed
    is the end (failure: failed; success or none: finished), anything else but canceled
    an install under way (rejected included: hawkBit keeps the action open); None for
    canceled, which confirms a cancel."""
    if execution is Execution.CLOSED:
        if finished is Finished.FAILURE:
            return ReportStatus.FAILED, ReportCode.INSTALL_FAILED
        return ReportStatus.BOOTED_HEALTHY, ReportCode.NONE
    if execution is Execution.CANCELED:
        return None
    return ReportStatus.DOWNLOADING, ReportCode.NONE


def _sha1_md5(path: Path) -> tuple[str, str]:
    sha1, md5 = hashlib.sha1(), hashlib.md5()  # noqa: S324 - hawkBit's artifact hashes
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            sha1.update(chunk)
            md5.update(chunk)
    return sha1.hexdigest(), md5.hexdigest()


def _byte_range(value: str | None, length: int) -> tuple[int, int] | bool | None:
    """The one range a ``Range`` header asks for as (first, last); None for the whole
    file; False when it cannot be satisfied."""
    if not value:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first_text, _, last_text = spec.strip().partition("-")
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0:
                return False
            return max(length - suffix, 0), length - 1
        first = int(first_text)
        last = int(last_text) if last_text else length - 1
    except ValueError:
        return None
    if first >= length or last < first:
        return False
    return first, min(last, length - 1)


async def _send_plain(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_file(scope: Scope, send: Send, path: Path, length: int, filename: str) -> None:
    wanted = _byte_range(header(scope, b"range"), length)
    if wanted is False:
        await send(
            {
                "type": "http.response.start",
                "status": 416,
                "headers": [(b"content-range", f"bytes */{length}".encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    first, last = wanted if isinstance(wanted, tuple) else (0, length - 1)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"accept-ranges", b"bytes"),
        (b"content-length", str(last - first + 1).encode()),
        (b"content-disposition", f'attachment; filename="{filename}"'.encode()),
    ]
    status = 200
    if isinstance(wanted, tuple):
        status = 206
        headers.append((b"content-range", f"bytes {first}-{last}/{length}".encode()))
    try:
        file = path.open("rb")
    except OSError:
        await send_error(send, 503, "the image is not readable on this server")
        return
    loop = asyncio.get_running_loop()
    with file:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        file.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = await loop.run_in_executor(None, file.read, min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})
