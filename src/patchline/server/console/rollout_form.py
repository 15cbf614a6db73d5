"""The rollouts page's form to start a rollout, read into the API's own body, so a
rollout started from the console is checked exactly as one started by ``POST
/api/rollouts``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from patchline.errors import UsageError
from patchline.fleet.rollouts import RolloutSpec
from patchline.server.api.rollout_models import RolloutBody


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _percent(text: str) -> float:
    try:
        return float(text.rstrip("%").strip())
    except ValueError:
        raise UsageError(f"phase {text!r} is not a percentage", hint="e.g. 1, 10, 100") from None


def rollout_form_spec(
    model: str,
    build: str,
    phases: str,
    soak_hours: float,
    min_healthy: int,
    regions: str,
    stepping_stone: str,
) -> RolloutSpec:
    """The rollout the form describes; UsageError (422) naming what is wrong."""
    body: dict[str, Any] = {
        "model": model.strip(),
        "build": build.strip(),
        "phases": [
            {"percent": _percent(p), "soak_hours": soak_hours, "min_healthy": min_healthy}
            for p in _items(phases)
        ],
        "selection": {"regions": _items(regions)},
        "stepping_stone": stepping_stone.strip() or None,
    }
    try:
        parsed = RolloutBody.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"the rollout is not accepted: {problems}") from None
    return parsed.spec()
