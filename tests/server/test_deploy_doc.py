"""docs/deploy.md works as written: its nginx configuration serves the signed tree from
disk and passes the device API to a real server, and its systemd unit verifies."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import default_url
from tests.conftest import publish
from tests.server.conftest import free_port, start_server, stop_server

DOC = Path(__file__).parents[2] / "docs" / "deploy.md"


def _block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"no {language} block in {DOC}"
    return found.group(1)


def _site(server_port: int, public: int, internal: int, tree: Path) -> str:
    site = _block("nginx")
    for documented, here in (
        ("    server 127.0.0.1:8002;\n", ""),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{server_port};"),
        ("listen 80;", f"listen 127.0.0.1:{public};"),
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{internal};"),
        ("/var/lib/patchline/public/", f"{tree}/"),
    ):
        assert documented in site, documented
        site = site.replace(documented, here)
    return site


@pytest.fixture
def nginx_in_front(repo: Repository, tmp_path: Path) -> Iterator[tuple[str, str, Repository]]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    create_director(repo)
    publish(repo, "alpha", "1.0")
    home = repo.layout.home
    server = start_server(home, default_url(home), env={"PATCHLINE_SERVE_REPOSITORY": "0"})
    public, internal = free_port(), free_port()
    root = tmp_path / "nginx"
    root.mkdir()
    site = _site(server.port, public, internal, repo.layout.public_dir)  # type: ignore[attr-defined]
    (root / "site.conf").write_text(site)
    # Test directories are private to their owner: workers run as that owner here.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\n"
        f"error_log {root}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n"
        f"  proxy_temp_path {root}/proxy;\n  fastcgi_temp_path {root}/fastcgi;\n"
        f"  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n"
        f"  include {root}/site.conf;\n}}\n"
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{internal}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                assert time.monotonic() < deadline, "nginx did not come up"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{public}", f"http://127.0.0.1:{internal}", repo
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        stop_server(server)


def test_nginx_serves_the_tree_and_passes_the_device_api(
    nginx_in_front: tuple[str, str, Repository],
) -> None:
    public, internal, repo = nginx_in_front
    tree = repo.layout.public_dir
    timestamp = httpx.get(f"{public}/repository/metadata/timestamp.json")
    assert timestamp.status_code == 200
    assert timestamp.content == (tree / "metadata" / "timestamp.json").read_bytes()
    assert timestamp.headers["content-type"] == "application/json"
    image = next(p for p in (tree / "targets").rglob("*") if p.is_file())
    path = image.relative_to(tree).as_posix()
    part = httpx.get(f"{public}/repository/{path}", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206  # resumable downloads
    assert part.content == image.read_bytes()[:10]
    # nginx, not the server, serves the tree: the server was told not to.
    assert httpx.get(f"{internal}/repository/metadata/timestamp.json").status_code == 404
    (tree / ".partial").write_text("half written")
    assert httpx.get(f"{public}/repository/.partial").status_code == 403
    # The device API reaches the server (which refuses an unknown device).
    refused = httpx.post(
        f"{public}/v1/check-in", content=b"{}", headers={"Authorization": "Bearer x.y"}
    )
    assert refused.status_code == 401
    assert "unknown device" in refused.json()["error"]
    too_big = httpx.post(f"{public}/v1/check-in", content=b"x" * 70_000)
    assert too_big.status_code == 413
    # Operators' endpoints only on the internal listener.
    assert httpx.get(f"{public}/api/devices").status_code == 404
    assert httpx.get(f"{public}/healthz").status_code == 404
    assert httpx.get(f"{internal}/healthz").status_code == 200
    assert httpx.get(f"{internal}/api/devices").status_code == 401


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    env = tmp_path / "server.env"
    env.write_text("PATCHLINE_DATABASE_URL=sqlite:////var/lib/patchline/patchline.db\n")
    unit = (
        _block("ini")
        .replace(
            "/opt/patchline/.venv/bin/patchline", str(Path(sys.executable).parent / "patchline")
        )
        .replace("/etc/patchline/server.env", str(env))
    )
    path = tmp_path / "patchline@8001.service"
    path.write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr, result.stderr
