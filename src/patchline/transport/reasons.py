"""python-tuf's exceptions (and the fetcher's own) sorted by meaning, with a plain reason.

Each side (agent, mirror) words a refusal for its reader and picks its own error
class; what happened is decided here, once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tuf.api import exceptions as tuf_errors

from patchline.transport.fetcher import NotMetadataError, RedirectLoopError, SlowMetadataError


class TufFailure(enum.Enum):
    """What went wrong reading a repository, by meaning."""

    NOT_METADATA = "an HTML page where metadata was asked for"
    REDIRECT_LOOP = "too many redirects"
    EXPIRED = "expired metadata"
    ROLLBACK = "metadata older than what is trusted"
    UNSIGNED = "metadata not signed by the trusted keys"
    HASH_MISMATCH = "metadata that does not match its signed length or hash"
    REFUSED = "metadata refused for another reason"
    HTTP_STATUS = "an HTTP error status"
    TOO_LONG = "metadata longer than allowed"
    SLOW = "metadata sent too slowly (slow retrieval)"
    UNREACHABLE = "a network failure"


@dataclass(frozen=True)
class TufReason:
    """One failure: its kind, the exception's own words (for UNREACHABLE, the network
    reason; for NOT_METADATA, the Content-Type answered) and the HTTP status, if any."""

    failure: TufFailure
    detail: str
    status: int = 0

    def html_page(self, who: str) -> str:
        """A NOT_METADATA failure in words, with ``who`` (e.g. ``the mirror``) as subject."""
        return (
            f"{who} answered an HTML page, not TUF metadata (Content-Type "
            f"{self.detail}; a captive portal or a wrong URL?)"
        )


def classify_tuf_error(exc: BaseException) -> TufReason:
    """What ``exc`` (raised by ngclient or the fetcher under it) means."""
    if isinstance(exc, NotMetadataError):
        return TufReason(TufFailure.NOT_METADATA, exc.content_type)
    if isinstance(exc, tuf_errors.DownloadHTTPError):
        return TufReason(TufFailure.HTTP_STATUS, str(exc), exc.status_code)
    for kind, failure in _BY_TYPE:
        if isinstance(exc, kind):
            return TufReason(failure, str(exc))
    return TufReason(TufFailure.UNREACHABLE, network_reason(exc))


#: Checked in order: subclasses before the classes they refine.
_BY_TYPE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], TufFailure], ...] = (
    (RedirectLoopError, TufFailure.REDIRECT_LOOP),
    (SlowMetadataError, TufFailure.SLOW),
    (tuf_errors.ExpiredMetadataError, TufFailure.EXPIRED),
    (
        (tuf_errors.BadVersionNumberError, tuf_errors.EqualVersionNumberError),
        TufFailure.ROLLBACK,
    ),
    (tuf_errors.UnsignedMetadataError, TufFailure.UNSIGNED),
    (tuf_errors.LengthOrHashMismatchError, TufFailure.HASH_MISMATCH),
    (tuf_errors.RepositoryError, TufFailure.REFUSED),
    (tuf_errors.DownloadLengthMismatchError, TufFailure.TOO_LONG),
)


def network_reason(exc: BaseException) -> str:
    """A short reason for a network failure: connection refused, timed out, ..."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    texts = " ".join(str(e).lower() for e in chain)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in texts:
        return "connection refused"
    if "name or service not known" in texts or "failed to resolve" in texts:
        return "host name not found"
    if "timed out" in texts or any(
        isinstance(e, TimeoutError | tuf_errors.SlowRetrievalError) for e in chain
    ):
        return "timed out"
    root_cause = chain[-1]
    if root_cause is exc:
        return f"download failed ({exc})"
    return f"download failed ({exc}: {type(root_cause).__name__}: {root_cause})"
