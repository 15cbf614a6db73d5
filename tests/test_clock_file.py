"""The simulated clock file: a server reads the time a simulation writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patchline.clock import FileClock, write_clock_file
from patchline.errors import ConfigError
from patchline.settings import Settings

T0 = datetime(2026, 3, 2, 6, 15, tzinfo=UTC)


def test_a_file_clock_tells_each_instant_written_to_it(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    write_clock_file(path, T0)
    clock = FileClock(path)
    assert clock.now() == T0
    for minutes in range(1, 50):
        write_clock_file(path, T0 + timedelta(minutes=minutes))
        assert clock.now() == T0 + timedelta(minutes=minutes)


def test_a_missing_or_unreadable_clock_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the simulated clock"):
        FileClock(tmp_path / "absent")
    (tmp_path / "garbage").write_text("tuesday\n")
    with pytest.raises(ConfigError, match="not an instant"):
        FileClock(tmp_path / "garbage")
    (tmp_path / "naive").write_text("2026-03-02T06:15:00\n")
    with pytest.raises(ConfigError, match="without a time zone"):
        FileClock(tmp_path / "naive")
    with pytest.raises(ValueError, match="aware"):
        write_clock_file(tmp_path / "clock", datetime(2026, 3, 2))


def test_the_server_reads_the_clock_file_only_when_told(tmp_path: Path) -> None:
    assert Settings.from_env({}, home=tmp_path).simulated_clock_file is None
    env = {"PATCHLINE_SIMULATED_CLOCK_FILE": str(tmp_path / "clock")}
    settings = Settings.from_env(env, home=tmp_path)
    assert settings.simulated_clock_file == tmp_path / "clock"
