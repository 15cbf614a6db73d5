from pathlib import Path

import pytest

from patchline.cli.main import main
from tests.server.conftest import free_port


def test_demo_tells_the_story_and_every_step_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    port = str(free_port())
    code = main(["demo", "--no-wait", "--port", port, "--workdir", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "phone-001: Installed build 1.1" in out
    assert "as a delta" in out
    assert "phone-003: Build 1.2 was installed" in out
    assert "did not boot healthy" in out
    assert "The server sees phone-003 as: rolled-back (on build 1.0)." in out
    assert "phone-001 is offered: none." in out
    assert "phone-001: Installed build 1.4" in out
    assert "phone-002: Installed build 3.2" in out
    assert "(tampered image)" in out
    assert "phone-002: Installed build 3.3" in out
    assert "unbroken" in out
    assert "phone-001: build 1.4, booted-healthy" in out
    assert "phone-003: build 1.0, rolled-back" in out
    assert "Rollout R-1 offers aurora-5g 1.4" in out
