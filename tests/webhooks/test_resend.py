"""A webhook message given up on after its last attempt is listed with its error and
attempts, through the API and the CLI, and is delivered once re-sent."""

from __future__ import annotations

import json
import os
import time

import pytest

from patchline.cli.main import main
from patchline.webhooks.signing import new_secret
from tests.server.conftest import RunningServer, free_port
from tests.webhooks.conftest import FAST_RETRIES
from tests.webhooks.flows import subscribe
from tests.webhooks.receiver import Receiver


@pytest.fixture
def server_env() -> dict[str, str]:
    return {**FAST_RETRIES, "PATCHLINE_WEBHOOK_MAX_ATTEMPTS": "2"}


def test_an_event_given_up_on_is_listed_with_its_error_and_can_be_resent(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    receiver = Receiver(free_port(), secret)
    subscribe(served, receiver.url, ["proposal.created"], secret)
    assert (
        served.api().post("/api/policies", json={"id": "x", "effect": "allow"}).status_code == 202
    )
    api = served.api()
    deadline = time.monotonic() + 30
    while not (failed := api.get("/api/webhooks/deliveries", params={"state": "failed"}).json()):
        assert time.monotonic() < deadline, "never given up on"
        time.sleep(0.2)
    [message] = failed
    assert message["attempts"] == 2
    assert message["event_type"] == "proposal.created"
    assert "ConnectError" in message["last_error"]
    receiver.start()
    try:
        os.environ["PATCHLINE_DATABASE_URL"] = served.database_url
        capsys.readouterr()
        assert (
            main(
                ["--home", str(served.home), "webhook", "deliveries", "--state", "failed", "--json"]
            )
            == 0
        )
        [listed] = json.loads(capsys.readouterr().out)["deliveries"]
        assert listed["id"] == message["id"]
        assert listed["attempts"] == 2
        assert main(["--home", str(served.home), "webhook", "resend", "--failed"]) == 0
        receiver.wait_for(1)
        assert list(receiver.received.bodies) == [message["message_id"]]
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]
        receiver.stop()
