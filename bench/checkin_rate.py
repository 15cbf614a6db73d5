"""Check-in rate of one server process, against nginx and a bare ASGI endpoint.

In one run, on 127.0.0.1, with wrk (1 thread, 64 connections):

- nginx (1 worker) serving a 1 KB JSON file: the reference;
- a bare Starlette endpoint that decodes the check-in body with msgspec and returns
  the same bytes as a real answer: the floor of any Python endpoint;
- the real check-in (credential checked, decision made, answer signed per device
  and cached, state recorded in batches) with N enrolled devices (default 100,000),
  after a warm-up pass in which every device checks in once (first check-ins are
  the costly ones: device loaded, decision recorded, answer signed), then at 80 % of
  the maximum rate for the p99 latency;
- on SQLite and on PostgreSQL, with uvicorn and with granian.

Debian packages: nginx, wrk. PostgreSQL from PATCHLINE_BENCH_DATABASE_URL (or
PATCHLINE_TEST_DATABASE_URL): a throwaway database is created and dropped.

With ``--rollouts N --rules M`` the real check-in is measured a second time, in the same
run, after adding M delivery rules (for other models, plus one for the devices' model)
and N active staged rollouts (N - 1 of other models' releases, and one of the build the
devices are offered, at 50 %, so every check-in hashes its device into the rollout).

Usage: python bench/checkin_rate.py [--devices 100000] [--duration 10]
           [--databases sqlite,postgresql] [--servers uvicorn,granian]
           [--rollouts 100 --rules 1000] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from patchline.clock import SystemClock
from patchline.director.identity import create_director
from patchline.director.releases_sync import bump_catalog
from patchline.director.rollout_gate import BUCKETS
from patchline.fleet.credentials import hash_secret
from patchline.fleet.rollouts import Phase, RolloutSpec, create_rollout
from patchline.repository import (
    ReleaseRequest,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from patchline.store.db import Database, default_url
from patchline.store.migrate import upgrade
from patchline.store.models import Device, Policy, Release
from patchline.wire.device_api import CheckIn, Network, Slot, SlotState
from patchline.wire.release import UpdateClass

HERE = Path(__file__).parent
PASSPHRASE = "bench-passphrase"  # noqa: S105 - a throwaway repository
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@dataclass
class Prepared:
    home: Path
    database_url: str
    credentials: Path
    body: Path
    devices: int


def prepare(work: Path, devices: int, database_url: str | None) -> Prepared:
    """A repository with a director and two releases, a rule, and N enrolled devices."""
    home = work / "home"
    env = {"PATCHLINE_PASSPHRASE": PASSPHRASE}
    repo = init_repository(
        home,
        RepositoryConfig(keys_dir=home / "keys"),
        settings=Settings(kdf_log2n=10),
        passphrases=PassphraseSource(env, interactive=False),
        clock=SystemClock(),
    )
    add_model(repo, "alpha")
    create_director(repo)
    images = {}
    for build, spl in (("1.0", "2026-01-01"), ("1.1", "2026-02-01")):
        image = work / f"alpha-{build}.img"
        image.write_bytes(hashlib.sha256(build.encode()).digest() * 2048)
        images[build] = image
        add_release(
            repo,
            ReleaseRequest(
                image=image,
                model="alpha",
                build=build,
                security_patch_level=date.fromisoformat(spl),
                update_class=UpdateClass.SECURITY,
            ),
        )
    url = database_url or default_url(home)
    db = Database.connect(url)
    upgrade(db)
    now = datetime.now(UTC)
    lines = []
    with db.transaction() as session:
        session.add(
            Policy(
                id="normal",
                title="all",
                body={"id": "normal", "effect": "allow", "priority": 1},
                created_at=now,
                created_by="bench",
            )
        )
        bump_catalog(session)
    rows = []
    for i in range(devices):
        device_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(24)
        lines.append(f"{device_id}.{secret}")
        rows.append(
            {
                "id": device_id,
                "model": "alpha",
                "serial": f"S{i}",
                "hardware_id": f"H{i}",
                "region": "DE",
                "carrier": "",
                "deployed_on": date(2026, 1, 1),
                "credential_hash": hash_secret(secret),
                "enrolled_at": now,
                "build": "1.0",
                "security_patch_level": date(2026, 1, 1),
            }
        )
        if len(rows) == 10_000:
            with db.engine.begin() as conn:
                conn.execute(insert(Device), rows)
            rows = []
    if rows:
        with db.engine.begin() as conn:
            conn.execute(insert(Device), rows)
    db.dispose()
    credentials = work / "credentials.txt"
    credentials.write_text("\n".join(lines) + "\n")
    body = work / "checkin.json"
    body.write_bytes(
        msgspec.json.encode(
            CheckIn(
                build="1.0",
                build_sha256=hashlib.sha256(images["1.0"].read_bytes()).hexdigest(),
                security_patch_level="2026-01-01",
                slot=SlotState(active=Slot.A),
                free_bytes=8 * 10**9,
                battery_percent=80,
                network=Network.WIFI,
            )
        )
    )
    return Prepared(home, url, credentials, body, devices)


@dataclass
class WrkResult:
    rps: float
    p99_ms: float
    p50_ms: float
    non_2xx: int
    requests: int


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, duration: float, script: Path | None = None, env: dict[str, str] | None = None
) -> WrkResult:
    """Run wrk with 1 thread and 64 connections; parse rate and latency percentiles."""
    cmd = ["wrk", "-t1", "-c64", f"-d{max(1, int(duration))}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = out[out.index("Latency Distribution") :]
    p99 = _ms(re.search(r"99%\s+(\S+)", latency).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", latency).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p99, p50, int(bad.group(1)) if bad else 0, total)


@contextmanager
def process(cmd: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(ready_url)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def nginx_rate(work: Path, answer: bytes, duration: float) -> WrkResult:
    root = work / "nginx"
    (root / "www").mkdir(parents=True, exist_ok=True)
    (root / "www" / "answer.json").write_bytes(answer[:1024].ljust(1024, b" "))
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ root {root}/www; }} }}
}}
"""
    )
    with process(
        ["nginx", "-c", str(conf), "-p", str(root)],
        dict(os.environ),
        f"http://127.0.0.1:{port}/answer.json",
    ):
        return wrk(f"http://127.0.0.1:{port}/answer.json", duration)


def asgi_command(server: str, target: str, port: int, factory: bool = False) -> list[str]:
    if server == "granian":
        cmd = [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        return [*cmd, *(["--factory"] if factory else []), target]
    cmd = [str(BIN / "uvicorn"), "--port", str(port), "--no-access-log", "--log-level", "warning"]
    return [*cmd, *(["--factory"] if factory else []), target]


def server_env(home: Path, database_url: str, port: int) -> dict[str, str]:
    """The environment of a server process of the bench's repository at ``home`` on
    ``database_url``, serving ``port``."""
    return {
        **os.environ,
        "PATCHLINE_HOME": str(home),
        "PATCHLINE_DATABASE_URL": database_url,
        "PATCHLINE_PASSPHRASE": PASSPHRASE,
        "PATCHLINE_PORT": str(port),
    }


def start_granian(home: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    """One granian process of the server on ``port`` (not yet waited for)."""
    cmd = asgi_command("granian", "patchline.server.entry:app_from_env", port, factory=True)
    env = server_env(home, database_url, port)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def bare_rate(server: str, prepared: Prepared, answer_file: Path, duration: float) -> WrkResult:
    port = free_port()
    env = {**os.environ, "PATCHLINE_BENCH_ANSWER": str(answer_file), "PYTHONPATH": str(HERE.parent)}
    with process(
        asgi_command(server, "bench.checkin.bare_app:app", port), env, f"http://127.0.0.1:{port}/"
    ):
        return wrk(
            f"http://127.0.0.1:{port}",
            duration,
            HERE / "checkin" / "checkin.lua",
            {"CREDENTIALS": str(prepared.credentials), "BODY": str(prepared.body)},
        )


def real_rates(
    server: str, prepared: Prepared, duration: float, warm_seconds: float
) -> dict[str, Any]:
    port = free_port()
    env = server_env(prepared.home, prepared.database_url, port)
    script_env = {"CREDENTIALS": str(prepared.credentials), "BODY": str(prepared.body)}
    url = f"http://127.0.0.1:{port}"
    cmd = asgi_command(server, "patchline.server.entry:app_from_env", port, factory=True)
    with process(cmd, env, f"{url}/healthz"):
        warm = wrk(url, warm_seconds, HERE / "checkin" / "checkin.lua", script_env)
        top = wrk(url, duration, HERE / "checkin" / "checkin.lua", script_env)
        paced = pace(url, 0.8 * top.rps, top.p50_ms, duration, script_env)
        answer = httpx.post(
            f"{url}/v1/check-in",
            content=prepared.body.read_bytes(),
            headers={"Authorization": f"Bearer {prepared.credentials.read_text().split()[0]}"},
        ).content
        health = httpx.get(f"{url}/healthz").json()
    return {"warm": warm, "max": top, "paced": paced, "answer": answer, "health": health}


def pace(
    url: str, target: float, p50_ms: float, duration: float, script_env: dict[str, str]
) -> WrkResult:
    """Run wrk at about ``target`` requests/s: each of the 64 connections waits a delay
    after each answer; the delay is corrected from the measured rate (at most 4 tries)."""
    period_ms = 64 / target * 1000
    delay = max(0.5, period_ms - p50_ms)
    script = HERE / "checkin" / "checkin.lua"
    for _ in range(3):
        trial = wrk(url, max(2, duration / 3), script, {**script_env, "DELAY_MS": f"{delay:.2f}"})
        if abs(trial.rps - target) / target < 0.05:
            break
        delay = max(0.5, delay + period_ms - 64 / trial.rps * 1000)
    return wrk(url, duration, script, {**script_env, "DELAY_MS": f"{delay:.2f}"})


@contextmanager
def postgres_database() -> Iterator[str]:
    admin_url = os.environ.get("PATCHLINE_BENCH_DATABASE_URL") or os.environ.get(
        "PATCHLINE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"patchline_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def add_rollouts_and_rules(url: str, rollouts: int, rules: int) -> None:
    """Add ``rules`` allow rules, each for a model of its own (one for "alpha"), and
    ``rollouts`` active rollouts: one of alpha 1.1 in a 50 % phase, the rest of a release
    each of other models."""
    db = Database.connect(url)
    now = datetime.now(UTC)
    with db.transaction() as session:
        for i in range(rules):
            model = "alpha" if i == 0 else f"other{i}"
            body = {"id": f"bench-{i}", "effect": "allow", "priority": 2, "models": [model]}
            session.add(
                Policy(id=f"bench-{i}", title="", body=body, created_at=now, created_by="b")
            )
        for i in range(1, rollouts):
            session.add(
                Release(
                    target_path=f"other{i}/2.0/other{i}-2.0.img",
                    kind="full",
                    model=f"other{i}",
                    build="2.0",
                    length=1024,
                    sha256="0" * 64,
                    published_at=now,
                    allowed_networks=["wifi"],
                )
            )
        session.flush()
        phases = (Phase(BUCKETS // 2, 86_400), Phase(BUCKETS, 86_400))
        for i in range(rollouts):
            model, build = ("alpha", "1.1") if i == 0 else (f"other{i}", "2.0")
            create_rollout(session, RolloutSpec(model, build, phases), "bench", now)
    db.dispose()


def run(
    devices: int,
    duration: float,
    databases: list[str],
    servers: list[str],
    rollouts: int = 0,
    rules: int = 0,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "devices": devices,
        "duration_s": duration,
        "rollouts": rollouts,
        "rules": rules,
        "runs": [],
    }
    for database in databases:
        with tempfile.TemporaryDirectory(prefix="patchline-checkin-") as tmp:
            work = Path(tmp)
            pg = postgres_database() if database == "postgresql" else None
            url = pg.__enter__() if pg else None
            try:
                started = time.perf_counter()
                prepared = prepare(work, devices, url)
                setup_s = time.perf_counter() - started
                warm_seconds = max(duration, devices / 1200)
                for server in servers:
                    if server == "granian" and not (BIN / "granian").exists():
                        continue
                    real = real_rates(server, prepared, duration, warm_seconds)
                    answer_file = work / "answer.json"
                    answer_file.write_bytes(real["answer"])
                    bare = bare_rate(server, prepared, answer_file, duration)
                    nginx = nginx_rate(work, real["answer"], duration)
                    results["runs"].append(
                        {
                            "database": database,
                            "server": server,
                            "setup_s": setup_s,
                            "nginx_rps": nginx.rps,
                            "bare_rps": bare.rps,
                            "checkin_cold_rps": real["warm"].rps,
                            "checkin_rps": real["max"].rps,
                            "checkin_p99_ms_at_max": real["max"].p99_ms,
                            "paced_target_rps": 0.8 * real["max"].rps,
                            "paced_rps": real["paced"].rps,
                            "paced_p99_ms": real["paced"].p99_ms,
                            "paced_p50_ms": real["paced"].p50_ms,
                            "non_2xx": real["warm"].non_2xx
                            + real["max"].non_2xx
                            + real["paced"].non_2xx,
                            "answer_bytes": len(real["answer"]),
                            "ratio_vs_nginx": real["max"].rps / nginx.rps,
                            "ratio_vs_bare": real["max"].rps / bare.rps,
                            "writer_failures": real["health"]["writer"]["failures"],
                        }
                    )
                if rollouts or rules:
                    add_rollouts_and_rules(prepared.database_url, rollouts, rules)
                    for server in servers:
                        if server == "granian" and not (BIN / "granian").exists():
                            continue
                        real = real_rates(server, prepared, duration, warm_seconds)
                        for entry in results["runs"]:
                            if (entry["database"], entry["server"]) == (database, server):
                                entry["with_rollouts_cold_rps"] = real["warm"].rps
                                entry["with_rollouts_rps"] = real["max"].rps
                                entry["with_rollouts_p99_ms_at_max"] = real["max"].p99_ms
                                entry["with_rollouts_non_2xx"] = (
                                    real["warm"].non_2xx + real["max"].non_2xx
                                )
                                entry["with_rollouts_answer"] = real["answer"].decode()
            finally:
                if pg:
                    pg.__exit__(None, None, None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--rollouts", type=int, default=0, help="Measure again with N rollouts.")
    parser.add_argument("--rules", type=int, default=0, help="... and M delivery rules.")
    parser.add_argument("--smoke", action="store_true", help="1,000 devices, 1 s runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.duration = 1000, 1
    results = run(
        args.devices,
        args.duration,
        args.databases.split(","),
        args.servers.split(","),
        args.rollouts,
        args.rules,
    )
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(
        f"{results['devices']:,} enrolled devices, wrk 1 thread 64 connections, "
        f"{args.duration:.0f} s runs"
    )
    for r in results["runs"]:
        print(
            f"{r['database']:10} {r['server']:8} nginx {r['nginx_rps']:9,.0f}/s  "
            f"bare {r['bare_rps']:8,.0f}/s  "
            f"check-in {r['checkin_rps']:8,.0f}/s = {r['ratio_vs_nginx']:.3f} x nginx, "
            f"{r['ratio_vs_bare']:.2f} x bare; cold {r['checkin_cold_rps']:,.0f}/s; "
            f"at {r['paced_rps']:,.0f}/s (aimed at {r['paced_target_rps']:,.0f}) "
            f"p99 {r['paced_p99_ms']:.1f} ms "
            f"(p50 {r['paced_p50_ms']:.1f}); "
            f"non-2xx {r['non_2xx']}"
        )
        if "with_rollouts_rps" in r:
            print(
                f"{'':19} with {results['rollouts']} rollouts and {results['rules']} rules: "
                f"check-in {r['with_rollouts_rps']:8,.0f}/s "
                f"({r['with_rollouts_rps'] / r['checkin_rps']:.2f} x without), "
                f"p99 {r['with_rollouts_p99_ms_at_max']:.1f} ms at max; "
                f"cold {r['with_rollouts_cold_rps']:,.0f}/s; "
                f"non-2xx {r['with_rollouts_non_2xx']}"
            )


if __name__ == "__main__":
    main()
