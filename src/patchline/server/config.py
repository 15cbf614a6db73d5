"""The server's fixed tuning: what a process runs with besides ``patchline.settings``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class ServerTuning:
    """Constants of one server process, not read from the environment (the settings a
    deployment changes are ``patchline.settings.Settings``)."""

    answer_validity: timedelta = timedelta(hours=24)
    poll_after_seconds: int = 3600
    last_seen_resolution: timedelta = timedelta(minutes=5)
    catalog_poll_seconds: float = 1.0
    writer_max_delay: float = 0.02
