"""The story benchmark's per-poll reference runs, and the agent stays near TUF's own cost."""

from pathlib import Path

from bench.story_2018 import poll_cost


def test_a_poll_with_nothing_new_costs_about_what_tuf_itself_costs(tmp_path: Path) -> None:
    per_agent, per_tuf = poll_cost(tmp_path, polls=25)
    assert per_tuf > 0
    # Generous: the machine is shared; the bench records the real ratio (about 1.15).
    assert per_agent < 5 * per_tuf
