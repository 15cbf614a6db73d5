"""``/api/audit``: the state of the audit chain."""

from __future__ import annotations

from patchline.audit import verify
from patchline.server.api.deps import Auditor, Rt, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import AuditVerification

router = api_router(tags=["audit"])


@router.get("/audit/verify")
async def verify_audit(rt: Rt, _caller: Auditor) -> AuditVerification:
    """Walk the whole audit chain and report whether it is unbroken."""
    result = await in_thread(lambda: verify(rt.db))
    problem = None if result.problem is None else str(result.problem)
    return AuditVerification(ok=result.ok, entries=result.count, problem=problem)
