"""The console's pages on a large fleet: server time of every page with 100,000 devices
and 1,000,000 install reports in PostgreSQL.

The fleet is loaded with COPY (not through HTTP): five models, eight regions, patch
levels over two years, install states and the rule that allowed each assigned build,
reports over the last 30 days from the server, mirrors, SD cards and offline receipts;
then two decisions per device are appended to the audit chain. Then a real ``patchline
serve`` process answers each page ``--rounds`` times for a signed-in console session;
the figures are the time from the request to the last byte of the page (loopback),
median, p95 and max.

Usage: python bench/console_pages.py [--devices 100000] [--reports 1000000]
           [--decisions-per-device 2]
           [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
           [--bench-database patchline_console_bench] [--rounds 20] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.checkin_rate import PASSPHRASE, free_port, server_env, wait_http
from patchline.audit import AuditRecord, append
from patchline.clock import SystemClock
from patchline.director.catalog import aware
from patchline.director.identity import create_director
from patchline.director.rollout_gate import bucket
from patchline.fleet.overview import recount_reports
from patchline.fleet.rollouts import Brakes, Figures, cohort_figures, get_rollout
from patchline.repository import (
    ReleaseRequest,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.migrate import upgrade
from patchline.store.models import Device, Rollout
from patchline.wire.release import UpdateClass

BIN = Path(sys.executable).parent
MODELS = ("aurora", "nimbus", "cirrus", "stratus", "cumulus")
REGIONS = ("DE", "FR", "US", "BR", "IN", "JP", "KE", "AU")
STATES = ("booted-healthy",) * 8 + ("installed", "failed", "rolled-back", None)
SOURCES = (
    ("Server http://ota.example",) * 14
    + ("Mirror https://m.example",) * 4
    + ("SD card /media/card",)
    + ("bundle B-7",)  # an offline receipt
)
RULES = ("normal", "normal", "security-licence")
STATUSES = ("installed", "booted-healthy") * 4 + ("failed", "rolled-back", "downloading")
BENCH_DB = "patchline_console_bench"


def make_home(work: Path) -> Path:
    """A repository with the five models, two releases each, and a director."""
    home = work / "home"
    repo = init_repository(
        home,
        RepositoryConfig(keys_dir=home / "keys"),
        settings=Settings(kdf_log2n=10),
        passphrases=PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False),
        clock=SystemClock(),
    )
    for model in MODELS:
        add_model(repo, model)
        for build, spl in (("1.0", "2026-06-05"), ("1.1", "2026-11-05")):
            image = work / f"{model}-{build}.img"
            image.write_bytes(hashlib.sha256(f"{model}/{build}".encode()).digest() * 2048)
            add_release(
                repo,
                ReleaseRequest(
                    image=image,
                    model=model,
                    build=build,
                    security_patch_level=date.fromisoformat(spl),
                    update_class=UpdateClass.SECURITY,
                ),
            )
    create_director(repo)
    return home


def fresh_database(admin_url: str, name: str = BENCH_DB) -> str:
    """Drop and create the bench database ``name``; its SQLAlchemy URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"bench database name {name!r}: lower-case letters, digits and _")
    url = make_url(admin_url)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url.set(database=name).render_as_string(hide_password=False)


def _copy(conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: Any) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load_fleet(database_url: str, devices: int, reports: int, now: datetime) -> list[str]:
    """COPY ``devices`` devices and ``reports`` install reports; the device ids."""
    rng = random.Random(14)
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(devices)]
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    first_level = date(2024, 12, 5)

    def device_rows() -> Any:
        for i, device_id in enumerate(ids):
            model = MODELS[i % len(MODELS)]
            level = first_level + timedelta(days=30 * rng.randrange(24))
            build = "1.1" if rng.random() < 0.4 else "1.0"
            state = STATES[rng.randrange(len(STATES))]
            seen = now - timedelta(hours=rng.randrange(24 * 30))
            yield (
                device_id,
                model,
                f"SN{i:07d}",
                f"HW{i:07d}",
                REGIONS[rng.randrange(len(REGIONS))],
                "",
                date(2025, 1, 1) + timedelta(days=rng.randrange(600)),
                hashlib.sha256(device_id.encode()).digest(),
                now - timedelta(days=60),
                seen,
                build,
                level,
                "a",
                "1.1" if state else None,
                state,
                RULES[i % len(RULES)] if state else None,
            )

    def report_rows() -> Any:
        for _ in range(reports):
            i = rng.randrange(devices)
            status = STATUSES[rng.randrange(len(STATUSES))]
            yield (
                str(uuid.UUID(int=rng.getrandbits(128))),
                ids[i],
                f"{MODELS[i % len(MODELS)]}/1.1/image.img",
                "1.1",
                status,
                "none",
                "",
                SOURCES[rng.randrange(len(SOURCES))],
                False,
                now.isoformat(),
                now - timedelta(seconds=rng.randrange(30 * 86400)),
                "device",
            )

    with psycopg.connect(plain) as conn:
        _copy(
            conn,
            "devices",
            (
                "id",
                "model",
                "serial",
                "hardware_id",
                "region",
                "carrier",
                "deployed_on",
                "credential_hash",
                "enrolled_at",
                "last_seen_at",
                "build",
                "security_patch_level",
                "slot_active",
                "assigned_build",
                "install_state",
                "assigned_rule",
            ),
            device_rows(),
        )
        _copy(
            conn,
            "install_reports",
            (
                "report_id",
                "device_id",
                "target",
                "build",
                "status",
                "code",
                "detail",
                "source",
                "delta",
                "device_at",
                "received_at",
                "origin",
            ),
            report_rows(),
        )
    return ids


def vacuum(database_url: str) -> None:
    """What autovacuum does soon after a bulk load (PostgreSQL 13+ vacuums after inserts):
    statistics, and the visibility map that lets a count read an index alone."""
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def load_decisions(database_url: str, ids: list[str], per_device: int, now: datetime) -> None:
    """Append ``per_device`` decision entries per device to the audit chain (a real
    chain, hashed as the server does), spread over the last 30 days."""
    db = Database.connect(database_url)
    try:
        for round_ in range(per_device):
            at = now - timedelta(days=30 * (per_device - round_) / per_device)
            for start in range(0, len(ids), 20_000):
                records = [
                    AuditRecord(
                        at,
                        "decision",
                        "director",
                        device_id,
                        {
                            "action": "install",
                            "target": f"{MODELS[(start + i) % len(MODELS)]}/1.1/image.img",
                            "build": "1.1",
                            "running": "1.0",
                            "reasons": ["install build 1.1 as the full image"],
                            "rules": ["normal"],
                            "allowed_by": "normal",
                        },
                    )
                    for i, device_id in enumerate(ids[start : start + 20_000])
                ]
                with db.transaction() as session:
                    append(session, records)
    finally:
        db.dispose()


def python_figures(session: Session, row: Rollout, now: datetime) -> Figures:
    """The reference: the rollout's figures as they were counted before the database
    counted them, every offered device read and hashed into its bucket in Python."""
    brakes = Brakes(**row.brakes)
    share = int(row.phases[row.phase]["share"])
    quiet_since = now - timedelta(seconds=brakes.silence_seconds)
    counts = {"offered": 0, "installs": 0, "healthy": 0, "failed": 0, "rolled_back": 0}
    silent = pending = 0
    query = select(Device.id, Device.install_state, Device.last_seen_at).where(
        Device.model == row.model, Device.assigned_build == row.build
    )
    for device_id, state, last_seen in session.execute(query):
        if bucket(row.id, device_id) >= share:
            continue
        counts["offered"] += 1
        if state not in ("installed", "booted-healthy", "rolled-back", "failed"):
            continue
        counts["installs"] += 1
        if state == "booted-healthy":
            counts["healthy"] += 1
        elif state == "failed":
            counts["failed"] += 1
        elif state == "rolled-back":
            counts["rolled_back"] += 1
        elif last_seen is None or aware(last_seen) < quiet_since:
            silent += 1
        else:
            pending += 1
    return Figures(**counts, silent=silent, pending=pending)


def time_cohort_count(database_url: str, rollout_id: str, rounds: int) -> dict[str, Any]:
    """The rollout's figures counted by the database against the Python reference, in
    this process on the same data: milliseconds (median) and whether they agree."""
    db = Database.connect(database_url)
    now = datetime.now(UTC)
    samples: dict[str, list[float]] = {"database": [], "python": []}
    answers = {}
    try:
        with db.reading_session() as session:
            row = get_rollout(session, rollout_id)
            for _ in range(rounds + 1):
                for name, count in (("database", cohort_figures), ("python", python_figures)):
                    started = time.perf_counter()
                    answers[name] = count(session, row, now)
                    samples[name].append((time.perf_counter() - started) * 1000)
    finally:
        db.dispose()
    database = statistics.median(samples["database"][1:])
    python = statistics.median(samples["python"][1:])
    return {
        "database_ms": round(database, 1),
        "python_ms": round(python, 1),
        "ratio": round(database / python, 3),
        "agree": answers["database"] == answers["python"],
        "figures": answers["database"].to_json(),
    }


def sign_in(url: str, token: str) -> httpx.Client:
    """A client with a console session."""
    client = httpx.Client(base_url=url, timeout=120)
    form = client.get("/sign-in").text
    found = re.search(r'name="csrf-token" content="([^"]+)"', form)
    assert found
    answer = client.post("/sign-in", data={"csrf": found.group(1), "token": token})
    assert answer.status_code == 303, answer.text
    return client


def time_pages(client: httpx.Client, pages: dict[str, str], rounds: int) -> list[dict[str, Any]]:
    """Each page ``rounds`` times (after one warm-up); milliseconds per page."""
    results = []
    for name, path in pages.items():
        warm = client.get(path)
        assert warm.status_code == 200, f"{path}: {warm.status_code} {warm.text[:300]}"
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            answer = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200
        samples.sort()
        results.append(
            {
                "page": name,
                "path": path,
                "median_ms": round(statistics.median(samples), 1),
                "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
                "max_ms": round(samples[-1], 1),
                "bytes": len(warm.content),
            }
        )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the fleet, serve it, time the pages."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="patchline-console-bench-") as tmp:
        work = Path(tmp)
        home = make_home(work)
        database_url = fresh_database(args.database_url, args.bench_database)
        db = Database.connect(database_url)
        upgrade(db)
        with db.transaction() as session:
            token = create_token(session, "bench", Role.ADMIN, now)
        db.dispose()
        started = time.monotonic()
        ids = load_fleet(database_url, args.devices, args.reports, now)
        load_decisions(database_url, ids, args.decisions_per_device, now)
        db = Database.connect(database_url)
        with db.transaction() as session:
            recount_reports(session)  # what the writer keeps when reports arrive one by one
        db.dispose()
        vacuum(database_url)
        loaded_s = time.monotonic() - started
        port = free_port()
        env = server_env(home, database_url, port)
        log = (work / "server.log").open("wb")
        server = subprocess.Popen(
            [str(BIN / "patchline"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", 120)
            api = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            rule = {"id": "normal", "effect": "allow", "priority": 10}
            assert api.post("/api/policies", json=rule).status_code == 201
            rollout = {
                "model": "aurora",
                "build": "1.1",
                "phases": [{"percent": 10}, {"percent": 100}],
            }
            created = api.post("/api/rollouts", json=rollout)
            assert created.status_code == 201, created.text
            promise = {"security_until": "2026-06-30", "note": "two years"}
            assert api.put("/api/support/cirrus", json=promise).status_code == 200
            client = sign_in(url, token)
            pages = {
                "overview": "/",
                "rollouts": "/rollouts",
                "rollout": "/rollouts/R-1",
                "devices": "/devices",
                "devices, filtered, page 40": "/devices?model=aurora&region=DE&page=40",
                "devices, search": "/devices?q=SN00123",
                "device": f"/devices/{ids[12345 % len(ids)]}",
                "compliance": "/compliance",
                "support": "/support",
            }
            results = time_pages(client, pages, args.rounds)
            # The API's rollout answer costs what the rollout page does (the same figures).
            results += time_pages(api, {"rollout (API)": "/api/rollouts/R-1"}, args.rounds)
            cohort = time_cohort_count(database_url, "R-1", args.rounds)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    return {
        "devices": args.devices,
        "reports": args.reports,
        "decisions": args.decisions_per_device * args.devices,
        "load_s": round(loaded_s, 1),
        "rounds": args.rounds,
        "pages": results,
        "cohort_count": cohort,
    }


def main() -> None:
    """Parse the arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PATCHLINE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="A PostgreSQL server (its database is not touched; the bench makes its own).",
    )
    parser.add_argument(
        "--bench-database",
        default=BENCH_DB,
        help=f"The database the bench drops, creates and fills (default {BENCH_DB}).",
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--decisions-per-device",
        type=int,
        default=2,
        help="Decision entries appended to the audit chain per device (its page lists them).",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    loaded = (
        f"{figures['devices']:,} devices, {figures['reports']:,} reports, "
        f"{figures['decisions']:,} decisions"
    )
    print(f"{loaded} loaded in {figures['load_s']} s")
    for page in figures["pages"]:
        print(
            f"{page['page']:<28} median {page['median_ms']:>7} ms  p95 {page['p95_ms']:>7} ms  "
            f"max {page['max_ms']:>7} ms  ({page['bytes']:,} bytes)"
        )
    cohort = figures["cohort_count"]
    print(
        f"R-1's figures counted by the database {cohort['database_ms']} ms, read and hashed "
        f"in Python {cohort['python_ms']} ms (ratio {cohort['ratio']}); "
        f"{'the same' if cohort['agree'] else 'DIFFERENT'}: {cohort['figures']}"
    )


if __name__ == "__main__":
    main()
