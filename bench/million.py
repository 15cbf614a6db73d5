"""A million enrolled devices in PostgreSQL, one server process.

In one run, on 127.0.0.1:

- a throwaway database (``bench_million`` by default, dropped at the end) with the
  repository of ``bench/checkin_rate.py`` (one model, two releases, an allow rule), and N
  devices (default 1,000,000) bulk-loaded with COPY through psycopg: load time, table and
  database size;
- 1,000 rules and 100 active rollouts added as in ``checkin_rate.py --rollouts --rules``
  (one of the build every device is offered, in a 50 % phase);
- one granian process of the server: a first-check-in pass over as many devices as
  ``--known-seconds`` allows (each device loaded, its decision recorded, its answer
  signed), the server's resident memory after it; then wrk (1 thread, 64 connections)
  over a hot set of ``--hot`` devices already seen, for the maximum rate, against nginx
  serving a 1 KB file and the bare floor (plain ASGI + msgspec decoding the same body,
  under the same ASGI server) in the same run;
- an open-loop paced run at 80 % of that maximum (``bench/paced_load.py``): requests
  due on a fixed schedule, latency counted from the instant each was due.

Usage: python bench/million.py [--devices 1000000] [--hot 100000] [--duration 10]
           [--known-seconds 600] [--rollouts 100 --rules 1000] [--smoke] [--json]
Needs PostgreSQL (PATCHLINE_BENCH_DATABASE_URL or PATCHLINE_TEST_DATABASE_URL names the
server; only the database named by --database is created and dropped), nginx, wrk, cc.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.checkin_rate import (
    HERE,
    WrkResult,
    add_rollouts_and_rules,
    asgi_command,
    free_port,
    nginx_rate,
    prepare,
    start_granian,
    wait_http,
    wrk,
)
from bench.paced_load import paced
from patchline.clock import SystemClock
from patchline.director.releases_sync import sync_releases
from patchline.fleet.credentials import hash_secret
from patchline.repository.layout import RepositoryLayout
from patchline.repository.state import load_state
from patchline.store.db import Database

_COLUMNS = (
    "id",
    "model",
    "serial",
    "hardware_id",
    "region",
    "carrier",
    "deployed_on",
    "credential_hash",
    "enrolled_at",
    "build",
    "security_patch_level",
)


@contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh database ``name`` on the bench's PostgreSQL server, dropped afterwards."""
    admin_url = os.environ.get("PATCHLINE_BENCH_DATABASE_URL") or os.environ.get(
        "PATCHLINE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    if name == make_url(admin_url).database:
        raise SystemExit(f"refusing to use the server's own database {name!r}")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_devices(
    url: str,
    devices: int,
    credentials: Path,
    decided: Callable[[list[str]], list[str]] | None = None,
) -> float:
    """Load ``devices`` devices of model alpha on build 1.0 with COPY; write their
    credentials one a line; return the seconds taken (credentials made included). With
    ``decided`` (device ids -> the digest of each one's decision), each device has that
    decision recorded, as one that checked in yesterday has."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    day = date(2026, 1, 1)
    ids = [uuid.uuid4().hex for _ in range(devices)]
    digests: list[str | None] = list(decided(ids)) if decided else [None] * devices
    columns = (*_COLUMNS, "last_decision") if decided else _COLUMNS
    with (
        psycopg.connect(_libpq(url)) as conn,
        conn.cursor() as cur,
        credentials.open("w") as out,
        cur.copy(f"COPY devices ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i, (device_id, digest) in enumerate(zip(ids, digests, strict=True)):
            secret = secrets.token_urlsafe(24)
            out.write(f"{device_id}.{secret}\n")
            row = (device_id, "alpha", f"S{i}", f"H{i}", "DE", "", day, hash_secret(secret))
            copy.write_row((*row, now, "1.0", day, *((digest,) if decided else ())))
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE devices")
    return time.perf_counter() - started


def sizes(url: str) -> dict[str, int]:
    """The database's size and the devices table's (with its indexes), in bytes."""
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size('devices'), "
            "pg_indexes_size('devices')"
        ).fetchone()
    assert row is not None
    return {"database": row[0], "devices_table": row[1], "devices_indexes": row[2]}


def sync(home: Path, url: str) -> None:
    """Copy the repository's signed releases into the database (as a server start does)."""
    db = Database.connect(url)
    with db.transaction() as session:
        sync_releases(session, load_state(RepositoryLayout(home)), SystemClock().now())
    db.dispose()


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (granian runs a worker process)."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its children so far."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def head(path: Path, lines: int, out: Path) -> Path:
    """The first ``lines`` lines of ``path`` written to ``out``."""
    with path.open() as src, out.open("w") as dst:
        for i, line in enumerate(src):
            if i == lines:
                break
            dst.write(line)
    return out


def server_rates(
    home: Path, url: str, credentials: Path, hot: Path, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Start one granian process; the first-check-in pass, memory, max rate on the hot
    set, then the paced run at 80 % of it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lua = HERE / "checkin" / "checkin.lua"
    proc = start_granian(home, url, port)
    try:
        wait_http(f"{base}/healthz")
        rss_start = rss_bytes(proc.pid)
        cpu0 = cpu_seconds(proc.pid)
        everyone = {"CREDENTIALS": str(credentials), "BODY": str(body), "START": "0"}
        known = wrk(base, args.known_seconds, lua, everyone)
        known_cpu = cpu_seconds(proc.pid) - cpu0
        rss_known = rss_bytes(proc.pid)
        # The hot set: devices the first pass reached (it went through them in order).
        hot = head(credentials, min(args.hot, max(known.requests, 1)), hot)
        hot_env = {"CREDENTIALS": str(hot), "BODY": str(body)}
        wrk(base, max(2, args.duration / 2), lua, hot_env)  # the hot set is warm
        cpu0 = cpu_seconds(proc.pid)
        top = wrk(base, args.duration, lua, hot_env)
        top_cpu = cpu_seconds(proc.pid) - cpu0
        paced_run = paced(port, 0.8 * top.rps, args.duration, hot, body)
        health = httpx.get(f"{base}/healthz").json()
        answer = httpx.post(
            f"{base}/v1/check-in",
            content=body.read_bytes(),
            headers={"Authorization": f"Bearer {hot.read_text().split()[0]}"},
        ).content
        rss_end = rss_bytes(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "rss_start": rss_start,
        "known": known,
        "known_cpu_s": known_cpu,
        "rss_known": rss_known,
        "max": top,
        "max_cpu_us_per_checkin": top_cpu / max(top.requests, 1) * 1e6,
        "paced": paced_run,
        "rss_end": rss_end,
        "health": health,
        "answer": answer,
    }


def bare_rate(answer: bytes, work: Path, hot: Path, body: Path, duration: float) -> WrkResult:
    """The floor: plain ASGI + msgspec under granian, same body and answer size."""
    answer_file = work / "answer.json"
    answer_file.write_bytes(answer)
    port = free_port()
    env = {
        **os.environ,
        "PATCHLINE_BENCH_ANSWER": str(answer_file),
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = asgi_command("granian", "bench.checkin.bare_asgi:app", port)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        return wrk(
            f"http://127.0.0.1:{port}",
            duration,
            HERE / "checkin" / "checkin.lua",
            {"CREDENTIALS": str(hot), "BODY": str(body)},
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure of one run, as a dictionary."""
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="patchline-million-") as tmp,
        database(args.database) as url,
    ):
        work = Path(tmp)
        prepared = prepare(work, 0, url)
        credentials = work / "all-credentials.txt"
        load_s = copy_devices(url, args.devices, credentials)
        size = sizes(url)
        sync(prepared.home, url)
        add_rollouts_and_rules(url, args.rollouts, args.rules)
        hot = work / "hot.txt"
        real = server_rates(prepared.home, url, credentials, hot, prepared.body, args)
        bare = bare_rate(real["answer"], work, hot, prepared.body, args.duration)
        nginx = nginx_rate(work, real["answer"], args.duration)
        size_after = sizes(url)
    top: WrkResult = real["max"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "devices": args.devices,
        "hot": min(args.hot, real["known"].requests),
        "rollouts": args.rollouts,
        "rules": args.rules,
        "copy_seconds": load_s,
        "sizes": size,
        "sizes_after": size_after,
        "known_requests": real["known"].requests,
        "known_rps": real["known"].rps,
        "known_cpu_s": real["known_cpu_s"],
        "rss_start": real["rss_start"],
        "rss_known": real["rss_known"],
        "rss_end": real["rss_end"],
        "nginx_rps": nginx.rps,
        "bare_rps": bare.rps,
        "checkin_rps": top.rps,
        "checkin_p99_ms_at_max": top.p99_ms,
        "cpu_us_per_checkin": real["max_cpu_us_per_checkin"],
        "ratio_vs_nginx": top.rps / nginx.rps,
        "ratio_vs_bare": top.rps / bare.rps,
        "paced": vars(real["paced"]),
        "non_2xx": real["known"].non_2xx + top.non_2xx,
        "writer_failures": real["health"]["writer"]["failures"],
        "answer_bytes": len(real["answer"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--hot", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--known-seconds", type=float, default=600)
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--database", default="bench_million")
    parser.add_argument("--smoke", action="store_true", help="2,000 devices, 1 s runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.hot, args.duration, args.known_seconds = 2000, 1000, 1, 2
        args.rollouts, args.rules = 3, 10
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    mib = 1 / 2**20
    paced_run = result["paced"]
    print(
        f"{result['devices']:,} devices loaded by COPY in {result['copy_seconds']:.1f} s; "
        f"database {result['sizes']['database'] * mib:,.0f} MiB (devices "
        f"{result['sizes']['devices_table'] * mib:,.0f} MiB, of which indexes "
        f"{result['sizes']['devices_indexes'] * mib:,.0f} MiB), "
        f"{result['sizes_after']['database'] * mib:,.0f} MiB after the run\n"
        f"first check-ins: {result['known_requests']:,} in the pass at "
        f"{result['known_rps']:,.0f}/s ({result['known_cpu_s']:.0f} CPU s); server RSS "
        f"{result['rss_start'] * mib:,.0f} MiB at start, {result['rss_known'] * mib:,.0f} MiB "
        f"after, {result['rss_end'] * mib:,.0f} MiB at the end\n"
        f"{result['rollouts']} rollouts, {result['rules']} rules; hot set "
        f"{result['hot']:,}: nginx {result['nginx_rps']:,.0f}/s, bare {result['bare_rps']:,.0f}/s, "
        f"check-in {result['checkin_rps']:,.0f}/s = {result['ratio_vs_nginx']:.3f} x nginx, "
        f"{result['ratio_vs_bare']:.2f} x bare ({result['cpu_us_per_checkin']:.0f} CPU us "
        f"each)\n"
        f"paced (open loop) at {paced_run['rate']:,.0f}/s: achieved "
        f"{paced_run['achieved_rps']:,.0f}/s, p50 {paced_run['p50_ms']:.1f} ms, p99 "
        f"{paced_run['p99_ms']:.1f} ms, p99.9 {paced_run['p999_ms']:.1f} ms, max "
        f"{paced_run['max_ms']:.1f} ms, non-200 {paced_run['non_200']}; "
        f"non-2xx {result['non_2xx']}, writer failures {result['writer_failures']}; "
        f"load {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after"
    )


if __name__ == "__main__":
    main()
