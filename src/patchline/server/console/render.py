"""Rendering a console page: the template with the visitor, their CSRF token and the
navigation, the session cookie when it is new, and headers that keep the page to its own
origin (no framing, scripts from this server only)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patchline.server.api.deps import runtime
from patchline.server.console.access import Visitor, context, cookie_args

#: The pages in the navigation: (path, title).
NAVIGATION = (
    ("/", "Overview"),
    ("/rollouts", "Rollouts"),
    ("/devices", "Devices"),
    ("/compliance", "Compliance"),
    ("/support", "Support"),
)

#: Scripts and styles from this server only; no framing by other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def remember(response: Response, request: Request, seen: Visitor) -> Response:
    """Set the visitor's session cookie on ``response`` when it is new, and the
    security headers."""
    ctx = context(request)
    if seen.set_cookie:
        response.set_cookie(value=ctx.signer.dump(seen.session), **cookie_args(ctx))  # type: ignore[arg-type]
    response.headers.update(SECURITY_HEADERS)
    return response


def page(
    request: Request, seen: Visitor, template: str, status_code: int = 200, **values: Any
) -> Response:
    """The page ``template`` for ``seen`` with ``values``."""
    rt = runtime(request)
    response: HTMLResponse = context(request).templates.TemplateResponse(
        request,
        template,
        {
            "visitor": seen,
            "csrf": seen.csrf,
            "navigation": NAVIGATION,
            "path": request.url.path,
            "now": rt.clock.now(),
            **values,
        },
        status_code=status_code,
    )
    return remember(response, request, seen)
