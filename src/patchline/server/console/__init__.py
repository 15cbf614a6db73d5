"""The operator's console: server-rendered pages under ``/`` (overview, rollouts,
devices, compliance, support) over the same services as the management API, signed in
with a management token, with the API's roles. Templates and vendored assets (htmx,
Chart.js; see ``static/vendor/VENDORED.md``) ship in the package: nothing is loaded from
another site."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from patchline.server.console import (
    actions,
    compliance_page,
    devices_page,
    overview_page,
    rollouts_page,
    support_page,
)
from patchline.server.console.access import (
    STATIC_DIR,
    TEMPLATES_DIR,
    ConsoleContext,
    SignInRequired,
    sign_in_url,
    visitor,
)
from patchline.server.console.render import page
from patchline.server.console.session import SessionSigner, load_key
from patchline.server.http_errors import with_every_allowed_method
from patchline.server.rate_limit import RateLimiter
from patchline.server.runtime import Runtime

#: Where the console's own files are served.
STATIC_PATH = "/console-static"
#: The first path segment of every console page.
CONSOLE_ROOTS = frozenset(
    {"", "rollouts", "devices", "compliance", "support", "sign-in", "sign-out", "proposals"}
)


def is_console_path(path: str) -> bool:
    """Whether ``path`` is one of the console's pages (errors there are pages too)."""
    return path.strip("/").split("/", 1)[0] in CONSOLE_ROOTS


async def error_page(request: Request, status: int, message: str, hint: str = "") -> Response:
    """The console's page for a refused request."""
    seen = await visitor(request)
    return page(
        request, seen, "error.html", status_code=status, title="Refused", message=message, hint=hint
    )


def add_console(app: FastAPI, rt: Runtime) -> None:
    """Mount the console's pages, actions and files on ``app``."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    app.state.console = ConsoleContext(
        templates=templates,
        signer=SessionSigner(load_key(rt.settings.home)),
        failures=RateLimiter(rt.settings.api_failed_signins_per_minute),
        secure_cookie=str(rt.settings.public_url or "").startswith("https:"),
    )
    for module in (
        overview_page,
        rollouts_page,
        devices_page,
        compliance_page,
        support_page,
        actions,
    ):
        app.include_router(module.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        target = sign_in_url(exc.next_path)
        if request.headers.get("hx-request"):  # a refresh by htmx: send the whole page there
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if is_console_path(request.url.path):
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
            )
            return await error_page(request, 422, f"Not accepted: {problems}")
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        exc = with_every_allowed_method(request, exc)
        if is_console_path(request.url.path):
            return await error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)
