"""A simulated day of a fleet, one server process on PostgreSQL.

In one run, on 127.0.0.1:

- a throwaway database (``bench_fleet_day`` by default, dropped at the end) with the
  repository of ``bench/checkin_rate.py`` (model alpha, builds 1.0 and 1.1, an allow
  rule), ``--rules`` rules and ``--rollouts`` rollouts as in ``bench/million.py``, and N
  devices (default 1,000,000) on build 1.0, loaded with COPY, each with the decision it
  was given yesterday already recorded (computed by the server's own director, in this
  process, from the same catalog), as a fleet that checks in daily has;
- one granian process of the server, its CPU seconds and resident memory sampled all
  along (the peak is the figure);
- the day: every device but the release hour's share checks in once, on an open-loop
  schedule (``bench/checkin/paced.c``) of ``--day-seconds`` (the day compressed); each is
  loaded from the database (the process has not seen it), decided, its answer signed,
  its last-seen time written;
- the release hour: build 1.2 is published through ``POST /api/releases``; then
  ``--release-share`` of the fleet (default 10 %) asks at the rate the full fleet's share
  would within ten minutes (0.10 x 1,000,000 / 600 s = 167/s whatever N is, for
  share x N / rate seconds): each gets a changed decision, which is recorded (and
  audited) before it is answered;
- install reports: ``--reports`` (default 5 % of N, 50,000 for a million) single-report
  batches to ``/v1/reports`` from as many devices, 32 at a time;
- the reference in the same run, between the day and the release: the same process's
  CPU per check-in on a hot set (the devices it saw last that day asking again, wrk at
  full speed), so the day's cost per check-in is said as a multiple of the cheapest one.

Usage: python bench/fleet_day.py [--devices 1000000] [--day-seconds 900]
           [--release-share 0.1] [--reports N] [--rollouts 100 --rules 1000] [--smoke]
           [--json]
Needs PostgreSQL (PATCHLINE_BENCH_DATABASE_URL or PATCHLINE_TEST_DATABASE_URL names the
server; only the database named by --database is created and dropped), wrk, cc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.checkin_rate import (
    HERE,
    PASSPHRASE,
    add_rollouts_and_rules,
    free_port,
    prepare,
    start_granian,
    wait_http,
    wrk,
)
from bench.million import (
    _libpq,
    copy_devices,
    cpu_seconds,
    database,
    rss_bytes,
    sizes,
    sync,
)
from bench.paced_load import PacedResult, paced
from patchline.repository.passphrases import PassphraseSource
from patchline.server.app import build_runtime
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.wire.device_api import CheckIn, Report, ReportBatch, ReportStatus

#: The full fleet's release-hour rate: 10 % of a million devices within ten minutes.
RELEASE_RATE = 0.10 * 1_000_000 / 600


def digests(home: Path, url: str, body: Path, device_ids: list[str]) -> list[str]:
    """The digest of the decision each device gets today from the server's own director
    (the catalog as the server loads it), as yesterday's check-in recorded it."""
    settings = Settings(home=home, database_url=url)
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    rt = build_runtime(settings, passphrases=passphrases)
    try:
        rt.reload_catalog_if_changed()
        checkin = msgspec.json.decode(body.read_bytes(), type=CheckIn)
        now = rt.clock.now()
        day = date(2026, 1, 1)
        out = []
        for device_id in device_ids:
            _, digest = rt.director.decide(
                model="alpha",
                region="DE",
                deployed_on=day,
                build=checkin.build,
                build_sha256=checkin.build_sha256,
                security_patch_level=checkin.security_patch_level,
                free_bytes=checkin.free_bytes,
                battery_percent=checkin.battery_percent,
                network=checkin.network.value,
                now=now,
                device_id=device_id,
            )
            out.append(digest)
        return out
    finally:
        rt.db.dispose()


class Sampler:
    """The server process's resident memory, sampled every half second; the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return

    def stop(self) -> int:
        """Stop sampling; the peak seen."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
        return self.peak


#: Where a py-spy sample of the server was, by the first of these found in its stack.
_PLACES = (
    ("BatchWriter", "batch writer (database writes)"),
    ("load_devices", "loading devices (database reads)"),
    ("sign_decision", "signing answers"),
    ("Director.decide", "deciding"),
    ("DeviceApi", "device API (other Python)"),
)


def spy(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes]:
    """py-spy (on PATH) recording ``pid`` and its workers for ``seconds`` into ``raw``."""
    command = ["py-spy", "record", "--nonblocking", "--subprocesses", "-r", "100"]
    command += ["-d", str(int(seconds)), "-f", "raw", "-o", str(raw), "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def where_samples(raw: Path) -> dict[str, int]:
    """The samples of a py-spy raw file by place (``_PLACES``; else the ASGI server's
    own threads, or other)."""
    shares: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        place = next((name for key, name in _PLACES if key in stack), None)
        if place is None:
            place = "ASGI server" if "granian" in stack or stack.count(";") <= 2 else "other"
        shares[place] += int(count)
    return dict(shares.most_common())


def lines(path: Path, start: int, count: int, out: Path) -> Path:
    """Lines ``start`` to ``start + count`` of ``path`` written to ``out``."""
    with path.open() as src, out.open("w") as dst:
        for i, line in enumerate(src):
            if i >= start + count:
                break
            if i >= start:
                dst.write(line)
    return out


def publish_build(base: str, token: str, work: Path) -> float:
    """Publish alpha 1.2 through the management API; the seconds it took."""
    image = work / "alpha-1.2.img"
    image.write_bytes(os.urandom(64 * 1024))
    started = time.perf_counter()
    answer = httpx.post(
        f"{base}/api/releases",
        headers={"Authorization": f"Bearer {token}"},
        files={"image": ("alpha-1.2.img", image.read_bytes())},
        data={
            "model": "alpha",
            "build": "1.2",
            "security_patch_level": "2026-03-01",
            "update_class": "security",
        },
        timeout=300,
    )
    answer.raise_for_status()
    return time.perf_counter() - started


async def send_reports(base: str, credentials: Path, count: int) -> tuple[int, float]:
    """``count`` single-report batches, one from each of the first ``count`` devices, 32
    at a time; (answers other than 200, seconds)."""
    creds = credentials.read_text().split()[:count]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for credential in creds:
        queue.put_nowait(credential)
    refused = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal refused
        while not queue.empty():
            credential = queue.get_nowait()
            batch = ReportBatch(
                reports=[
                    Report(
                        report_id=str(uuid.uuid4()),
                        target="alpha/1.2/alpha-1.2.img",
                        build="1.2",
                        status=ReportStatus.BOOTED_HEALTHY,
                        at=datetime.now(UTC).isoformat(),
                    )
                ]
            )
            answer = await client.post(
                f"{base}/v1/reports",
                content=msgspec.json.encode(batch),
                headers={"Authorization": f"Bearer {credential}"},
            )
            refused += answer.status_code != 200

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(32)))
    return refused, time.perf_counter() - started


def counts(url: str) -> dict[str, int]:
    """What the database holds after the day: reports, audit entries, devices on a
    decision offering 1.2."""
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM install_reports), (SELECT count(*) FROM "
            "audit_entries), (SELECT count(*) FROM devices WHERE assigned_build = '1.2')"
        ).fetchone()
    assert row is not None
    return {"reports": row[0], "audit_entries": row[1], "assigned_1_2": row[2]}


def the_day(home: Path, url: str, credentials: Path, body: Path, args: argparse.Namespace) -> Any:
    """Start the server; the day, the release hour, the reports, the hot-set reference."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = Database.connect(url)
    with db.transaction() as session:
        token = create_token(session, "bench", Role.ADMIN, datetime.now(UTC))
    db.dispose()
    release_devices = round(args.devices * args.release_share)
    day_devices = args.devices - release_devices
    work = credentials.parent
    proc = start_granian(home, url, port)
    try:
        wait_http(f"{base}/healthz")
        rss_start = rss_bytes(proc.pid)
        sampler = Sampler(proc.pid)
        day_file = lines(credentials, 0, day_devices, work / "day.txt")
        profiler = None
        if args.profile is not None:
            profiler = spy(proc.pid, args.day_seconds, args.profile)
        cpu0 = cpu_seconds(proc.pid)
        day_run = paced(port, day_devices / args.day_seconds, args.day_seconds, day_file, body)
        day_cpu = cpu_seconds(proc.pid) - cpu0
        if profiler is not None:
            _, errors = profiler.communicate(timeout=120)
            if not args.profile.exists():
                raise SystemExit(f"py-spy recorded nothing: {errors.decode()[-2000:]}")
        rss_day = rss_bytes(proc.pid)
        # The reference: devices the process has seen today, asking again at full speed.
        # The devices seen last: still in the process's cache, whatever its size.
        hot_count = min(args.hot, day_devices)
        hot = lines(day_file, day_devices - hot_count, hot_count, work / "hot.txt")
        lua = HERE / "checkin" / "checkin.lua"
        hot_env = {"CREDENTIALS": str(hot), "BODY": str(body)}
        wrk(base, 2, lua, hot_env)  # warm
        cpu0 = cpu_seconds(proc.pid)
        top = wrk(base, args.hot_seconds, lua, hot_env)
        hot_cpu = cpu_seconds(proc.pid) - cpu0
        publish_s = publish_build(base, token, work)
        time.sleep(2)  # every process reloads its catalog within a second
        hour_file = lines(credentials, day_devices, release_devices, work / "hour.txt")
        hour_seconds = release_devices / RELEASE_RATE
        cpu0 = cpu_seconds(proc.pid)
        hour_run = paced(port, RELEASE_RATE, hour_seconds, hour_file, body)
        hour_cpu = cpu_seconds(proc.pid) - cpu0
        cpu0 = cpu_seconds(proc.pid)
        refused, report_s = asyncio.run(send_reports(base, hour_file, args.reports))
        report_cpu = cpu_seconds(proc.pid) - cpu0
        health = httpx.get(f"{base}/healthz").json()
        rss_peak = sampler.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "rss_start": rss_start,
        "rss_after_day": rss_day,
        "rss_peak": rss_peak,
        "day": (day_devices, day_run, day_cpu),
        "publish_seconds": publish_s,
        "hour": (release_devices, hour_run, hour_cpu),
        "reports": (args.reports, refused, report_s, report_cpu),
        "hot": (top, hot_cpu),
        "writer_failures": health["writer"]["failures"],
    }


def _paced(result: PacedResult, count: int, cpu: float) -> dict[str, Any]:
    return {
        "devices": count,
        **vars(result),
        "cpu_s": cpu,
        "cpu_s_per_million": cpu / max(result.answered, 1) * 1e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure of one run, as a dictionary."""
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="patchline-day-") as tmp,
        database(args.database) as url,
    ):
        work = Path(tmp)
        prepared = prepare(work, 0, url)
        sync(prepared.home, url)
        add_rollouts_and_rules(url, args.rollouts, args.rules)
        credentials = work / "credentials.txt"
        load_s = copy_devices(
            url,
            args.devices,
            credentials,
            decided=lambda ids: digests(prepared.home, url, prepared.body, ids),
        )
        size = sizes(url)
        day = the_day(prepared.home, url, credentials, prepared.body, args)
        stored = counts(url)
        size_after = sizes(url)
    top, hot_cpu = day["hot"]
    hot_us = hot_cpu / max(top.requests, 1) * 1e6
    day_devices, day_run, day_cpu = day["day"]
    day_figures = _paced(day_run, day_devices, day_cpu)
    hour_devices, hour_run, hour_cpu = day["hour"]
    hour_figures = _paced(hour_run, hour_devices, hour_cpu)
    reports, refused, report_s, report_cpu = day["reports"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "devices": args.devices,
        "rollouts": args.rollouts,
        "rules": args.rules,
        "load_seconds": load_s,
        "sizes": size,
        "sizes_after": size_after,
        "rss_start": day["rss_start"],
        "rss_after_day": day["rss_after_day"],
        "rss_peak": day["rss_peak"],
        "day": day_figures,
        "publish_seconds": day["publish_seconds"],
        "release_hour": hour_figures,
        "reports": {
            "sent": reports,
            "refused": refused,
            "seconds": report_s,
            "cpu_s": report_cpu,
            "stored": stored["reports"],
        },
        "audit_entries": stored["audit_entries"],
        "assigned_1_2": stored["assigned_1_2"],
        "hot_rps": top.rps,
        "hot_cpu_us_per_checkin": hot_us,
        "day_cost_vs_hot": day_figures["cpu_s_per_million"] / max(hot_us, 1e-9),
        "writer_failures": day["writer_failures"],
        "day_profile": where_samples(args.profile) if args.profile else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--day-seconds", type=float, default=900)
    parser.add_argument("--release-share", type=float, default=0.10)
    parser.add_argument("--reports", type=int, default=None, help="default: 5 %% of devices")
    parser.add_argument("--hot", type=int, default=50_000)
    parser.add_argument("--hot-seconds", type=float, default=10)
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--database", default="bench_fleet_day")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy raw samples of the day, into FILE"
    )
    parser.add_argument("--smoke", action="store_true", help="2,000 devices, seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.day_seconds, args.hot, args.hot_seconds = 2000, 3, 500, 1
        args.rollouts, args.rules = 3, 10
    if args.reports is None:
        args.reports = round(args.devices * 0.05)
    args.reports = min(args.reports, round(args.devices * args.release_share))
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    mib = 1 / 2**20
    day, hour, rep = result["day"], result["release_hour"], result["reports"]
    print(
        f"{result['devices']:,} devices (yesterday's decisions recorded) loaded in "
        f"{result['load_seconds']:.0f} s; database {result['sizes']['database'] * mib:,.0f} "
        f"MiB, {result['sizes_after']['database'] * mib:,.0f} MiB after the day\n"
        f"the day: {day['devices']:,} check-ins over {args.day_seconds:.0f} s "
        f"({day['rate']:,.0f}/s aimed, {day['achieved_rps']:,.0f}/s achieved), p50 "
        f"{day['p50_ms']:.1f} ms, p99 {day['p99_ms']:.1f} ms, non-200 {day['non_200']}; "
        f"{day['cpu_s']:.0f} CPU s = {day['cpu_s_per_million']:,.0f} CPU s per million "
        f"check-ins ({result['day_cost_vs_hot']:.1f} x a hot check-in's "
        f"{result['hot_cpu_us_per_checkin']:.0f} us)\n"
        f"release hour: 1.2 published in {result['publish_seconds']:.1f} s; "
        f"{hour['devices']:,} devices at {hour['rate']:,.0f}/s aimed, "
        f"{hour['achieved_rps']:,.0f}/s achieved, p50 {hour['p50_ms']:.1f} ms, p99 "
        f"{hour['p99_ms']:.1f} ms, non-200 {hour['non_200']}; {hour['cpu_s']:.0f} CPU s = "
        f"{hour['cpu_s_per_million']:,.0f} CPU s per million changed decisions; devices "
        f"assigned 1.2: {result['assigned_1_2']:,}\n"
        f"reports: {rep['sent']:,} sent in {rep['seconds']:.1f} s, refused {rep['refused']}, "
        f"stored {rep['stored']:,}; {rep['cpu_s']:.0f} CPU s\n"
        f"server RSS {result['rss_start'] * mib:,.0f} MiB at start, "
        f"{result['rss_after_day'] * mib:,.0f} after the day, peak "
        f"{result['rss_peak'] * mib:,.0f}; writer failures {result['writer_failures']}; "
        f"load {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after"
    )
    if result["day_profile"]:
        total = sum(result["day_profile"].values())
        print(
            "the day's samples: "
            + ", ".join(
                f"{place} {count / total:.0%}" for place, count in result["day_profile"].items()
            )
        )


if __name__ == "__main__":
    main()
