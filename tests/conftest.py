"""Shared fixtures: a fast-KDF repository with a fixed clock, and a static host."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from patchline.clock import FixedClock
from patchline.demo.static_host import StaticHost
from patchline.repository import (
    ReleaseRequest,
    Repository,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from patchline.wire.release import UpdateClass

PASSPHRASE = "correct horse battery staple"
START = datetime.now(UTC).replace(microsecond=0)  # ngclient checks expiry on the real clock


@pytest.fixture(autouse=True)
def _fast_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap scrypt and a known passphrase for every test; no real prompt ever."""
    monkeypatch.setenv("PATCHLINE_KEY_KDF_LOG2N", "10")
    monkeypatch.setenv("PATCHLINE_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("PATCHLINE_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line each


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def open_repo(home: Path, clock: FixedClock) -> Repository:
    """Open ``home`` as the CLI would, with the test passphrase and clock."""
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    return Repository.open(home, Settings(kdf_log2n=10), passphrases, clock)


@pytest.fixture
def repo(tmp_path: Path, clock: FixedClock) -> Repository:
    """A new repository with models ``alpha`` and ``beta``."""
    home = tmp_path / "repo"
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    created = init_repository(
        home,
        RepositoryConfig(keys_dir=home / "keys"),
        settings=Settings(kdf_log2n=10),
        passphrases=passphrases,
        clock=clock,
    )
    add_model(created, "alpha")
    add_model(created, "beta")
    return created


def image_bytes(label: str, size: int = 64 * 1024) -> bytes:
    """Deterministic, distinct image contents."""
    seed = hashlib.sha256(label.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def publish(
    repo: Repository,
    model: str,
    build: str,
    spl: str = "2026-01-01",
    update_class: UpdateClass = UpdateClass.SECURITY,
    **extra: object,
) -> Path:
    """Publish a generated image as ``model`` ``build``; return the image file."""
    image = repo.layout.home.parent / f"{model}-{build}.img"
    image.write_bytes(image_bytes(f"{model}/{build}"))
    add_release(
        repo,
        ReleaseRequest(
            image=image,
            model=model,
            build=build,
            security_patch_level=date.fromisoformat(spl),
            update_class=update_class,
            **extra,  # type: ignore[arg-type]
        ),
    )
    return image


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (lock file aside) with its sha256: to prove nothing changed."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".publish.lock"
    } | {str(p.relative_to(root)) + "/": "dir" for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def host(repo: Repository) -> Iterator[StaticHost]:
    """The repository's public tree on a plain static HTTP server on 127.0.0.1."""
    server = StaticHost(repo.layout.public_dir).start()
    yield server
    server.stop()


# --- databases: every store and server test runs on SQLite and on PostgreSQL ---------

POSTGRES_URL_VAR = "PATCHLINE_TEST_DATABASE_URL"


def _postgres_admin_url() -> str | None:
    import os

    return os.environ.get(POSTGRES_URL_VAR)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated to the newest schema.

    Skips when ``PATCHLINE_TEST_DATABASE_URL`` is unset or unreachable, unless
    ``PATCHLINE_REQUIRE_POSTGRES=1``, when it fails instead.
    """
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from patchline.store.db import Database
    from patchline.store.migrate import upgrade

    admin_url = _postgres_admin_url()
    required = os.environ.get("PATCHLINE_REQUIRE_POSTGRES") == "1"
    if not admin_url:
        if required:
            pytest.fail(f"PATCHLINE_REQUIRE_POSTGRES=1 but {POSTGRES_URL_VAR} is not set")
        pytest.skip(f"{POSTGRES_URL_VAR} is not set")
    name = f"patchline_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if required:
            pytest.fail(f"PostgreSQL at {admin_url} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {admin_url} is unreachable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    db = Database.connect(url)
    upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database: a SQLite file, then a PostgreSQL database."""
    from sqlalchemy import text

    from patchline.store.db import Base, Database
    from patchline.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'patchline.db'}"
        db = Database.connect(url)
        upgrade(db)
        db.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_server_url")
    db = Database.connect(url)
    with db.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    yield url
