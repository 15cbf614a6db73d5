"""Agent download-and-verify throughput against curl and sha256 alone, same file, same run.

    .venv/bin/python bench/agent_download.py [--size-mib 1024] [--rounds 3]

Starts nginx (Debian package) as this user's own process on a free port of 127.0.0.1
with one worker, serves a generated image, and measures, best of --rounds:
curl of the file alone written to a file (like the agent) and to /dev/null, hashlib
sha256 of the file alone (from the page cache, 1 MiB reads into one reused buffer), and
the agent's download_verified (HTTP, written to a staging file, sha256 checked against
the signed target). Output files are removed before each timed run, outside the timing.
Prints the ratio agent / slower of (curl to a file, sha256), the like-for-like figure,
and also agent / slower of (curl to /dev/null, sha256), the stricter one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tuf.api.metadata import TargetFile

from patchline.agent.device import Limits
from patchline.agent.transfer import HttpOpener, download_verified
from patchline.transport.http import http_pool

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_image(path: Path, size: int) -> str:
    block = os.urandom(16 * 1024 * 1024)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(len(block), left)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def start_nginx(work: Path, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=root))
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                log = (work / "error.log").read_text()
                raise RuntimeError(f"nginx did not start: {log}") from exc
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def best(rounds: int, run: Callable[[], None], setup: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(rounds):
        setup()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(size_mib: int, rounds: int) -> dict[str, float]:
    """Rates in bytes/s for curl (to a file and to /dev/null), sha256 and the agent; and
        the two ratios; and the agent's peak resident memory while downloading (a process of
    its own, against the same process that only imports the agent)."""
    size = size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers may run as another user when started by root
        (work / "www").mkdir(mode=0o755)
        image = work / "www" / "image.img"
        sha = make_image(image, size)
        image.chmod(0o644)
        target = TargetFile(size, {"sha256": sha}, "image.img")
        nginx, url = start_nginx(work, work / "www")
        try:
            file_url = f"{url}/image.img"
            curl = shutil.which("curl") or "curl"

            staging = work / "slot_b.img.part"

            def remove_staging() -> None:
                staging.unlink(missing_ok=True)

            def run_curl_file() -> None:
                subprocess.run([curl, "-sf", "-o", str(staging), file_url], check=True)

            def run_curl_null() -> None:
                subprocess.run([curl, "-sf", "-o", "/dev/null", file_url], check=True)

            def run_sha() -> None:
                digest = hashlib.sha256()
                buffer = memoryview(bytearray(1 << 20))
                with image.open("rb", buffering=0) as handle:
                    while n := handle.readinto(buffer):
                        digest.update(buffer[:n])
                assert digest.hexdigest() == sha

            pool = http_pool(5, 30)

            def run_agent() -> None:
                download_verified(HttpOpener(pool), file_url, target, staging, Limits())

            run_sha()  # warm the page cache
            t_curl_file = best(rounds, run_curl_file, remove_staging)
            t_curl_null = best(rounds, run_curl_null)
            t_sha = best(rounds, run_sha)
            t_agent = best(rounds, run_agent, remove_staging)
            remove_staging()
            peak = child_peak_rss(file_url, sha, size, staging, download=True)
            remove_staging()
            idle = child_peak_rss(file_url, sha, size, staging, download=False)
        finally:
            nginx.terminate()
            nginx.wait()
    rates = {
        "curl-file": size / t_curl_file,
        "curl-null": size / t_curl_null,
        "sha256": size / t_sha,
        "agent": size / t_agent,
    }
    rates["ratio"] = rates["agent"] / min(rates["curl-file"], rates["sha256"])
    rates["ratio-null"] = rates["agent"] / min(rates["curl-null"], rates["sha256"])
    rates["agent-peak-rss"] = peak
    rates["agent-idle-rss"] = idle
    return rates


def child_peak_rss(url: str, sha: str, size: int, staging: Path, *, download: bool) -> float:
    """Peak resident bytes, after its imports, of a new process that downloads and
    verifies ``url`` as the agent does (or, with ``download`` false, does nothing)."""
    args = [sys.executable, __file__, "child", url, sha, str(size), str(staging)]
    out = subprocess.run(
        [*args, "1" if download else "0"], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip())


def child_main(url: str, sha: str, size: str, staging: str, download: str) -> None:
    """The measured process of ``child_peak_rss``: prints its peak RSS in bytes, from
    after its imports (Linux resets the peak on writing 5 to /proc/self/clear_refs)."""
    clear = Path("/proc/self/clear_refs")
    if clear.exists():
        clear.write_text("5")
    if download == "1":
        target = TargetFile(int(size), {"sha256": sha}, "image.img")
        download_verified(HttpOpener(http_pool(5, 30)), url, target, Path(staging), Limits())
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]) * 1024)
                return
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "child":
        child_main(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates = measure(args.size_mib, args.rounds)
    for name in ("curl-file", "curl-null", "sha256", "agent"):
        print(f"{name:>9}: {rates[name] / 1e9:.2f} GB/s")
    print(f"ratio agent / slower of curl-file, sha256: {rates['ratio']:.2f} (target >= 0.80)")
    print(f"ratio agent / slower of curl-null, sha256: {rates['ratio-null']:.2f}")
    mib = 1 << 20
    print(
        f"agent peak RSS while downloading {args.size_mib} MiB: "
        f"{rates['agent-peak-rss'] / mib:.0f} MiB "
        f"(the same process without downloading: {rates['agent-idle-rss'] / mib:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
