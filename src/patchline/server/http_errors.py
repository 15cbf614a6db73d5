"""The one place Patchline errors become HTTP statuses."""

from __future__ import annotations

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
