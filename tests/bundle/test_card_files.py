"""A card is written by anyone: a metadata file of gigabytes, an endless FIFO, or a link
to a file outside the card is refused with a reason, and the agent moves on to its next
source (here a genuine card) with no traceback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.state import load_state
from patchline.clock import FixedClock
from patchline.errors import NoUpdateSourceError
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from patchline.wire.device_api import ReportCode, Slot
from tests.conftest import START, image_bytes, publish

LIMIT = "offline-targets.json on the card is larger than 5,000,000 bytes"


@pytest.fixture
def cards(offline_repo: Repository, tmp_path: Path) -> tuple[Path, Path]:
    """A card to spoil and a genuine one, both with alpha 1.1."""
    publish(offline_repo, "alpha", "1.1")
    good = tmp_path / "good"
    export_bundle(offline_repo, "alpha", good)
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    return bad, good


def update_past(bad: Path, good: Path, make_device: Callable[..., DeviceDir]) -> str:
    """Update from ``bad`` then ``good``; the genuine card installs; return bad's reason."""
    device = make_device(bundles=[str(bad), str(good)])
    result = Agent(device, clock=FixedClock(START)).update()
    assert result.status == "installed"
    assert result.source == f"SD card {good}"
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/1.1")
    (attempt,) = result.attempts
    assert attempt.source == f"SD card {bad}"
    assert attempt.code is ReportCode.METADATA_ERROR
    return attempt.reason


def test_a_3_gb_offline_targets_file_is_refused_after_reading_past_the_limit_only(
    cards: tuple[Path, Path], make_device: Callable[..., DeviceDir]
) -> None:
    bad, good = cards
    os.truncate(bad / "metadata" / "offline-targets.json", 3 << 30)  # sparse

    assert update_past(bad, good, make_device) == LIMIT


@contextlib.contextmanager
def endless_fifo(path: Path) -> Iterator[None]:
    """A FIFO at ``path`` fed zeros by a thread for as long as anyone reads it."""
    path.unlink()
    os.mkfifo(path)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                stop.wait(0.01)
                continue
            os.set_blocking(fd, True)
            with contextlib.suppress(OSError), os.fdopen(fd, "wb") as out:
                while not stop.is_set():
                    out.write(bytes(1 << 16))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # let a blocked writer see a reader and stop
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        feeder.join(timeout=5)


def test_an_endless_fifo_on_the_card_is_refused(
    cards: tuple[Path, Path], make_device: Callable[..., DeviceDir]
) -> None:
    bad, good = cards
    with endless_fifo(bad / "metadata" / "offline-targets.json"):
        reason = update_past(bad, good, make_device)

    assert reason == (
        "offline-targets.json on the card is not a regular file (a folder, FIFO or device)"
    )


def test_metadata_linked_to_dev_zero_is_refused_as_a_link_out_of_the_card(
    cards: tuple[Path, Path], make_device: Callable[..., DeviceDir]
) -> None:
    bad, good = cards
    target = bad / "metadata" / "offline-targets.json"
    target.unlink()
    target.symlink_to("/dev/zero")

    assert update_past(bad, good, make_device) == (
        "offline-targets.json on the card is a link to a file outside the card (/dev/zero): "
        "the agent follows no link on a card"
    )


def test_an_image_linked_to_a_file_outside_the_card_is_not_read(
    cards: tuple[Path, Path], make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    bad, good = cards
    (image,) = (bad / "targets").rglob("*.img")
    outside = tmp_path / "outside.img"
    shutil.move(image, outside)  # the same bytes: following the link would install them
    image.symlink_to(outside)

    assert update_past(bad, good, make_device) == (
        f"the card's image {image.name} is a link to a file outside the card ({outside}): "
        "the agent follows no link on a card"
    )


def test_a_plain_repository_copy_on_a_card_is_read_without_following_links(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    shutil.copytree(offline_repo.layout.public_dir, card)
    timestamp = card / "metadata" / "timestamp.json"
    outside = tmp_path / "timestamp.json"
    shutil.move(timestamp, outside)
    timestamp.symlink_to(outside)
    device = make_device(bundles=[str(card)], mirrors=[])

    with pytest.raises(NoUpdateSourceError) as refused:
        Agent(device, clock=FixedClock(START)).update()

    assert (
        "timestamp.json on the card is a link to a file outside the card" in refused.value.message
    )
    assert load_state(device).running.build == "1.0"


def test_the_cli_exits_12_with_the_reason_and_no_traceback(
    cards: tuple[Path, Path], make_device: Callable[..., DeviceDir]
) -> None:
    bad, _ = cards
    os.truncate(bad / "metadata" / "offline-targets.json", 3 << 30)
    device = make_device(bundles=[str(bad)])

    updated = subprocess.run(
        [sys.executable, "-m", "patchline.cli.main", "agent", "update", str(device.path)],
        capture_output=True,
        text=True,
        check=False,
        env={
            "COLUMNS": "400",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
    )

    assert updated.returncode == 12, updated.stderr
    assert f"SD card {bad}: {LIMIT}." in updated.stderr
    assert "Traceback" not in updated.stderr
