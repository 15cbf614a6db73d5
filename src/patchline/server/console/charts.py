"""Chart.js data from the fleet's aggregates: labels and one dataset per series, ready
for ``static/console.js`` to draw."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from patchline.fleet.overview import DayCount, PatchLevelCount


def patch_level_chart(counts: Sequence[PatchLevelCount]) -> dict[str, Any]:
    """Devices per security patch level (x), one stacked series per model."""
    levels = sorted({c.patch_level for c in counts})
    models = sorted({c.model for c in counts})
    index = {(c.model, c.patch_level): c.devices for c in counts}
    return {
        "type": "bar",
        "stacked": True,
        "labels": [level.isoformat() for level in levels],
        "datasets": [
            {"label": model, "data": [index.get((model, level), 0) for level in levels]}
            for model in models
        ],
    }


def per_day_chart(
    counts: Iterable[DayCount], first: date, last: date, keys: Sequence[str]
) -> dict[str, Any]:
    """One stacked series per key over every day from ``first`` to ``last`` (zero-filled)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index = {(c.day, c.key): c.count for c in counts}
    return {
        "type": "bar",
        "stacked": True,
        "labels": [d.isoformat() for d in days],
        "datasets": [{"label": k, "data": [index.get((d, k), 0) for d in days]} for k in keys],
    }
