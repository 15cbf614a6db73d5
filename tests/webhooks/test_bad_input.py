"""Webhook subscriptions refuse bad input with a status that means it, and change nothing."""

from __future__ import annotations

import pytest

from patchline.webhooks.signing import new_secret
from tests.server.conftest import RunningServer, make_token


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"url": "http://127.0.0.1:9/h", "events": ["rule.deleted"]},
            "unknown event(s): rule.deleted",
        ),
        ({"url": "ftp://127.0.0.1/h", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "file:///etc/passwd", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "http:///h", "events": ["rule.created"]}, "is not an http(s) URL"),
        # urlsplit raises on these (an unclosed IPv6 bracket, a port that is no number):
        ({"url": "http://h[:\u001a", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "http://h:port/", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "http://h:0/", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "http://h/\u001b[31m", "events": ["rule.created"]}, "is not an http(s) URL"),
        ({"url": "http://127.0.0.1:9/h", "events": []}, None),
        ({"url": "http://127.0.0.1:9/h", "events": ["rule.created"], "secret": "abc"}, "whsec_"),
    ],
)
def test_a_bad_subscription_is_422_and_stores_nothing(
    served: RunningServer, body: dict[str, object], detail: str | None
) -> None:
    answer = served.api().post("/api/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    if detail is not None:
        assert detail in answer.json()["detail"]
    assert served.api().get("/api/webhooks").json() == []


@pytest.mark.parametrize("role", ["viewer", "compliance", "release-manager"])
def test_only_an_admin_manages_webhooks(
    served: RunningServer, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token = make_token(served.home, served.database_url, "someone", role, capsys)
    client = served.client(token)
    body = {"url": "http://127.0.0.1:9/h", "events": ["rule.created"], "secret": new_secret()}
    assert client.post("/api/webhooks", json=body).status_code == 403
    assert client.get("/api/webhooks").status_code == 403
    assert client.get("/api/webhooks/deliveries").status_code == 403
    assert served.api().get("/api/webhooks").json() == []
    added = served.api().post("/api/webhooks", json=body)
    assert added.status_code == 201
    assert client.delete(f"/api/webhooks/{added.json()['id']}").status_code == 403
    listed = served.api().get("/api/webhooks").json()
    assert [w["url"] for w in listed] == ["http://127.0.0.1:9/h"]
    assert "secret" not in listed[0]
    assert served.api().delete(f"/api/webhooks/{added.json()['id']}").status_code == 200
    assert served.api().get("/api/webhooks").json() == []
    assert served.api().delete(f"/api/webhooks/{added.json()['id']}").status_code == 404
