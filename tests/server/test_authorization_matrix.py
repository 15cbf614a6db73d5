"""Every management endpoint x every role, no token, a revoked token and a device's
credential: the status follows from the permission the endpoint requires and the
role's grants, and a refused request changes nothing (database rows, audit chain,
signed repository).

The endpoints are read from the running server's OpenAPI document, and each one's
permission from the ``require`` dependency on its route, so a new endpoint joins the
matrix by itself -- and one added without a permission fails the first test.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import func, select, text

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.server.api import ROUTERS
from patchline.server.auth import GRANTS, Permission, Role
from patchline.store.db import Base, Database
from tests.conftest import publish, tree_digest
from tests.server.conftest import (
    ENROLLMENT_TOKEN,
    RunningServer,
    make_token,
    start_server,
    stop_server,
)
from tests.server.test_device_flow import enroll


def permissions_of(dependant: Dependant) -> set[Permission]:
    """The permissions the ``require`` checks anywhere under ``dependant`` admit by."""
    found: set[Permission] = set()
    for sub in dependant.dependencies:
        call = sub.call
        if call is not None and getattr(call, "__qualname__", "") == "require.<locals>.check":
            found.add(inspect.getclosurevars(call).nonlocals["permission"])
        found |= permissions_of(sub)
    return found


def route_permissions() -> dict[tuple[str, str], Permission]:
    """(method, path template as /openapi.json writes it) -> the one permission each
    management route requires."""
    table: dict[tuple[str, str], Permission] = {}
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            (permission,) = permissions_of(route.dependant) or {None}
            for method in route.methods:
                table[(method, route.path_format)] = permission  # type: ignore[assignment]
    return table


def test_every_management_route_requires_exactly_one_permission() -> None:
    missing, several = [], []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert route.path.startswith("/api/"), route.path
            found = permissions_of(route.dependant)
            if not found:
                missing.append(f"{sorted(route.methods)} {route.path}")
            elif len(found) > 1:
                several.append(f"{sorted(route.methods)} {route.path}: {sorted(found)}")
    assert missing == [], f"management routes with no permission: {missing}"
    assert several == [], f"management routes with several permissions: {several}"
    assert len(route_permissions()) >= 30


def test_every_permission_is_granted_to_admin_and_read_to_every_role() -> None:
    assert GRANTS[Role.ADMIN] == frozenset(Permission)
    assert all(Permission.READ in granted for granted in GRANTS.values())


# --- the live matrix ------------------------------------------------------------------


def state_of(server: RunningServer) -> dict[str, Any]:
    """Row counts of every table, the audit chain's newest entry and the signed tree."""
    db = Database.connect(server.database_url)
    with db.transaction() as session:
        counts: dict[str, Any] = {
            t.name: session.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }
        counts["audit head"] = session.execute(
            text("SELECT max(seq) FROM audit_entries")
        ).scalar_one_or_none()
    db.dispose()
    counts["repository"] = tree_digest(server.home / "public")
    return counts


def filled(path: str, parameters: list[dict[str, Any]]) -> str:
    """``path`` with each parameter named in it replaced by a value no record has (for one
    that takes a few words, such as a rollout's action, the first of them)."""
    schemas = {p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "path"}

    def value(match: re.Match[str]) -> str:
        schema = schemas.get(match.group(1), {})
        if schema.get("enum"):
            return str(schema["enum"][0])
        return "999999" if schema.get("type") == "integer" else "no-such-thing"

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.fixture
def live(
    repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """A server (SQLite) with a release, a token for every role, a revoked one and an
    enrolled device; the credentials by name."""
    create_director(repo)
    publish(repo, "alpha", "1.0")
    url = f"sqlite:///{tmp_path / 'server.db'}"
    home = repo.layout.home
    process = start_server(home, url, env={"PATCHLINE_API_FAILED_SIGNINS_PER_MINUTE": "100000"})
    tokens = {role.value: make_token(home, url, role.value, role.value, capsys) for role in Role}
    running = RunningServer(
        f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
        home,
        url,
        process,
        tokens["admin"],
    )
    revoked = make_token(home, url, "revoked", "admin", capsys)
    assert running.api().post("/api/tokens/revoked/revoke", json={}).status_code < 300
    _, credential = enroll(running, "SN-AUTH")
    yield running, {**tokens, "revoked": revoked, "device": credential, "none": ""}
    stop_server(process)


def test_every_endpoint_by_every_caller_gets_the_status_its_permission_says(
    live: tuple[RunningServer, dict[str, str]],
) -> None:
    server, callers = live
    document = httpx.get(f"{server.url}/openapi.json").json()
    permissions = route_permissions()
    requests: list[tuple[str, str, Permission]] = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            key = (method.upper(), path)
            assert key in permissions, f"{key} is served but not in a management router"
            requests.append(
                (key[0], filled(path, operation.get("parameters", [])), permissions[key])
            )
    assert len(requests) == len(permissions)

    def send(method: str, path: str, credential: str) -> httpx.Response:
        with server.client(credential or None) as client:
            return client.request(method, path)

    before = state_of(server)
    refused: list[str] = []
    for method, path, permission in requests:
        for name in ("none", "device", "revoked"):
            response = send(method, path, callers[name])
            if response.status_code != 401:
                refused.append(f"{name} {method} {path}: {response.status_code}")
        for role in Role:
            if permission in GRANTS[role]:
                continue
            response = send(method, path, callers[role.value])
            if response.status_code != 403 or permission.value not in response.text:
                refused.append(f"{role.value} {method} {path}: {response.status_code}")
    assert refused == []
    assert state_of(server) == before

    allowed: list[str] = []
    for method, path, permission in requests:
        for role in Role:
            if permission not in GRANTS[role]:
                continue
            status = send(method, path, callers[role.value]).status_code
            if status in (401, 403) or status >= 500:
                allowed.append(f"{role.value} {method} {path}: {status}")
    assert allowed == []


def test_management_tokens_are_not_device_credentials(
    live: tuple[RunningServer, dict[str, str]],
) -> None:
    server, callers = live
    before = state_of(server)
    for name in ("admin", "viewer", "revoked", "none"):
        with server.client(callers[name] or None) as client:
            for path in ("/v1/check-in", "/v1/reports", "/v1/receipts"):
                assert client.post(path, json={}).status_code == 401, (name, path)
            assert client.post("/v1/enroll", json={}).status_code in (401, 403, 422)
    with server.client(ENROLLMENT_TOKEN) as client:
        assert client.get("/api/devices").status_code == 401
    assert state_of(server) == before
