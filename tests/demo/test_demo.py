from pathlib import Path

import pytest

from patchline.cli.main import main


def test_demo_tells_the_story_and_every_step_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--no-wait", "--port", "0", "--workdir", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "phone-001 (aurora-5g): 1.0 -> 1.1 (security" in out
    assert "phone-002 (nimbus-lite): 3.0 -> 3.1" in out
    assert "trusts only root v1 and walks the root chain: 1.0 -> 1.2" in out
    assert "refused: LengthOrHashMismatchError" in out
    assert "3.1 -> 3.2" in out
    assert "aurora-5g: 3 releases, newest 1.2" in out
