"""The one place Patchline errors become HTTP statuses."""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from patchline import errors
from patchline.director.rules_service import RuleExistsError
from patchline.fleet.enrollment import EnrollmentConflictError

_STATUS: list[tuple[type[errors.PatchlineError], int]] = [
    (errors.UnknownModelError, 404),
    (errors.ReleaseRejectedError, 409),
    (errors.ModelExistsError, 409),
    (errors.NotAuthorisedError, 409),
    (EnrollmentConflictError, 409),
    (RuleExistsError, 409),
    (errors.SelfApprovalError, 403),
    (errors.ProposalClosedError, 409),
    (errors.RolloutConflictError, 409),
    (errors.GroupConflictError, 409),
    (errors.RepositoryBusyError, 503),
    (errors.PassphraseError, 503),
    (errors.SigningError, 503),
    (errors.NotFoundError, 404),
    (errors.AlreadyWithdrawnError, 409),
    (errors.UsageError, 422),
    (errors.RepositoryNotFoundError, 404),
]


def status_for(exc: errors.PatchlineError) -> int:
    """The HTTP status that means ``exc``: 4xx for what the caller can fix, 5xx else."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def with_every_allowed_method(request: Request, exc: HTTPException) -> HTTPException:
    """``exc`` itself, or for a 405, one whose ``Allow`` names every method the path
    takes: Starlette names only those of the first route matching the path, and
    FastAPI makes a route per method."""
    if exc.status_code != 405:
        return exc
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
    return HTTPException(405, exc.detail, headers)
