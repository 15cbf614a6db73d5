"""The database computes a device's rollout bucket exactly as Python does, on SQLite
(a registered function) and on PostgreSQL (its own sha256)."""

from __future__ import annotations

from sqlalchemy import String, literal, select

from patchline.store.buckets import BUCKETS, bucket, bucket_of
from patchline.store.db import Database


def test_the_database_buckets_devices_as_python_does(database_url: str) -> None:
    ids = [f"device-{n}" for n in range(300)] + ["0f" * 20, "gerät-ü", "a:b"]
    rollouts = ["R-1", "R-12", "R-999999"]
    pairs = [(r, d) for r in rollouts for d in ids]
    db = Database.connect(database_url)
    try:
        with db.reading() as conn:
            got = {
                n: conn.execute(select(bucket_of(r, literal(d, String)))).scalar_one()
                for n, (r, d) in enumerate(pairs)
            }
    finally:
        db.dispose()
    want = {n: bucket(r, d) for n, (r, d) in enumerate(pairs)}
    assert got == want
    assert len(set(want.values())) > 200  # spread over the buckets
    assert all(0 <= b < BUCKETS for b in want.values())
