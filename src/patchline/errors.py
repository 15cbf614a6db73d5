"""The one exception tree of Patchline.

Errors are named by meaning so that callers can catch a family (``RepositoryError``)
or one case (``UnknownModelError``). The CLI maps them to messages and exit codes in
one place (``patchline.cli.main``); the server will map them to HTTP statuses in one
place too. Every message is written for a person: what is wrong, and what to do.
"""

from __future__ import annotations


class PatchlineError(Exception):
    """Base of every error Patchline raises on purpose."""

    #: Process exit code the CLI uses for this family of errors.
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nWhat to do: {self.hint}"
        return self.message


class UsageError(PatchlineError):
    """An argument or value given by the user is malformed or out of range."""

    exit_code = 2


class NotFoundError(UsageError):
    """No token, device or release by the name or id given."""


class AlreadyWithdrawnError(UsageError):
    """The token is already revoked, the device decommissioned, the release yanked."""


class ConfigError(PatchlineError):
    """The configuration file or a setting is missing or invalid."""

    exit_code = 3


# --- repository (publishing side) -------------------------------------------------


class RepositoryError(PatchlineError):
    """Something is wrong with a signed repository or an operation on it."""

    exit_code = 4


class RepositoryNotFoundError(RepositoryError):
    """The directory holds no Patchline repository."""


class RepositoryExistsError(RepositoryError):
    """A repository already exists where a new one was to be created."""


class RepositoryBusyError(RepositoryError):
    """Another process holds the repository's publish lock."""


class RepositoryCorruptError(RepositoryError):
    """The published tree is inconsistent (missing or unverifiable metadata)."""


class UnknownModelError(RepositoryError):
    """A device model is not known to the repository."""


class ModelExistsError(RepositoryError):
    """A device model is already in the repository."""


class ReleaseRejectedError(RepositoryError):
    """A release cannot be published (duplicate, downgrade, bad image...)."""


class ImageError(ReleaseRejectedError):
    """An image file cannot be read or is unusable."""


class SigningError(RepositoryError):
    """Metadata could not be signed by the keys its role requires."""


class KeyError_(RepositoryError):
    """A private key is missing, unreadable, or its passphrase is wrong."""


class PassphraseError(KeyError_):
    """No passphrase was available, or it did not decrypt the key."""


class BundleError(RepositoryError):
    """An offline bundle cannot be made: no offline key, unknown build, output not empty."""


# --- delta ------------------------------------------------------------------------


class DeltaError(PatchlineError):
    """A binary delta could not be built or applied."""

    exit_code = 5


class CorruptDeltaError(DeltaError):
    """A delta's bytes are malformed, truncated or fail their checks."""


class DeltaSourceMismatchError(DeltaError):
    """The source image is not the one the delta was built from."""


class DeltaResultMismatchError(DeltaError):
    """Applying a delta produced an image whose hash is not the expected one."""


# --- device agent -----------------------------------------------------------------


class AgentError(PatchlineError):
    """The device agent could not finish what it was asked to do."""

    exit_code = 10


class DeviceSetupError(AgentError):
    """The device directory is missing, incomplete or malformed."""

    exit_code = 11


class DeviceBusyError(AgentError):
    """Another agent process is working on this device directory."""

    exit_code = 16


class NoUpdateSourceError(AgentError):
    """No source (bundle, server, mirror) could be reached and trusted."""

    exit_code = 12


class UpdateRefusedError(AgentError):
    """An update was offered, but every offer failed verification or the rules."""

    exit_code = 13


class InstallFailedError(AgentError):
    """A verified update could not be written to the inactive slot."""

    exit_code = 14


class RolledBackError(AgentError):
    """The new build failed to boot healthy; the device went back to its old slot."""

    exit_code = 15


class SourceError(AgentError):
    """One source failed; the agent records why and moves on to the next."""


class SourceUnreachableError(SourceError):
    """The source could not be reached (connection refused, DNS, timeout, no folder)."""


class ServerBusyError(SourceUnreachableError):
    """The server answered but cannot serve now (503, 429 or another server error);
    ``retry_after`` is the seconds it asked the device to wait (None: it named none)."""

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class NoBundleError(SourceError):
    """A local folder holds no update bundle for this device's model."""


class MetadataRefusedError(SourceError):
    """The source's TUF metadata failed verification (signature, expiry, rollback)."""


class CardFileRefusedError(MetadataRefusedError):
    """A file on a card is a link, not a regular file, or larger than any metadata may be."""


class TargetRefusedError(SourceError):
    """A target's bytes failed verification (length or hash)."""


class EndlessDataError(TargetRefusedError):
    """The source sent more bytes than the signed length of the target."""


class SlowRetrievalError(SourceError):
    """The source sent bytes too slowly, or the overall deadline passed."""


class DownloadFailedError(SourceError):
    """A transfer failed for another reason (HTTP status, reset connection)."""


class NotEligibleError(SourceError):
    """The signed eligibility rules or the director do not allow this device to install."""


class DowngradeError(SourceError):
    """The offered build or security patch level is older than the running one."""


class DirectorRefusedError(SourceError):
    """The director's answer is unsigned, expired, for another device, or disagrees with
    the image repository."""


# --- mirror (verified copies of the repository) -----------------------------------


class MirrorError(PatchlineError):
    """A mirror sync could not finish; the mirror still serves its previous state."""

    exit_code = 30


class MirrorSetupError(MirrorError):
    """The mirror folder or its trusted root is missing, unreadable or not the one given."""

    exit_code = 31


class MirrorBusyError(MirrorError):
    """Another sync holds this mirror's lock."""

    exit_code = 32


class MirrorSourceUnreachableError(MirrorError):
    """The source could not be reached, or lacks a file its own metadata names."""

    exit_code = 33


class MirrorMetadataRefusedError(MirrorError):
    """The source's metadata failed verification (signature, hash, length, delegation)."""

    exit_code = 34


class MirrorRollbackError(MirrorMetadataRefusedError):
    """The source serves metadata older than what the mirror already holds."""


class MirrorExpiredError(MirrorMetadataRefusedError):
    """The source serves expired metadata (a freeze attack, or a repository not refreshed)."""


class MirrorTargetRefusedError(MirrorError):
    """A target's bytes do not match its signed length and hashes."""

    exit_code = 35


# --- audit chain ------------------------------------------------------------------


class AuditError(PatchlineError):
    """The audit chain could not be written, read or exported."""

    exit_code = 20


class AuditRecordError(AuditError):
    """An audit record is malformed (naive time, payload not JSON, field too long)."""


class AuditChainBrokenError(AuditError):
    """The chain fails verification: an entry was edited, inserted or deleted, or the head
    does not match the last entry."""

    exit_code = 21


class AuditExportInvalidError(AuditError):
    """An export directory fails its checks (signature, file hash, or chain links)."""

    exit_code = 22


# --- policy (delivery rules) ------------------------------------------------------


class PolicyError(PatchlineError):
    """A delivery rule, an amendment or the facts given to the director are unusable."""


class InvalidRuleError(UsageError, PolicyError):
    """A delivery rule is malformed; the message names the rule and the field."""


class InvalidAmendmentError(InvalidRuleError):
    """An amendment changes an unknown field, changes the id, or leaves the rule invalid."""


class NotAuthorisedError(PolicyError):
    """No delivery rule in force allows a release, or signed eligibility cannot state the
    rules that limit it; the release is not signed."""

    exit_code = 6


class InvalidFactsError(UsageError, PolicyError):
    """Device or release facts handed to the director are malformed."""


# --- signing continuity --------------------------------------------------------------


class ContinuityError(RepositoryError):
    """A successor cannot be named or cannot take over (unknown, already named, bad key)."""


# --- fleet simulation ----------------------------------------------------------------


class SimulationError(PatchlineError):
    """A fleet simulation cannot run: its server did not start, or refused a call the
    simulation needs (releases, rules, the device listing)."""

    exit_code = 50


# --- two-person rule -------------------------------------------------------------------


class ApprovalError(UsageError):
    """A proposal cannot be approved or rejected as asked."""


class SelfApprovalError(ApprovalError):
    """The proposer of a change tried to approve it: a second person must."""


class ProposalClosedError(ApprovalError):
    """The proposal was already approved or rejected."""


# --- staged rollouts -------------------------------------------------------------------


class RolloutConflictError(UsageError):
    """A rollout cannot make this change from its state (resume an aborted one, advance a
    halted one), or the release already has an open rollout."""


class GroupConflictError(UsageError):
    """A device group exists already, or cannot be removed while an open rollout
    selects it."""
