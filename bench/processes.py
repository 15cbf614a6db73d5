"""Check-in rate of N server processes behind nginx (the load balancer) on one PostgreSQL.

In one run, on 127.0.0.1, for each N in ``--processes`` (default 1,2): N granian
processes of the server on one database (devices bulk-loaded with COPY, as in
``bench/million.py``), nginx (1 worker, keep-alive upstream, the device API location of
``docs/deploy.md``) in front; every device checks in once through nginx (first
check-ins), then wrk (1 thread, 64 connections) through nginx for the maximum rate.
References in the same run: nginx serving a 1 KB file, and one server process without
nginx. With ``--profile`` py-spy (on PATH, ``--nonblocking``) records every server
process during a second run at the maximum (the rate reported is the unprofiled one)
and the output says where their samples went.

Usage: python bench/processes.py [--devices 100000] [--duration 10] [--processes 1,2]
           [--profile DIR] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.checkin_rate import (
    HERE,
    WrkResult,
    free_port,
    nginx_rate,
    prepare,
    start_granian,
    wait_http,
    wrk,
)
from bench.million import copy_devices, database, sync


def start_servers(home: Path, url: str, count: int) -> list[tuple[subprocess.Popen[bytes], int]]:
    """``count`` granian processes of the server, each on its own port, answering."""
    started = []
    for _ in range(count):
        port = free_port()
        started.append((start_granian(home, url, port), port))
    for _, port in started:
        wait_http(f"http://127.0.0.1:{port}/healthz")
    return started


def balancer(work: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    """nginx passing /v1/ to the given ports (upstream keep-alive), as docs/deploy.md."""
    root = work / f"lb-{len(ports)}"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in ports)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  upstream patchline {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location /v1/ {{
      proxy_pass http://patchline;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      client_max_body_size 64k;
    }}
    location = /ready {{ return 200; }}
  }}
}}
"""
    )
    proc = subprocess.Popen(
        ["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_http(f"http://127.0.0.1:{port}/ready")
    return proc, port


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat, all cores)."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def idle_share(before: list[int], after: list[int]) -> float:
    """The share of the machine's CPU time left idle between two ``cpu_times``."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return (spent[3] + spent[4]) / max(sum(spent), 1)


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (granian's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def profile_samples(raw: Path) -> Counter[str]:
    """py-spy samples (raw format) by where they were: the device API, the batch writer,
    the database driver on the request path, signing, the ASGI server, other."""
    shares: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "BatchWriter" in stack:
            where = "batch writer"
        elif "psycopg" in stack or "sqlalchemy" in stack:
            where = "database (request path)"
        elif "sign_decision" in stack or "Signer.sign" in stack:
            where = "signing"
        elif "DeviceApi" in stack:
            where = "device API (Python)"
        elif "granian" in stack or stack.count(";") <= 2:
            where = "ASGI server and idle"
        else:
            where = "other"
        shares[where] += int(count)
    return shares


def measure(
    home: Path,
    url: str,
    credentials: Path,
    body: Path,
    work: Path,
    count: int,
    duration: float,
    warm_seconds: float,
    profile: Path | None,
) -> dict[str, Any]:
    """N processes behind nginx: first check-ins, then the maximum rate."""
    servers = start_servers(home, url, count)
    script_env = {"CREDENTIALS": str(credentials), "BODY": str(body)}
    lua = HERE / "checkin" / "checkin.lua"
    try:
        lb, port = balancer(work, [p for _, p in servers])
        try:
            base = f"http://127.0.0.1:{port}"
            warm = wrk(base, warm_seconds, lua, script_env)
            before = cpu_times()
            top = wrk(base, duration, lua, script_env)
            idle = idle_share(before, cpu_times())
            # Profiled apart: py-spy takes CPU of its own, so the rate above is unprofiled.
            spies = []
            if profile is not None:
                for proc, _ in servers:
                    for pid in [proc.pid, *children(proc.pid)]:
                        out = profile / f"n{count}-{pid}.txt"
                        cmd = ["py-spy", "record", "--nonblocking", "-p", str(pid), "-r", "100"]
                        cmd += ["-d", str(int(duration)), "-f", "raw", "-o", str(out)]
                        spies.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL), out))
                wrk(base, duration, lua, script_env)
            samples: Counter[str] = Counter()
            for spy, out in spies:
                spy.wait(timeout=duration + 60)
                if out.exists():
                    samples.update(profile_samples(out))
            total = sum(samples.values()) or 1
            shares = {k: round(v / total, 3) for k, v in samples.most_common()}
        finally:
            lb.terminate()
            lb.wait(timeout=30)
        direct = None
        if count == 1:
            direct = wrk(f"http://127.0.0.1:{servers[0][1]}", duration, lua, script_env)
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            proc.wait(timeout=60)
    return {
        "processes": count,
        "cold_rps": warm.rps,
        "rps": top.rps,
        "p99_ms": top.p99_ms,
        "non_2xx": warm.non_2xx + top.non_2xx,
        "direct_rps": direct.rps if direct else None,
        "machine_idle": idle,
        "profile_shares": shares or None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure of one run."""
    load_before = os.getloadavg()
    counts = [int(n) for n in args.processes.split(",")]
    profile = Path(args.profile) if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        if shutil.which("py-spy") is None:
            raise SystemExit("--profile needs py-spy on PATH")
    with (
        tempfile.TemporaryDirectory(prefix="patchline-processes-") as tmp,
        database(args.database) as url,
    ):
        work = Path(tmp)
        prepared = prepare(work, 0, url)
        credentials = work / "credentials.txt"
        copy_devices(url, args.devices, credentials)
        sync(prepared.home, url)
        warm_seconds = max(args.duration, args.devices / 2000)
        runs = [
            measure(
                prepared.home,
                url,
                credentials,
                prepared.body,
                work,
                n,
                args.duration,
                warm_seconds,
                profile,
            )
            for n in counts
        ]
        answer = b'{"signed":' + b"x" * 900 + b"}"
        nginx: WrkResult = nginx_rate(work, answer, args.duration)
    for entry in runs:
        entry["ratio_vs_nginx"] = entry["rps"] / nginx.rps
        entry["ratio_vs_one"] = entry["rps"] / runs[0]["rps"]
    return {
        "devices": args.devices,
        "nginx_rps": nginx.rps,
        "runs": runs,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--database", default="bench_processes")
    parser.add_argument("--profile", default=None, help="record py-spy profiles into DIR")
    parser.add_argument("--smoke", action="store_true", help="1,000 devices, 1 s runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.duration = 1000, 1
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{result['devices']:,} devices, {result['cores']} cores; nginx alone "
        f"{result['nginx_rps']:,.0f}/s; load {result['load_before'][0]:.2f} before, "
        f"{result['load_after'][0]:.2f} after"
    )
    for r in result["runs"]:
        direct = f"; without nginx {r['direct_rps']:,.0f}/s" if r["direct_rps"] else ""
        print(
            f"N={r['processes']}: {r['rps']:,.0f}/s through nginx = {r['ratio_vs_nginx']:.3f} x "
            f"nginx, {r['ratio_vs_one']:.2f} x N=1 (first check-ins {r['cold_rps']:,.0f}/s, "
            f"p99 {r['p99_ms']:.1f} ms at max, non-2xx {r['non_2xx']}, machine idle "
            f"{r['machine_idle']:.0%} meanwhile){direct}"
        )
        if r["profile_shares"]:
            print(
                "     samples: " + ", ".join(f"{k} {v:.0%}" for k, v in r["profile_shares"].items())
            )


if __name__ == "__main__":
    main()
