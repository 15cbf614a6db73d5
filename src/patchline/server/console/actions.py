"""What the console's buttons post: sign-in and sign-out, rollout actions, approving a
proposal, verifying and exporting the audit chain, setting a model's support promise.
Each checks the CSRF token and the role as the management API would, then calls the same
function the API endpoint calls."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, Response

from patchline.audit import verify
from patchline.audit.chain import read_head
from patchline.audit.export import export
from patchline.audit.keys import audit_signer
from patchline.fleet import support
from patchline.repository.publisher import Repository
from patchline.server.api.bodies import IsoDate
from patchline.server.api.deps import Rt, actor, in_session, in_thread
from patchline.server.api.proposals import approve_as
from patchline.server.api.rollouts import rollout_action, start_rollout
from patchline.server.auth import hash_token, role_of
from patchline.server.console.access import (
    SESSION_CLOCK,
    AuditWriter,
    ReadWriter,
    ReleaseWriter,
    Seen,
    check_csrf,
    context,
)
from patchline.server.console.compliance_page import deliveries, timeline
from patchline.server.console.render import page, remember
from patchline.server.console.rollout_form import rollout_form_spec
from patchline.server.console.session import ConsoleSession

router = APIRouter()


def _local(path: str | None) -> str:
    """``path`` when it is a path on this site, else the overview."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


@router.get("/sign-in", include_in_schema=False)
async def sign_in_page(request: Request, seen: Seen, next: str = "/") -> Response:
    """The sign-in form."""
    return page(request, seen, "sign_in.html", title="Sign in", next=_local(next), error="")


@router.post("/sign-in", include_in_schema=False)
async def sign_in(
    request: Request,
    rt: Rt,
    seen: Seen,
    token: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the management token; on success a new signed-in session, on failure the
    form again (401), and 429 after too many failures from one address."""
    await check_csrf(request, seen)
    ctx = context(request)
    address = request.client.host if request.client else "unknown"
    if ctx.failures.retry_after(address):
        raise HTTPException(429, "too many failed sign-ins from this address; wait a minute")
    caller = await in_session(rt, lambda s: role_of(s, token.strip()))
    if caller is None:
        ctx.failures.take(address)
        rt.metrics.failed_signins.labels("console").inc()
        return page(
            request,
            seen,
            "sign_in.html",
            status_code=401,
            title="Sign in",
            next=_local(next),
            error="Unknown or revoked token.",
        )
    seen.session = seen.session.signed_in(hash_token(token.strip()), SESSION_CLOCK.now())
    seen.set_cookie = True
    return remember(RedirectResponse(_local(next), status_code=303), request, seen)


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, seen: Seen) -> Response:
    """End the session."""
    await check_csrf(request, seen)
    seen.session = ConsoleSession.fresh()
    seen.set_cookie = True
    return remember(RedirectResponse("/sign-in", status_code=303), request, seen)


@router.post("/rollouts/{rollout_id}/{action}", include_in_schema=False)
async def act_on_rollout(
    request: Request,
    rt: Rt,
    rollout_id: Annotated[str, PathParam(max_length=32)],
    action: Literal["pause", "resume", "abort", "advance"],
    seen: ReleaseWriter,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Pause, resume, abort or advance a rollout, as ``POST /api/rollouts/{id}/{action}``
    does (advancing may be held for a second person)."""
    assert seen.caller is not None
    result = await rollout_action(rt, seen.caller, rollout_id, action, reason or "from the console")
    done = "held" if isinstance(result, JSONResponse) else action
    return RedirectResponse(f"/rollouts/{rollout_id}?done={done}", status_code=303)


@router.post("/rollouts", include_in_schema=False)
async def start_rollout_form(
    request: Request,
    rt: Rt,
    seen: ReleaseWriter,
    model: Annotated[str, Form(max_length=64)],
    build: Annotated[str, Form(max_length=64)],
    phases: Annotated[str, Form(max_length=200)],
    soak_hours: Annotated[float, Form(ge=0, le=87_600)] = 24,
    min_healthy: Annotated[int, Form(ge=0, le=2**31 - 1)] = 1,
    regions: Annotated[str, Form(max_length=2000)] = "",
    stepping_stone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Start a rollout from the rollouts page's form, as ``POST /api/rollouts`` does
    (held for a second person when ``rollout.start`` needs one). ``phases`` are the
    percentages of the selection, comma-separated ("1, 10, 100"); ``regions`` optional,
    comma-separated; the brakes are the defaults."""
    assert seen.caller is not None
    spec = rollout_form_spec(model, build, phases, soak_hours, min_healthy, regions, stepping_stone)
    result = await start_rollout(rt, seen.caller, spec)
    if isinstance(result, JSONResponse):
        return RedirectResponse("/rollouts?done=held", status_code=303)
    return RedirectResponse(f"/rollouts/{result.id}?done=started", status_code=303)


@router.post("/proposals/{proposal_id}/approve", include_in_schema=False)
async def approve_proposal(
    request: Request,
    rt: Rt,
    proposal_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    seen: ReadWriter,
    back: Annotated[str, Form(max_length=2048)] = "/rollouts",
) -> Response:
    """Approve a pending proposal as a second person, as ``POST
    /api/proposals/{id}/approve`` does (not its proposer; a role that may make it)."""
    assert seen.caller is not None
    await approve_as(rt, seen.caller, proposal_id)
    return RedirectResponse(_local(back), status_code=303)


@router.post("/compliance/verify", include_in_schema=False)
async def verify_chain(request: Request, rt: Rt, seen: AuditWriter) -> Response:
    """Walk the whole audit chain and show whether it is unbroken."""
    result = await in_thread(lambda: verify(rt.db))
    head = await in_session(rt, read_head)
    delivered = await in_session(rt, deliveries)
    day = rt.clock.now().date()
    return page(
        request,
        seen,
        "compliance.html",
        title="Compliance",
        timeline=timeline(rt.director.catalog, day, None),
        day=day,
        known_on=None,
        head=head,
        deliveries=delivered,
        verification=result,
    )


@router.post("/compliance/export", include_in_schema=False)
async def export_chain(
    rt: Rt,
    seen: AuditWriter,
    start: Annotated[IsoDate, Form(alias="from")],
    end: Annotated[IsoDate, Form(alias="to")],
) -> Response:
    """The entries dated ``from`` to ``to`` and their signed summary, as a zip of the
    directory ``patchline audit export`` writes."""
    if end < start:
        raise HTTPException(422, "the last day is before the first")
    now = rt.clock.now()

    def build() -> bytes:
        repo = Repository.open(rt.settings.home, rt.settings, clock=rt.clock)
        scratch = Path(tempfile.mkdtemp(prefix="patchline-audit-export-"))
        try:
            export(rt.db, start, end, scratch / "export", audit_signer(repo.keyring, now), now=now)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted((scratch / "export").iterdir()):
                    archive.write(file, file.name)
            return buffer.getvalue()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    data = await in_thread(build)
    name = f"audit-{start.isoformat()}-{end.isoformat()}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/support", include_in_schema=False)
async def set_support(
    rt: Rt,
    seen: ReleaseWriter,
    model: Annotated[str, Form(min_length=1, max_length=64)],
    security_until: Annotated[IsoDate, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Set a model's promised end of security updates, as ``PUT /api/support/{model}``."""
    assert seen.caller is not None
    caller = seen.caller
    now = rt.clock.now()
    await in_session(
        rt, lambda s: support.set_promise(s, model, security_until, note, actor(caller), now)
    )
    return RedirectResponse("/support?done=set", status_code=303)
