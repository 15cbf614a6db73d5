"""The device API (``/v1``): enroll, check in, report. Plain ASGI on the hot path.

A check-in costs: a dictionary lookup and a sha256 to check the credential, a
msgspec decode, a cohort-cached decision and a per-device cached signed answer. The
database sees it only when the device is new to this process, when its reported facts
changed (batched), or when its decision changed (batched, awaited so that the audit
chain holds the decision before the device acts on it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from patchline.audit import AuditRecord, append
from patchline.fleet.beliefs import failure_of, failure_sentence
from patchline.fleet.credentials import secret_matches, split_credential
from patchline.fleet.enrollment import EnrollmentConflictError, enroll
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
from patchline.server.devices_cache import DeviceEntry
from patchline.server.outage_log import OutageLog
from patchline.server.receipts import receipt_reports, refusal
from patchline.server.writer import (
    CheckInWrite,
    DecisionChange,
    ReportWrite,
    Waiter,
    facts_from_check_in,
)
from patchline.store.models import Device
from patchline.wire.device_api import (
    MAX_BODY_BYTES,
    CheckIn,
    EnrollRequest,
    EnrollResponse,
    ReportAck,
    ReportBatch,
)
from patchline.wire.receipt import ReceiptAck, ReceiptBatch, key_id

if TYPE_CHECKING:
    from patchline.server.runtime import Runtime

log = logging.getLogger(__name__)

_CHECK_IN = msgspec.json.Decoder(CheckIn)
_REPORTS = msgspec.json.Decoder(ReportBatch)
_ENROLL = msgspec.json.Decoder(EnrollRequest)
_RECEIPTS = msgspec.json.Decoder(ReceiptBatch)
_ENCODER = msgspec.json.Encoder()
_BAD_CREDENTIAL = "unknown device or wrong credential"


class _RegistryUnavailableError(Exception):
    """The devices could not be read (the database is away): 503, not 401."""


class DeviceApi:
    """ASGI app for ``/v1/*``."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.failures = OutageLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a request by path; anything else is 404/405."""
        path = scope["path"]
        route = {
            "/v1/check-in": self.check_in,
            "/v1/reports": self.reports,
            "/v1/enroll": self.enroll,
            "/v1/receipts": self.receipts,
        }.get(path)
        if route is None:
            await send_error(send, 404, f"no device endpoint {path}")
            return
        if scope["method"] != "POST":
            await send_error(send, 405, f"{path} takes POST")
            return
        try:
            body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await send_error(send, 413, f"request body larger than {MAX_BODY_BYTES} bytes")
            return
        try:
            await route(scope, body, send)
        except msgspec.ValidationError as exc:
            await send_error(send, 422, f"invalid request body: {exc}")
        except msgspec.DecodeError as exc:
            await send_error(send, 400, f"malformed JSON: {exc}")

    async def _signed_in(self, scope: Scope, send: Send) -> DeviceEntry | None:
        """The device whose credential the request carries; else None, 401 sent (saying
        so when the device was decommissioned)."""
        try:
            entry = await self._device(scope)
        except _RegistryUnavailableError:
            await send_error(send, 503, "the device registry is unavailable; try again shortly")
            return None
        if entry is None:
            await send_error(send, 401, _BAD_CREDENTIAL, "enroll again if the device was reset")
            return None
        if entry.device_id in self.rt.decommissioned:
            await send_error(
                send,
                401,
                f"device {entry.device_id} was decommissioned",
                "ask the fleet's operators; a decommissioned device is offered nothing",
            )
            return None
        return entry

    async def _device(self, scope: Scope) -> DeviceEntry | None:
        raw = header(scope, b"authorization")
        parsed = split_credential(raw) if raw else None
        if parsed is None:
            return None
        device_id, secret = parsed
        entry = self.rt.devices.cached(device_id)
        try:
            if entry is None:
                entry = await self.rt.devices.get(device_id)
        except Exception:
            self.failures.failed("load", "could not load device %s", device_id)
            raise _RegistryUnavailableError from None
        if entry is None:
            return None
        if not secret_matches(secret, entry.credential_hash):
            # Re-enrolled through another process? Look again, now and then.
            try:
                entry = await self.rt.devices.reload(
                    entry, older_than=self.rt.settings.credential_recheck_seconds
                )
            except Exception:
                self.failures.failed("load", "could not reload device %s", device_id)
                raise _RegistryUnavailableError from None
            if entry is None or not secret_matches(secret, entry.credential_hash):
                return None
        return entry

    async def check_in(self, scope: Scope, body: bytes, send: Send) -> None:
        """Answer a check-in with the device's signed decision."""
        entry = await self._signed_in(scope, send)
        if entry is None:
            return
        checkin = _CHECK_IN.decode(body)
        try:
            date.fromisoformat(checkin.security_patch_level)
        except ValueError:
            await send_error(
                send, 422, f"invalid security_patch_level {checkin.security_patch_level!r}"
            )
            return
        rt = self.rt
        now = rt.clock.now()
        # Decisions use the region the server vouches for; a check-in's claim counts
        # only where the operator chose to trust claims.
        claimed = checkin.region
        trust = rt.settings.trust_claimed_region
        region = claimed if trust and claimed else entry.region
        decision, digest = rt.director.decide(
            model=entry.model,
            region=region,
            deployed_on=entry.deployed_on,
            build=checkin.build,
            build_sha256=checkin.build_sha256,
            security_patch_level=checkin.security_patch_level,
            free_bytes=checkin.free_bytes,
            battery_percent=checkin.battery_percent,
            network=checkin.network.value,
            now=now,
            failed_builds=entry.failed_builds,
            device_id=entry.device_id,
            carrier=entry.carrier,
        )
        answer = rt.director.answer(entry.device_id, decision, digest, now)
        rt.metrics.count_checkin(decision.action.value)
        # Free space and battery change on every poll: they are written with the
        # periodic last-seen refresh, not as a change of their own.
        state = (
            checkin.build,
            checkin.build_sha256,
            checkin.security_patch_level,
            checkin.slot.active,
            checkin.slot.last_boot_ok,
            checkin.network,
            claimed,
        )
        changed_decision = digest != entry.decision_digest
        stale_seen = (
            entry.written_seen_at is None
            or now - entry.written_seen_at >= rt.tuning.last_seen_resolution
        )
        if changed_decision or state != entry.written_state or stale_seen:
            write = CheckInWrite(
                device_id=entry.device_id,
                now=now,
                facts={**facts_from_check_in(checkin), "last_seen_at": now},
                last_boot_ok=checkin.slot.last_boot_ok,
                decision=DecisionChange(
                    digest=digest,
                    action=decision.action.value,
                    target=decision.target_path,
                    build=decision.release.build if decision.release else None,
                    from_build=checkin.build,
                    reasons=list(decision.reasons),
                    rule_ids=list(decision.rule_ids),
                    allowed_by=decision.allowed_by,
                ),
                claimed_region=claimed,
                trust_claim=trust,
            )
            if trust and claimed:
                entry.region = claimed
            if changed_decision:
                loop = asyncio.get_running_loop()
                write.waiter = Waiter(loop, loop.create_future())
                rt.writer.submit(write)
                try:
                    await write.waiter.future
                except Exception:
                    await send_error(
                        send, 503, "the decision could not be recorded; try again shortly"
                    )
                    return
                entry.decision_digest = digest
            else:
                rt.writer.submit(write)
            entry.written_state = state
            entry.written_seen_at = now
        await send_bytes(send, 200, answer)

    async def reports(self, scope: Scope, body: bytes, send: Send) -> None:
        """Store install reports; acknowledge only once they are durable."""
        entry = await self._signed_in(scope, send)
        if entry is None:
            return
        batch = _REPORTS.decode(body)
        loop = asyncio.get_running_loop()
        waiter: Waiter = Waiter(loop, loop.create_future())
        self.rt.writer.submit(
            ReportWrite(entry.device_id, self.rt.clock.now(), batch.reports, waiter)
        )
        try:
            accepted: list[str] = await waiter.future
        except Exception:
            await send_error(send, 503, "reports not stored; keep them and send again")
            return
        today = self.rt.clock.now().date()
        for report in batch.reports:
            self.rt.metrics.reports.labels(report.status.value).inc()
            what = failure_of(report.status, report.code)
            if what is not None:  # as the writer stored it; other processes re-read it
                sentence = failure_sentence(report.build, what, today.isoformat())
                entry.failed_builds.setdefault(report.build, sentence)
        # The install moved on: the next check-in is written, so it is reconciled at once
        # (a check-in to another process is reconciled within last_seen_resolution).
        entry.written_state = ()
        await send_bytes(send, 200, _ENCODER.encode(ReportAck(accepted=accepted)))

    async def receipts(self, scope: Scope, body: bytes, send: Send) -> None:
        """Verify install receipts of offline installs, signed by the device's Ed25519
        key, and record them as install reports (source ``bundle ID``, audit kind
        ``receipt``); 422 and nothing stored when any receipt is not this device's, is
        not signed by the key it enrolled with, or the device has no key."""
        entry = await self._signed_in(scope, send)
        if entry is None:
            return
        batch = _RECEIPTS.decode(body)
        loop = asyncio.get_running_loop()
        try:
            public_key = await loop.run_in_executor(None, self._public_key, entry.device_id)
        except Exception:
            self.failures.failed("key", "could not load the key of device %s", entry.device_id)
            await send_error(send, 503, "receipts not verified; keep them and send again")
            return
        refused = refusal(batch, entry.device_id, public_key)
        if refused is not None:
            await send_error(send, 422, *refused)
            return
        assert public_key is not None
        reports, extra = receipt_reports(batch, public_key)
        waiter: Waiter = Waiter(loop, loop.create_future())
        self.rt.writer.submit(
            ReportWrite(
                entry.device_id,
                self.rt.clock.now(),
                reports,
                waiter,
                audit_kind="receipt",
                audit_extra=extra,
            )
        )
        try:
            accepted: list[str] = await waiter.future
        except Exception:
            await send_error(send, 503, "receipts not stored; keep them and send again")
            return
        entry.written_state = ()
        await send_bytes(send, 200, _ENCODER.encode(ReceiptAck(accepted=accepted)))

    async def enroll(self, scope: Scope, body: bytes, send: Send) -> None:
        """Enroll a device presenting the fleet's enrollment token."""
        token = self.rt.settings.enrollment_token
        presented = header(scope, b"authorization") or ""
        if token is None:
            await send_error(send, 403, "enrollment is closed on this server")
            return
        if not _token_ok(presented, token.get_secret_value()):
            await send_error(send, 401, "wrong enrollment token")
            return
        request = _ENROLL.decode(body)
        try:
            date.fromisoformat(request.deployed_on)
            date.fromisoformat(request.security_patch_level)
        except ValueError as exc:
            await send_error(send, 422, f"invalid date: {exc}")
            return
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, self._enroll, request)
        except EnrollmentConflictError as exc:
            await send_error(send, 409, exc.message, exc.hint)
            return
        self.rt.devices.forget(result.device_id)
        response = EnrollResponse(device_id=result.device_id, credential=result.credential)
        await send_bytes(send, 201, _ENCODER.encode(response))

    def _public_key(self, device_id: str) -> bytes | None:
        """The device's receipt key as stored now (re-enrollment replaces it)."""
        with self.rt.db.reading() as conn:
            key = conn.execute(select(Device.public_key).where(Device.id == device_id)).scalar()
        return bytes(key) if key is not None else None

    def _enroll(self, request: EnrollRequest) -> Any:
        now = self.rt.clock.now()
        with self.rt.db.transaction() as session:
            settings = self.rt.settings
            result = enroll(
                session,
                request,
                now,
                region=settings.enrollment_region,
                deployed_on=settings.enrollment_deployed_on,
            )
            append(
                session,
                [
                    AuditRecord(
                        at=now,
                        kind="enroll",
                        actor="device",
                        subject=result.device_id,
                        payload={
                            "model": request.model,
                            "serial": request.serial,
                            "region": settings.enrollment_region or request.region,
                            "deployed_on": (
                                settings.enrollment_deployed_on.isoformat()
                                if settings.enrollment_deployed_on
                                else request.deployed_on
                            ),
                            "claimed_region": request.region,
                            "claimed_deployed_on": request.deployed_on,
                            "re_enrolled": result.re_enrolled,
                            # The key that signs this device's install receipts from now
                            # on, so an audit export binds receipts to the enrollment.
                            "public_key": request.public_key,
                            "keyid": (
                                key_id(bytes.fromhex(request.public_key))
                                if request.public_key
                                else None
                            ),
                        },
                    )
                ],
            )
        return result


def _token_ok(presented: str, token: str) -> bool:
    import hmac

    scheme, _, value = presented.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )
