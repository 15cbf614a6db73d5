"""The error answers of the management API, written into /openapi.json for every
operation that can give them, so a client knows each status it may meet (and a
conformance check holds the server to it).

Every ``/api`` operation may answer 401 (no token, or one unknown, expired or revoked),
403 (the token's role does not grant it), 429 (the caller's request or failed sign-in
limit; ``Retry-After`` says when to try again) and 503 (the database or the signing
keys are away for a moment; ``Retry-After`` again). One with parameters or a body adds
422 (a field is wrong: FastAPI's list of issues, or Patchline's sentence); one with a
body adds 400 (not JSON) and 413 (larger than the operation's limit); one naming a
resource in its path or body adds 404; one that changes state adds 409 (the change
conflicts with the current state, such as a rollout already open for the release).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Why a request was refused, and what to do about it when that is known."""

    detail: str | list[dict[str, Any]] = Field(
        description="A sentence; for a malformed request, FastAPI's list of issues (each "
        "with the field's location and message)."
    )
    hint: str | None = Field(None, description="What to do next, when known.")


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": ErrorOut, "description": description}
    if retry_after:
        answer["headers"] = _RETRY_AFTER
    return answer


def _takes(dependant: Dependant, where: str) -> bool:
    """Whether ``dependant`` or one of its dependencies takes a ``where`` parameter."""
    if getattr(dependant, f"{where}_params"):
        return True
    return any(_takes(d, where) for d in dependant.dependencies)


def errors_of(needs: Dependant, methods: set[str]) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation taking ``needs`` by one of ``methods`` (see the
    module's docstring)."""
    answers: dict[int | str, dict[str, Any]] = {
        401: _error("No token, or one unknown, expired or revoked."),
        403: _error("The token's role does not grant this."),
        429: _error("Too many requests, or failed sign-ins, from this caller.", True),
        503: _error("The database or the signing keys are away; try again shortly.", True),
    }
    in_path, body = _takes(needs, "path"), _takes(needs, "body")
    if in_path or body or _takes(needs, "query"):
        answers[422] = _error("A parameter or a field of the body is wrong.")
    if body:
        answers[400] = _error("The body is not JSON (or not the form) it must be.")
        answers[413] = _error("The body is larger than this operation accepts.")
    if in_path or body:
        answers[404] = _error("What the path or the body names does not exist.")
    if methods & _CHANGES:
        answers[409] = _error("The change conflicts with the current state.")
    return answers


class DocumentedRoute(APIRoute):
    """A management API operation whose error answers are in /openapi.json."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        errors = errors_of(
            get_dependant(path=path, call=endpoint), set(options.get("methods") or ())
        )
        options["responses"] = {**errors, **(options.get("responses") or {})}
        super().__init__(path, endpoint, **options)


def api_router(**options: Any) -> APIRouter:
    """A router of the management API: under ``/api``, its error answers documented."""
    return APIRouter(prefix="/api", route_class=DocumentedRoute, **options)
