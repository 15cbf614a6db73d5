"""Who is looking at the console: the session cookie read, the token behind it checked
again on every request, the CSRF token of its forms, and the same role checks as the
management API (``patchline.server.auth.GRANTS``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from patchline.clock import SystemClock
from patchline.server.api.deps import Caller, in_session, runtime
from patchline.server.auth import GRANTS, Permission, role_of_hash
from patchline.server.console.session import COOKIE, LIFETIME, ConsoleSession, SessionSigner
from patchline.server.rate_limit import RateLimiter

#: The form field (or ``X-CSRF-Token`` header, for htmx) every POST must carry.
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


#: Sessions last 12 hours of the operator's time, even when the server reads a simulated
#: clock (``patchline demo`` moves it by days a minute).
SESSION_CLOCK = SystemClock()


@dataclass
class ConsoleContext:
    """What the console keeps for the process: its templates, the cookie signer and the
    limit on failed sign-ins per address."""

    templates: Jinja2Templates
    signer: SessionSigner
    failures: RateLimiter
    secure_cookie: bool = False


@dataclass
class Visitor:
    """The person behind a request: their session, the token they signed in with (None:
    not signed in), and their CSRF token. ``set_cookie`` when the response must carry a
    new session cookie."""

    session: ConsoleSession
    caller: Caller | None
    csrf: str
    set_cookie: bool = False
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def may(self, permission: str) -> bool:
        """Whether the signed-in role grants ``permission`` (templates hide buttons with
        it; the action checks again)."""
        return Permission(permission) in self.permissions


class SignInRequired(Exception):
    """Raised by a page whose visitor is not signed in: answered with the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def context(request: Request) -> ConsoleContext:
    """The console's process-wide state, kept on the app."""
    ctx: ConsoleContext = request.app.state.console
    return ctx


async def visitor(request: Request) -> Visitor:
    """Read the session cookie (a fresh session when there is none or it does not verify)
    and look up, in the database, the live token it names."""
    ctx = context(request)
    rt = runtime(request)
    loaded = ctx.signer.load(request.cookies.get(COOKIE))
    session = loaded or ConsoleSession.fresh()
    caller: Caller | None = None
    token_hash = session.live_token_hash(SESSION_CLOCK.now())
    if token_hash is not None:
        caller = await in_session(rt, lambda s: role_of_hash(s, token_hash))
    permissions = GRANTS[caller[1]] if caller else frozenset()
    return Visitor(session, caller, ctx.signer.csrf_token(session), loaded is None, permissions)


Seen = Annotated[Visitor, Depends(visitor)]


async def signed_in(request: Request, seen: Seen) -> Visitor:
    """A page's visitor, who must be signed in with a live token whose role may read; else
    the sign-in page (``SignInRequired``)."""
    if seen.caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    if Permission.READ not in seen.permissions:
        raise HTTPException(403, f"role {seen.caller[1].value} may not read")
    return seen


Reader = Annotated[Visitor, Depends(signed_in)]


async def check_csrf(request: Request, seen: Visitor) -> None:
    """Refuse (403) a POST whose CSRF token is missing or not this session's."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not context(request).signer.csrf_ok(seen.session, given):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")


def writer(permission: Permission) -> Callable[..., Coroutine[Any, Any, Visitor]]:
    """A dependency for a console POST: the visitor must carry this session's CSRF token
    (403), be signed in (401), and hold a role that grants ``permission`` (403), exactly
    as the management API requires of a token."""

    async def check(request: Request, seen: Seen) -> Visitor:
        await check_csrf(request, seen)
        if seen.caller is None:
            raise HTTPException(401, "sign in first")
        if permission not in seen.permissions:
            raise HTTPException(
                403, f"role {seen.caller[1].value} may not do this (needs {permission.value})"
            )
        return seen

    return check


ReadWriter = Annotated[Visitor, Depends(writer(Permission.READ))]
ReleaseWriter = Annotated[Visitor, Depends(writer(Permission.RELEASES))]
AuditWriter = Annotated[Visitor, Depends(writer(Permission.AUDIT))]
PolicyWriter = Annotated[Visitor, Depends(writer(Permission.POLICIES))]


def sign_in_url(next_path: str) -> str:
    """The sign-in page that returns to ``next_path``."""
    return "/sign-in?next=" + quote(next_path, safe="/")


def cookie_args(ctx: ConsoleContext) -> dict[str, object]:
    """How the session cookie is set: HttpOnly, SameSite=Strict, for the whole site."""
    return {
        "key": COOKIE,
        "httponly": True,
        "samesite": "strict",
        "secure": ctx.secure_cookie,
        "path": "/",
        "max_age": int(LIFETIME.total_seconds()),
    }


TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
