"""A device's bucket in a staged rollout, in Python and in SQL.

A device's bucket is ``sha256("ROLLOUT-ID:DEVICE-ID")``'s first four bytes, big-endian,
modulo 10,000 (``patchline.director.rollout_gate`` says what a bucket is for). The
database computes the same number with ``bucket_of``: PostgreSQL with its own
``sha256()``, SQLite with ``patchline_bucket()``, which ``register_sqlite`` adds to each
connection. So the database can count a phase's cohort without handing every device to
Python.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Integer, String, cast
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations
from sqlalchemy.sql.functions import FunctionElement

#: Buckets a device can fall in; a phase's share is a number of them (basis points).
BUCKETS = 10_000

#: The SQLite function ``register_sqlite`` adds.
SQLITE_FUNCTION = "patchline_bucket"


def bucket(rollout_id: str, device_id: str) -> int:
    """The device's bucket in the rollout, 0..9999; the same in every process, forever."""
    digest = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % BUCKETS


class _Bucket(FunctionElement[int]):
    """``bucket(rollout_id, device_id)`` as a SQL expression."""

    type = Integer()
    name = SQLITE_FUNCTION
    inherit_cache = True


@compiles(_Bucket)
def _bucket_sqlite(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


@compiles(_Bucket, "postgresql")
def _bucket_postgresql(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    rollout_id, device_id = (compiler.process(c, **kw) for c in element.clauses)
    key = f"convert_to({rollout_id} || ':' || {device_id}, 'UTF8')"
    first_four = f"substring(sha256({key}) from 1 for 4)"
    return f"mod(('x' || encode({first_four}, 'hex'))::bit(32)::bigint, {BUCKETS})"


def bucket_of(rollout_id: str, device_id: SQLCoreOperations[str]) -> ColumnElement[int]:
    """The SQL expression of ``bucket(rollout_id, <device_id column>)``: PostgreSQL
    computes it itself; SQLite needs ``register_sqlite`` on the connection."""
    return _Bucket(cast(rollout_id, String), device_id)


def register_sqlite(dbapi_connection: Any) -> None:
    """Teach a SQLite connection ``patchline_bucket(rollout_id, device_id)``."""
    dbapi_connection.create_function(SQLITE_FUNCTION, 2, _sqlite_bucket, deterministic=True)


def _sqlite_bucket(rollout_id: str | None, device_id: str | None) -> int | None:
    if rollout_id is None or device_id is None:
        return None
    return bucket(str(rollout_id), str(device_id))
