"""Evidence for an auditor: a date range of the chain, signed, checkable offline.

An export directory holds ``entries.jsonl`` (one canonical JSON entry a line, seq order,
with hashes and prev hashes) and ``summary.json``: ``{"signed": {...}, "signatures":
[{"keyid", "sig"}], "key": {"keyid", "keytype", "scheme", "keyval"}}``. The signature
(Ed25519, over the canonical JSON of ``signed``) covers the range, the first and last
links, the head at export time, and the entries file's length and sha256.

Checking an export also checks every offline install receipt in it against its
device's Ed25519 signature (``patchline.audit.receipts``), so a receipt the
server (or anyone holding the audit key) made up or edited is found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signature, Signer, SSlibKey
from securesystemslib.signer._utils import compute_default_keyid
from sqlalchemy import func, select

from patchline.audit.chain import ENTRY_COLUMNS, GENESIS, ChainHead, read_head
from patchline.audit.format import canonical_json, entry_hash, format_at
from patchline.audit.receipts import ReceiptCheck
from patchline.errors import AuditChainBrokenError, AuditError, AuditExportInvalidError
from patchline.fsutil import atomic_writer, write_atomic
from patchline.store.db import Database
from patchline.store.models import AuditEntry

FORMAT = "patchline.audit-export/1"
ENTRIES_FILE = "entries.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds: the range, its first and last links, and the head then."""

    start: date
    end: date
    count: int
    first_seq: int | None
    first_prev_hash: str | None
    last_seq: int | None
    last_hash: str | None
    head: ChainHead
    exported_at: str
    keyid: str
    #: Offline install receipts whose device signature verify_export checked.
    receipts_verified: int = 0

    def signed(self, entries_length: int, entries_sha256: str) -> dict[str, Any]:
        """The document the signature covers."""
        return {
            "format": FORMAT,
            "range": {"from": self.start.isoformat(), "to": self.end.isoformat()},
            "count": self.count,
            "first": {"seq": self.first_seq, "prev_hash": self.first_prev_hash},
            "last": {"seq": self.last_seq, "hash": self.last_hash},
            "head": {"seq": self.head.seq, "hash": self.head.hash},
            "exported_at": self.exported_at,
            "entries": {"file": ENTRIES_FILE, "length": entries_length, "sha256": entries_sha256},
        }


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise AuditError(f"the export range ends ({end}) before it starts ({start})")
    low = datetime.combine(start, time(), UTC)
    return low, datetime.combine(end + timedelta(days=1), time(), UTC)


def _entry_line(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": format_at(row.at),
        "kind": row.kind,
        "actor": row.actor,
        "subject": row.subject,
        "payload": row.payload,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _check_link(line: dict[str, Any], seq: int, prev: str | None) -> str | None:
    """What is wrong with one exported entry given its expected seq and prev hash."""
    if line["seq"] != seq:
        return f"entry {seq} is missing (found {line['seq']})"
    if prev is not None and line["prev_hash"] != prev:
        return f"entry {seq} does not link to the entry before it"
    fields = ("seq", "at", "kind", "actor", "subject", "payload", "prev_hash")
    if entry_hash(*(line[k] for k in fields)) != line["hash"]:
        return f"entry {seq} does not match its hash"
    return None


def _rows(db: Database, first: int, last: int, batch: int) -> Iterator[Any]:
    after = first - 1
    while after < last:
        with db.transaction() as session:
            query = select(*ENTRY_COLUMNS).where(AuditEntry.seq > after, AuditEntry.seq <= last)
            rows = session.execute(query.order_by(AuditEntry.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def export(
    db: Database,
    start: date,
    end: date,
    out_path: Path,
    signer: Signer,
    *,
    now: datetime,
    batch: int = 5000,
) -> ExportSummary:
    """Write the entries dated ``start`` to ``end`` (UTC days, inclusive) and a signed summary.

    The entries are the unbroken seq span from the first to the last entry dated in the
    range, so the links can be re-verified (an entry dated outside the range but inside
    the span is included). Raises AuditChainBrokenError when the span does not verify.
    """
    low, high = _day_bounds(start, end)
    with db.transaction() as session:
        head = read_head(session) or GENESIS
        dated = (AuditEntry.at >= low) & (AuditEntry.at < high) & (AuditEntry.seq <= head.seq)
        first, last = session.execute(
            select(func.min(AuditEntry.seq), func.max(AuditEntry.seq)).where(dated)
        ).one()
    out_path.mkdir(parents=True, exist_ok=True)
    digest, length, count = hashlib.sha256(), 0, 0
    first_prev = last_hash = None
    with atomic_writer(out_path / ENTRIES_FILE) as out:
        if first is not None:
            for row in _rows(db, first, last, batch):
                line = _entry_line(row)
                problem = _check_link(line, first + count, last_hash)
                if problem:
                    raise AuditChainBrokenError(f"cannot export: {problem}")
                data = (canonical_json(line) + "\n").encode("utf-8")
                out.write(data)
                digest.update(data)
                length += len(data)
                first_prev = first_prev or row.prev_hash
                last_hash = row.hash
                count += 1
            if first + count - 1 != last:
                raise AuditChainBrokenError(f"cannot export: entries {first}..{last} are not whole")
    public = signer.public_key
    summary = ExportSummary(
        start=start,
        end=end,
        count=count,
        first_seq=first,
        first_prev_hash=first_prev,
        last_seq=last,
        last_hash=last_hash,
        head=head,
        exported_at=format_at(now),
        keyid=public.keyid,
    )
    signed = summary.signed(length, digest.hexdigest())
    signature = signer.sign(canonical_json(signed).encode("utf-8"))
    document = {
        "signed": signed,
        "signatures": [signature.to_dict()],
        "key": {"keyid": public.keyid, **public.to_dict()},
    }
    write_atomic(out_path / SUMMARY_FILE, json.dumps(document, indent=1).encode())
    return summary


def _invalid(path: Path, what: str) -> AuditExportInvalidError:
    return AuditExportInvalidError(f"the export in {path} is not valid: {what}")


def _check_signature(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    key_doc = dict(document["key"])
    keyid = key_doc.pop("keyid")
    if compute_default_keyid(key_doc["keytype"], key_doc["scheme"], key_doc["keyval"]) != keyid:
        raise _invalid(path, "the key id does not match the public key")
    key = SSlibKey.from_dict(keyid, key_doc)
    signed: dict[str, Any] = document["signed"]
    signatures = [Signature.from_dict(dict(s)) for s in document["signatures"]]
    if not any(s.keyid == keyid for s in signatures):
        raise _invalid(path, f"no signature by key {keyid[:16]}")
    try:
        for signature in signatures:
            if signature.keyid == keyid:
                key.verify_signature(signature, canonical_json(signed).encode("utf-8"))
    except Exception:
        raise _invalid(path, "the summary's signature does not verify") from None
    if signed.get("format") != FORMAT:
        raise _invalid(path, f"the format is not {FORMAT}")
    return signed


def verify_export(path: Path, *, trusted_keyids: frozenset[str] | None = None) -> ExportSummary:
    """Check an export directory offline; return its summary or raise AuditExportInvalidError.

    Checks the summary's signature with the key it names (and, given ``trusted_keyids``,
    that the key is one of them), the entries file's length and hash, that the entries
    are one unbroken, correctly hashed span from the first to the last link, and that
    every ``receipt`` entry holds a receipt signed by its device's key, stating what
    the device signed (and the key it enrolled with, when its enrollment is included).
    """
    try:
        document: dict[str, Any] = json.loads((path / SUMMARY_FILE).read_bytes())
        signed = _check_signature(path, document)
        keyid = str(document["key"]["keyid"])
        if trusted_keyids is not None and keyid not in trusted_keyids:
            raise _invalid(path, f"it is signed by key {keyid[:16]}, which is not trusted")
        first, last = signed["first"], signed["last"]
        digest, length, count = hashlib.sha256(), 0, 0
        prev = first["prev_hash"]
        receipts = ReceiptCheck()
        with (path / ENTRIES_FILE).open("rb") as entries:
            for raw in entries:
                digest.update(raw)
                length += len(raw)
                line = json.loads(raw)
                seq = (first["seq"] or 0) + count
                problem = _check_link(line, seq, prev) or receipts.check(line)
                if problem:
                    raise _invalid(path, problem)
                prev = line["hash"]
                count += 1
        described = signed["entries"]
        if length != described["length"] or digest.hexdigest() != described["sha256"]:
            raise _invalid(path, f"{ENTRIES_FILE} is not the file that was signed")
        if count != signed["count"] or (count and prev != last["hash"]):
            raise _invalid(path, "the entries do not end at the signed last link")
        return ExportSummary(
            start=date.fromisoformat(signed["range"]["from"]),
            end=date.fromisoformat(signed["range"]["to"]),
            count=count,
            first_seq=first["seq"],
            first_prev_hash=first["prev_hash"],
            last_seq=last["seq"],
            last_hash=last["hash"],
            head=ChainHead(signed["head"]["seq"], signed["head"]["hash"]),
            exported_at=signed["exported_at"],
            keyid=keyid,
            receipts_verified=receipts.verified,
        )
    except AuditExportInvalidError:
        raise
    except FileNotFoundError as exc:
        raise _invalid(path, f"{Path(exc.filename).name} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _invalid(path, f"it is malformed ({type(exc).__name__}: {exc})") from None
