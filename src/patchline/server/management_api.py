"""The management API (``/api``): releases, devices, rules, audit; bearer tokens with roles."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from patchline.audit import AuditRecord, verify
from patchline.director.catalog import amendment_of, aware, load_catalog
from patchline.director.releases_sync import bump_catalog
from patchline.policy.authorise import authorise_with
from patchline.policy.explain import explain
from patchline.policy.facts import DeviceFacts
from patchline.policy.rules import Amendment, Rule, rule_history
from patchline.repository.publisher import Repository
from patchline.repository.releases import ReleaseRequest, add_release
from patchline.server.api_guard import CALLER_KEY
from patchline.server.auth import GRANTS, Permission, Role
from patchline.server.policy_bodies import AmendmentBody, RuleBody
from patchline.server.runtime import Runtime
from patchline.store.models import Device, InstallReport, Policy, PolicyAmendment, Release
from patchline.wire.device_api import Network
from patchline.wire.release import (
    Eligibility,
    UpdateClass,
    parse_date,
    parse_regions,
)

Caller = tuple[str, Role]


def runtime(request: Request) -> Runtime:
    """The process's runtime, kept on the app."""
    rt: Runtime = request.app.state.runtime
    return rt


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A management API token (`patchline token create NAME --role ROLE`).",
)


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency that admits tokens whose role grants ``permission`` (the token was
    checked by ``patchline.server.api_guard`` before the request got here)."""

    async def check(
        request: Request,
        _shown_in_openapi: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Caller:
        caller: Caller | None = request.scope.get(CALLER_KEY)
        if caller is None:
            raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        if permission not in GRANTS[caller[1]]:
            raise HTTPException(
                403, f"role {caller[1].value} may not do this (needs {permission.value})"
            )
        return caller

    return check


Reader = Annotated[Caller, Depends(require(Permission.READ))]
ReleaseManager = Annotated[Caller, Depends(require(Permission.RELEASES))]
Compliance = Annotated[Caller, Depends(require(Permission.POLICIES))]
Auditor = Annotated[Caller, Depends(require(Permission.AUDIT))]

router = APIRouter(prefix="/api")


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking database work off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


# --- releases -----------------------------------------------------------------------


def release_json(row: Release) -> dict[str, Any]:
    """A release row as the API shows it."""
    return {
        "id": row.id,
        "target_path": row.target_path,
        "kind": row.kind,
        "model": row.model,
        "build": row.build,
        "length": row.length,
        "sha256": row.sha256,
        "security_patch_level": row.security_patch_level,
        "update_class": row.update_class,
        "eligibility": row.eligibility,
        "source_build": row.source_build,
        "min_battery_percent": row.min_battery_percent,
        "allowed_networks": row.allowed_networks,
        "published_at": row.published_at,
        "yanked_at": row.yanked_at,
        "yank_reason": row.yank_reason,
    }


@router.get("/releases", tags=["releases"])
async def list_releases(
    request: Request, _caller: Reader, model: str | None = None
) -> list[dict[str, Any]]:
    """Every signed target known to the server, newest first."""
    rt = runtime(request)

    def query() -> list[dict[str, Any]]:
        with rt.db.transaction() as session:
            stmt = select(Release).order_by(Release.id.desc())
            if model:
                stmt = stmt.where(Release.model == model)
            return [release_json(r) for r in session.scalars(stmt)]

    result: list[dict[str, Any]] = await in_thread(query)
    return result


@router.post("/releases", status_code=201, tags=["releases"])
async def publish_release(
    request: Request,
    caller: ReleaseManager,
    image: Annotated[UploadFile, File()],
    model: Annotated[str, Form()],
    build: Annotated[str, Form()],
    security_patch_level: Annotated[str, Form()],
    update_class: Annotated[UpdateClass, Form()],
    notes: Annotated[str, Form()] = "",
    regions_excluded: Annotated[str, Form()] = "",
    regions_allowed: Annotated[str, Form()] = "",
    deployed_before: Annotated[str, Form()] = "",
    valid_until: Annotated[str, Form()] = "",
    under_rules: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Sign and publish an uploaded image (keys and passphrases of this server's home).

    With ``under_rules``, only if a delivery rule in force allows it, with that rule's
    limits and name signed into it as well as the ones given (409 naming the rule
    otherwise), so that mirrors and SD cards carry the rules to devices.
    """
    rt = runtime(request)
    eligibility = Eligibility(
        regions_allowed=parse_regions([regions_allowed]),
        regions_excluded=parse_regions([regions_excluded]),
        deployed_before=parse_date("deployed_before", deployed_before) if deployed_before else None,
        valid_until=parse_date("valid_until", valid_until) if valid_until else None,
    )
    spl = parse_date("security_patch_level", security_patch_level)
    name = Path(image.filename or "image.img").name

    def publish() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            with path.open("wb") as out:
                shutil.copyfileobj(image.file, out, 1 << 20)
            repo = Repository.open(rt.settings.home, rt.settings, clock=rt.clock)
            signed = eligibility
            if under_rules:
                with rt.db.transaction() as session:
                    catalog = load_catalog(session)
                signed = authorise_with(
                    eligibility,
                    model=model,
                    update_class=update_class,
                    rules=catalog.rules,
                    amendments=catalog.amendments,
                    day=rt.clock.now().date(),
                ).eligibility
            published = add_release(
                repo,
                ReleaseRequest(
                    image=path,
                    model=model,
                    build=build,
                    security_patch_level=spl,
                    update_class=update_class,
                    eligibility=signed,
                    notes=notes,
                ),
            )
        rt.sync_releases()
        return {
            "target_path": published.target_path,
            "sha256": published.sha256,
            "eligibility": published.info.eligibility.to_json(),
        }

    result: dict[str, Any] = await in_thread(publish)
    await rt.record(
        [
            AuditRecord(
                rt.clock.now(), "publish", f"token:{caller[0]}", result["target_path"], result
            )
        ]
    )
    return result


@router.post("/releases/sync", tags=["releases"])
async def sync_releases(request: Request, caller: ReleaseManager) -> dict[str, Any]:
    """Read newly signed targets from the repository now (also done every few seconds)."""
    rt = runtime(request)
    new: list[str] = await in_thread(rt.sync_releases)
    await in_thread(rt.reload_catalog_if_changed)
    return {"new": new}


class OfferSettings(BaseModel):
    """What a release manager may change about how a release is offered."""

    min_battery_percent: int | None = Field(default=None, ge=0, le=100)
    allowed_networks: list[Network] | None = None


@router.patch("/releases/{release_id}", tags=["releases"])
async def change_offer(
    request: Request,
    release_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    settings: OfferSettings,
    caller: ReleaseManager,
) -> dict[str, Any]:
    """Change a release's battery floor or allowed networks."""
    rt = runtime(request)

    def change() -> dict[str, Any] | None:
        with rt.db.transaction() as session:
            row = session.get(Release, release_id)
            if row is None:
                return None
            if settings.min_battery_percent is not None:
                row.min_battery_percent = settings.min_battery_percent
            if settings.allowed_networks is not None:
                row.allowed_networks = [n.value for n in settings.allowed_networks]
            bump_catalog(session)
            return release_json(row)

    result: dict[str, Any] | None = await in_thread(change)
    if result is None:
        raise HTTPException(404, f"no release {release_id}")
    await in_thread(rt.reload_catalog_if_changed)
    await rt.record(
        [
            AuditRecord(
                rt.clock.now(),
                "release-settings",
                f"token:{caller[0]}",
                result["target_path"],
                settings.model_dump(mode="json", exclude_none=True),
            )
        ]
    )
    return result


# --- devices ------------------------------------------------------------------------


def device_json(row: Device) -> dict[str, Any]:
    """A device row as the API shows it."""
    return {
        "id": row.id,
        "model": row.model,
        "serial": row.serial,
        "region": row.region,
        "carrier": row.carrier,
        "deployed_on": row.deployed_on,
        "build": row.build,
        "security_patch_level": row.security_patch_level,
        "last_seen_at": row.last_seen_at,
        "slot_active": row.slot_active,
        "assigned_build": row.assigned_build,
        "install_state": row.install_state,
        "install_state_at": row.install_state_at,
        "decommissioned_at": row.decommissioned_at,
        "decommission_reason": row.decommission_reason,
    }


@router.get("/devices", tags=["devices"])
async def list_devices(
    request: Request,
    _caller: Reader,
    model: str | None = None,
    region: str | None = None,
    build: str | None = None,
    install_state: str | None = None,
    decommissioned: bool | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Devices matching the filters (``decommissioned``: only those taken out of service,
    or with false only those in service), a page at a time, ordered by id."""
    rt = runtime(request)

    def query() -> dict[str, Any]:
        stmt = select(Device)
        for column, value in (
            (Device.model, model),
            (Device.region, region.upper() if region else None),
            (Device.build, build),
            (Device.install_state, install_state),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if decommissioned is not None:
            taken = Device.decommissioned_at.is_not(None)
            stmt = stmt.where(taken if decommissioned else Device.decommissioned_at.is_(None))
        with rt.db.transaction() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = session.scalars(
                stmt.order_by(Device.id).offset((page - 1) * page_size).limit(page_size)
            )
            return {
                "total": total,
                "page": page,
                "page_size": page_size,
                "devices": [device_json(r) for r in rows],
            }

    result: dict[str, Any] = await in_thread(query)
    return result


def _get_device(rt: Runtime, device_id: str) -> Device:
    with rt.db.transaction() as session:
        row = session.get(Device, device_id)
    if row is None:
        raise HTTPException(404, f"no device {device_id}")
    return row


@router.get("/devices/{device_id}", tags=["devices"])
async def get_device(request: Request, device_id: str, _caller: Reader) -> dict[str, Any]:
    """One device, with its latest install reports."""
    rt = runtime(request)

    def query() -> dict[str, Any]:
        row = _get_device(rt, device_id)
        with rt.db.transaction() as session:
            reports = session.scalars(
                select(InstallReport)
                .where(InstallReport.device_id == device_id)
                .order_by(InstallReport.received_at.desc())
                .limit(50)
            )
            history = [
                {
                    "report_id": r.report_id,
                    "build": r.build,
                    "status": r.status,
                    "code": r.code,
                    "detail": r.detail,
                    "source": r.source,
                    "origin": r.origin,
                    "received_at": r.received_at,
                }
                for r in reports
            ]
        return {**device_json(row), "reports": history}

    result: dict[str, Any] = await in_thread(query)
    return result


@router.get("/devices/{device_id}/explain", tags=["devices"])
async def explain_device(
    request: Request,
    device_id: str,
    _caller: Reader,
    at: Annotated[
        date | None, Query(description="The day asked about: the rules as they stood then.")
    ] = None,
    known_on: Annotated[
        date | None,
        Query(
            description="Read only the rules and amendments recorded by the end of this day "
            "(default: everything known now), so that a back-dated amendment does not "
            "change what was known then."
        ),
    ] = None,
) -> dict[str, Any]:
    """What this device would get now (or on date ``at``), and why, rule by rule: the
    rules as they stood on ``at``, as known now or as known on ``known_on``."""
    rt = runtime(request)
    row = await in_thread(lambda: _get_device(rt, device_id))
    # A device that never checked in has no phone state: assume it ready, and say so.
    seen = row.last_seen_at is not None
    facts = DeviceFacts(
        device_id=row.id,
        model=row.model,
        region=row.region,
        deployed_on=row.deployed_on,
        build=row.build,
        build_sha256=row.build_sha256 or "0" * 64,
        security_patch_level=row.security_patch_level,
        free_bytes=row.free_bytes if seen and row.free_bytes is not None else 2**62,
        battery_percent=row.battery_percent if seen and row.battery_percent is not None else 100,
        network=(row.network or "offline") if seen else "wifi",
    )
    catalog = rt.director.catalog
    day = at or rt.clock.now().date()
    rules, amendments = catalog.known_on(known_on)
    result = explain(facts, catalog.releases_of(row.model), rules, amendments, day).to_json()
    result["known_on"] = known_on.isoformat() if known_on is not None else None
    result["amendments_recorded_later"] = [
        a.to_json() for a in catalog.amendments if a not in amendments
    ]
    result["phone_state"] = "last check-in" if seen else "unknown (assumed ready)"
    result["as_of_last_check_in"] = row.last_seen_at
    return result


# --- rules --------------------------------------------------------------------------


def _policy_json(row: Policy, amendments: list[PolicyAmendment]) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule": row.body,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "amendments": [_amendment_json(a) for a in amendments],
    }


def _amendment_json(row: PolicyAmendment) -> dict[str, Any]:
    amendment = amendment_of(row)
    recorded = amendment.recorded_at
    assert recorded is not None
    return {
        "id": row.id,
        "label": amendment.label,
        "effective_from": row.effective_from,
        "changes": row.changes,
        "note": row.note,
        "recorded_at": recorded,
        "backdated": row.backdated,
        "reason": row.reason,
        "summary": _recording_summary(amendment, recorded),
        "created_at": row.created_at,
        "created_by": row.created_by,
    }


def _recording_summary(amendment: Amendment, recorded: datetime) -> str:
    """Both times of an amendment in words, saying so when it is back-dated."""
    effective = amendment.effective_from.isoformat()
    when = f"effective {effective}, recorded {recorded.date().isoformat()}"
    if amendment.backdated:
        return f"back-dated: {when}; reason: {amendment.reason}"
    return when


@router.get("/policies", tags=["rules"])
async def list_policies(
    request: Request,
    _caller: Reader,
    known_on: Annotated[
        date | None,
        Query(description="Only rules and amendments recorded by the end of this day."),
    ] = None,
) -> list[dict[str, Any]]:
    """Every rule as first written, with its amendments in order, each with both of its
    times (effective, recorded) and whether it is back-dated; with ``known_on``, as they
    were known at the end of that day."""
    rt = runtime(request)

    def known(instant: datetime) -> bool:
        return known_on is None or aware(instant).date() <= known_on

    def query() -> list[dict[str, Any]]:
        with rt.db.transaction() as session:
            amendments: dict[str, list[PolicyAmendment]] = {}
            for a in session.scalars(select(PolicyAmendment).order_by(PolicyAmendment.id)):
                if known(a.recorded_at):
                    amendments.setdefault(a.policy_id, []).append(a)
            return [
                _policy_json(p, amendments.get(p.id, []))
                for p in session.scalars(select(Policy).order_by(Policy.id))
                if known(p.created_at)
            ]

    result: list[dict[str, Any]] = await in_thread(query)
    return result


@router.post("/policies", status_code=201, tags=["rules"])
async def create_policy(request: Request, body: RuleBody, caller: Compliance) -> dict[str, Any]:
    """Write a new rule (see docs/policy.md for its fields)."""
    rt = runtime(request)
    rule = Rule.from_json(body.given())
    now = rt.clock.now()

    def create() -> dict[str, Any] | None:
        with rt.db.transaction() as session:
            if session.get(Policy, rule.id) is not None:
                return None
            row = Policy(
                id=rule.id,
                title=rule.title,
                body=rule.to_json(),
                created_at=now,
                created_by=caller[0],
            )
            session.add(row)
            bump_catalog(session)
            return _policy_json(row, [])

    result: dict[str, Any] | None = await in_thread(create)
    if result is None:
        raise HTTPException(409, f"rule {rule.id} exists; amend it instead")
    await in_thread(rt.reload_catalog_if_changed)
    await rt.record([AuditRecord(now, "policy", f"token:{caller[0]}", rule.id, rule.to_json())])
    return result


@router.post("/policies/{policy_id}/amendments", status_code=201, tags=["rules"])
async def amend_policy(
    request: Request, policy_id: str, body: AmendmentBody, caller: Compliance
) -> dict[str, Any]:
    """Amend a rule from ``effective_from`` on; the rule's history is kept. One effective
    before today is back-dated: 422 unless it says ``backdated: true`` with a ``reason``."""
    rt = runtime(request)
    now = rt.clock.now()
    amendment = Amendment(
        rule_id=policy_id,
        effective_from=body.effective_from,
        changes=body.changes.given(),
        note=body.note,
        recorded_at=now,
        backdated=body.backdated,
        reason=body.reason,
    )

    def add() -> tuple[dict[str, Any], Amendment] | None:
        with rt.db.transaction() as session:
            row = session.get(Policy, policy_id)
            if row is None:
                return None
            amendment.check_recording(now)  # back-dated without saying so: 422
            earlier = [
                amendment_of(a)
                for a in session.scalars(
                    select(PolicyAmendment).where(PolicyAmendment.policy_id == policy_id)
                )
            ]
            # Replaying the rule's whole history refuses an amendment that would leave it
            # invalid on some day (InvalidAmendmentError: 422), before anything is stored.
            rule_history(Rule.from_json(row.body), [*earlier, amendment])
            stored = PolicyAmendment(
                policy_id=policy_id,
                effective_from=amendment.effective_from,
                changes=dict(amendment.changes),
                note=amendment.note,
                created_at=now,
                created_by=caller[0],
                recorded_at=now,
                backdated=amendment.backdated,
                reason=amendment.reason,
            )
            session.add(stored)
            session.flush()
            bump_catalog(session)
            amendments = list(
                session.scalars(
                    select(PolicyAmendment)
                    .where(PolicyAmendment.policy_id == policy_id)
                    .order_by(PolicyAmendment.id)
                )
            )
            return _policy_json(row, amendments), amendment_of(stored)

    added: tuple[dict[str, Any], Amendment] | None = await in_thread(add)
    if added is None:
        raise HTTPException(404, f"no rule {policy_id}")
    result, recorded = added
    await in_thread(rt.reload_catalog_if_changed)
    payload = {**recorded.to_json(), "summary": _recording_summary(recorded, now)}
    actor = f"token:{caller[0]}"
    await rt.record([AuditRecord(now, "policy-amendment", actor, policy_id, payload)])
    return result


# --- audit --------------------------------------------------------------------------


@router.get("/audit/verify", tags=["audit"])
async def verify_audit(request: Request, _caller: Auditor) -> dict[str, Any]:
    """Walk the whole audit chain and report whether it is unbroken."""
    rt = runtime(request)
    result = await in_thread(lambda: verify(rt.db))
    return {
        "ok": result.ok,
        "entries": result.count,
        "problem": None if result.problem is None else str(result.problem),
    }
