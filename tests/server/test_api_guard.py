"""The management API checks the token before reading a body, caps bodies, limits rates
and counts, logs and slows failed sign-ins; on a real server, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import Database
from patchline.store.models import Release
from tests.server.conftest import RunningServer, make_token, start_server, stop_server

LIMITS = {
    "PATCHLINE_API_FAILED_SIGNINS_PER_MINUTE": "5",
    "PATCHLINE_API_REQUESTS_PER_MINUTE_PER_TOKEN": "8",
    "PATCHLINE_API_MAX_BODY_BYTES": str(64 * 1024),
    "PATCHLINE_API_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
}
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def guarded(
    repo: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[RunningServer]:
    """A server with small limits, so tests reach them quickly."""
    create_director(repo)
    home = repo.layout.home
    process = start_server(home, database_url, env=LIMITS)
    token = make_token(home, database_url, "admin", "admin", capsys)
    url = f"http://127.0.0.1:{process.port}"  # type: ignore[attr-defined]
    yield RunningServer(url, home, database_url, process, token)
    stop_server(process)


def raw_request(
    server: RunningServer, head: str, first_chunk: bytes, timeout: float = 10
) -> tuple[int, str, float]:
    """Send a request head and only the first piece of its body; return the status line's
    code, the whole answer and the seconds it took. The rest of the body is never sent."""
    port = int(server.url.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + first_chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        with_body = answer
        try:
            sock.settimeout(1)
            while piece := sock.recv(65536):
                with_body += piece
        except OSError:
            pass
    elapsed = time.monotonic() - started
    text = with_body.decode("latin-1")
    return int(text.split(" ", 2)[1]), text, elapsed


def _head(path: str, token: str | None, length: int | None, kind: str = "application/json") -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Type: {kind}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_wrong_token_with_a_huge_body_gets_401_before_the_body_is_read(
    guarded: RunningServer,
) -> None:
    for token in ("pl_wrong-token-0123456789", None):
        status, answer, elapsed = raw_request(
            guarded, _head("/api/policies", token, FIFTY_MB), b"{" + b" " * 65535
        )
        assert status == 401, answer
        assert "www-authenticate: bearer" in answer.lower()
        assert elapsed < 5


def test_a_body_over_the_limit_gets_413_declared_or_streamed(guarded: RunningServer) -> None:
    status, answer, elapsed = raw_request(
        guarded, _head("/api/policies", guarded.admin_token, FIFTY_MB), b"{" + b" " * 65535
    )
    assert status == 413, answer
    assert elapsed < 5
    # Chunked: no length declared, refused once the stream passes the limit.
    chunk = b" " * 32768
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))
    status, answer, _ = raw_request(
        guarded, _head("/api/policies", guarded.admin_token, None), body
    )
    assert status == 413, answer
    # The image upload has its own, larger limit; past it: 413 and nothing published.
    boundary = "b0undary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.img"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    chunks = [part, *[b"\0" * 65536] * 40]  # 2.5 MB of image > 2 MiB
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    head = _head(
        "/api/releases", guarded.admin_token, None, f"multipart/form-data; boundary={boundary}"
    )
    status, answer, _ = raw_request(guarded, head, body)
    assert status == 413, answer
    db = Database.connect(guarded.database_url)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 0
    db.dispose()
    # Under the limits, the same endpoints still work.
    assert guarded.api().post("/api/policies", json={"id": "x"}).status_code == 422


def test_failed_sign_ins_are_counted_logged_and_then_refused(guarded: RunningServer) -> None:
    wrong = "pl_not-a-real-token-but-long-enough"
    anonymous = guarded.client()
    for _ in range(5):
        assert guarded.client(wrong).get("/api/releases").status_code == 401
    refused = guarded.client(wrong).get("/api/releases")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # The address is slowed down whatever token it now presents.
    assert guarded.api().get("/api/releases").status_code == 429
    metrics = anonymous.get("/metrics").text
    assert 'patchline_api_failed_signins_total{reason="unknown-token"} 5.0' in metrics
    assert 'patchline_api_rate_limited_total{limit="failed-signins"} 2.0' in metrics
    stop_server(guarded.process)
    output = (guarded.home / "server.log").read_text()
    failures = [line for line in output.splitlines() if "failed sign-in" in line]
    assert len(failures) == 5, output
    assert "127.0.0.1" in failures[0]
    assert hashlib.sha256(wrong.encode()).hexdigest()[:8] in failures[0]
    assert wrong not in output
    assert wrong[3:20] not in output


def test_a_token_past_its_rate_gets_429_with_retry_after(guarded: RunningServer) -> None:
    api = guarded.api()
    statuses = [api.get("/api/releases").status_code for _ in range(8)]
    assert statuses == [200] * 8
    refused = api.get("/api/releases")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "too many requests" in refused.json()["detail"]


def test_text_holding_the_nul_character_gets_422_and_changes_nothing(
    guarded: RunningServer,
) -> None:
    """PostgreSQL cannot store U+0000: a body holding it is refused before it is read by
    an endpoint, escaped or raw, even when the escape is split between two chunks."""
    api = guarded.api()
    rule = {"id": "nul", "effect": "allow", "priority": 1, "note": "a\u0000b"}
    refused = api.post("/api/policies", json=rule)
    assert refused.status_code == 422, refused.text
    assert "NUL" in refused.text
    chunks = [b'{"id": "nul", "effect": "allow", "note": "a\\u00', b'00b"}']
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    status, answer, _ = raw_request(
        guarded, _head("/api/policies", guarded.admin_token, None), body
    )
    assert status == 422, answer
    assert api.get("/api/policies").json() == []
