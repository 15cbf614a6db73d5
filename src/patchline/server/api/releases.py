"""``/api/releases``: list, publish (optionally under the delivery rules), sync from the
repository, change how a release is offered, yank."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals.appliers import publish_payload
from patchline.audit import AuditRecord
from patchline.director import offers
from patchline.director.publishing import delivery_rules, publish
from patchline.director.yank import withdraw
from patchline.repository.publisher import Repository
from patchline.repository.releases import ReleaseRequest
from patchline.server.api.bodies import OfferSettings, YankBody
from patchline.server.api.deps import Reader, ReleaseManager, Rt, actor, in_session, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import ProposalOut, Published, ReleaseOut, Synced
from patchline.server.api.two_person import held_for_second_person, hold_if_required
from patchline.wire.release import Eligibility, UpdateClass, parse_date, parse_regions

router = api_router(tags=["releases"])
ReleaseId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
HELD: dict[int | str, dict[str, Any]] = {
    202: {"model": ProposalOut, "description": "Held for a second person's approval."}
}
#: Where uploads held for a second person wait, under the server's home.
STAGED = "proposals"


def _stage(home: Path, name: str, image: UploadFile) -> Path:
    folder = home / STAGED / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / name
    with path.open("wb") as out:
        shutil.copyfileobj(image.file, out, 1 << 20)
    return path


def discard_staged(home: Path, payload: dict[str, Any]) -> None:
    """Delete the upload a publish proposal kept, once it is decided."""
    image = Path(str(payload.get("image", "")))
    if image.parent.parent == home / STAGED:
        shutil.rmtree(image.parent, ignore_errors=True)


@router.get("/releases")
async def list_releases(rt: Rt, _caller: Reader, model: str | None = None) -> list[ReleaseOut]:
    """Every signed target known to the server, newest first."""
    return await in_session(
        rt, lambda s: [ReleaseOut.model_validate(r) for r in offers.list_releases(s, model)]
    )


@router.post("/releases", status_code=201, responses=HELD, response_model=Published)
async def publish_release(
    rt: Rt,
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
) -> Published | JSONResponse:
    """Sign and publish an uploaded image (keys and passphrases of this server's home).

    With ``under_rules``, only if a delivery rule in force allows it, with that rule's
    limits and name signed into it as well as the ones given (409 naming the rule
    otherwise), so that mirrors and SD cards carry the rules to devices. 202 with a
    proposal (the upload kept until it is decided) when ``release.publish-under-rules``
    needs a second person.
    """
    eligibility = Eligibility(
        regions_allowed=parse_regions([regions_allowed]),
        regions_excluded=parse_regions([regions_excluded]),
        deployed_before=parse_date("deployed_before", deployed_before) if deployed_before else None,
        valid_until=parse_date("valid_until", valid_until) if valid_until else None,
    )
    spl = parse_date("security_patch_level", security_patch_level)
    name = Path(image.filename or "image.img").name

    def request_for(path: Path) -> ReleaseRequest:
        return ReleaseRequest(
            image=path,
            model=model,
            build=build,
            security_patch_level=spl,
            update_class=update_class,
            eligibility=eligibility,
            notes=notes,
        )

    action = Action.RELEASE_PUBLISH_UNDER_RULES
    if under_rules and held_for_second_person(rt, action):
        staged = await in_thread(lambda: _stage(rt.settings.home, name, image))
        request = request_for(staged)
        payload = publish_payload(request, caller[0])
        try:
            held = await hold_if_required(
                rt, caller, action, payload, f"publish {model} {build} under the rules"
            )
        except BaseException:
            discard_staged(rt.settings.home, payload)
            raise
        assert held is not None
        return held

    def sign() -> Published:
        rules = None
        if under_rules:
            with rt.db.transaction() as session:
                rules = delivery_rules(session)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            with path.open("wb") as out:
                shutil.copyfileobj(image.file, out, 1 << 20)
            request = request_for(path)
            repo = Repository.open(rt.settings.home, rt.settings, clock=rt.clock)
            published = publish(repo, request, rules=rules).release
        rt.sync_releases()
        return Published(
            target_path=published.target_path,
            sha256=published.sha256,
            eligibility=published.info.eligibility.to_json(),
        )

    result = await in_thread(sign)
    record = AuditRecord(
        rt.clock.now(), "publish", actor(caller), result.target_path, result.model_dump()
    )
    await rt.record([record])
    return result


@router.post("/releases/sync")
async def sync_releases(rt: Rt, caller: ReleaseManager) -> Synced:
    """Read newly signed targets from the repository now (also done every few seconds)."""
    new = await in_thread(rt.sync_releases)
    await in_thread(rt.reload_catalog_if_changed)
    return Synced(new=new)


@router.patch("/releases/{release_id:int}")
async def change_offer(
    rt: Rt, release_id: ReleaseId, settings: OfferSettings, caller: ReleaseManager
) -> ReleaseOut:
    """Change a release's battery floor or allowed networks."""
    now = rt.clock.now()

    def change(session: Session) -> ReleaseOut:
        row = offers.change_offer(
            session,
            release_id,
            min_battery_percent=settings.min_battery_percent,
            allowed_networks=settings.allowed_networks,
            actor=actor(caller),
            now=now,
        )
        return ReleaseOut.model_validate(row)

    result = await in_session(rt, change)
    await in_thread(rt.reload_catalog_if_changed)
    return result


@router.post("/releases/{release_id:int}/yank")
async def yank_release(
    rt: Rt, release_id: ReleaseId, body: YankBody, caller: ReleaseManager
) -> ReleaseOut:
    """Withdraw a release: no device is offered it from now on (the next-best allowed
    build is); devices already on it keep it. With ``lapse_signed`` and a repository in
    the server's home, its signed eligibility is re-signed valid until today too."""
    now = rt.clock.now()
    lapse = body.lapse_signed and rt.repository is not None

    def change() -> ReleaseOut:
        with rt.db.transaction() as session:
            withdraw(
                session,
                release_id,
                body.reason,
                actor(caller),
                now,
                (lambda: Repository.open(rt.settings.home, rt.settings, clock=rt.clock))
                if lapse
                else None,
            )
        rt.sync_releases()
        with rt.db.transaction() as session:
            return ReleaseOut.model_validate(offers.get_release(session, release_id))

    result = await in_thread(change)
    await in_thread(rt.reload_catalog_if_changed)
    return result
