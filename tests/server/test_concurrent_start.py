"""Server processes started together on a new PostgreSQL database: each migrates,
syncs the signed releases and serves, in whatever order they get there; the releases
table and the audit chain hold each target once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from patchline.audit import verify
from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import Database
from patchline.store.models import AuditEntry, Release
from tests.conftest import POSTGRES_URL_VAR, publish
from tests.server.conftest import start_server, stop_server

pytestmark = pytest.mark.long  # minutes: `make test-long`

TRIES = 5
PROCESSES = 2


@pytest.fixture
def new_database(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of new, empty PostgreSQL databases (not migrated), dropped afterwards."""
    import os

    admin_url = os.environ[POSTGRES_URL_VAR]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def create() -> str:
        name = f"patchline_start_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    yield create
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_servers_started_together_on_a_new_database_all_serve_and_sync_each_target_once(
    repo: Repository, new_database: Callable[[], str]
) -> None:
    create_director(repo)
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    publish(repo, "alpha", "1.2", "2026-03-01")
    publish(repo, "beta", "1.0")
    targets = sorted(
        path
        for role in repo.state().delegated_roles()
        for path in repo.state().delegated(role).signed.targets
    )
    home = repo.layout.home
    for _ in range(TRIES):
        url = new_database()
        with ThreadPoolExecutor(PROCESSES) as pool:
            starting = [pool.submit(start_server, home, url) for _ in range(PROCESSES)]
            outcomes = [f.exception() or f.result() for f in starting]
        servers = [s for s in outcomes if not isinstance(s, BaseException)]
        try:
            assert servers == outcomes, f"a server died at start: {outcomes}"
            for server in servers:
                health = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)  # type: ignore[attr-defined]
                assert health.status_code == 200
                assert health.json()["catalog_version"] >= 1
        finally:
            for server in servers:
                stop_server(server)
        db = Database.connect(url)
        try:
            with db.transaction() as session:
                rows = sorted(session.scalars(select(Release.target_path)))
                entries = sorted(
                    session.scalars(select(AuditEntry.subject).where(AuditEntry.kind == "release"))
                )
            assert rows == targets
            assert entries == targets
            assert verify(db).ok
        finally:
            db.dispose()
