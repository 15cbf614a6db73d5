"""The tamper-evident audit chain: every decision and report, hash-linked, provable.

The public surface::

    AuditRecord(at, kind, actor, subject, payload)     one thing to record
    append(session, records) -> list[AuditEntry]       in the caller's transaction
    verify(db_or_session, batch=5000) -> VerifyResult  the first problem, if any
    export(db, start, end, out_path, signer, now=...)  signed evidence for a date range
    verify_export(path) -> ExportSummary               check that evidence offline
    audit_signer(keyring, now) -> Signer               the repository's audit key

See docs/audit.md for the chain format and the hash definition.
"""

from patchline.audit.chain import (
    GENESIS,
    ChainHead,
    VerifyProblem,
    VerifyResult,
    append,
    read_head,
    verify,
)
from patchline.audit.export import ExportSummary, export, verify_export
from patchline.audit.format import GENESIS_HASH, AuditRecord, canonical_json, entry_hash
from patchline.audit.keys import AUDIT_ROLE, audit_signer

__all__ = [
    "AUDIT_ROLE",
    "GENESIS",
    "GENESIS_HASH",
    "AuditRecord",
    "ChainHead",
    "ExportSummary",
    "VerifyProblem",
    "VerifyResult",
    "append",
    "audit_signer",
    "canonical_json",
    "entry_hash",
    "export",
    "read_head",
    "verify",
    "verify_export",
]
