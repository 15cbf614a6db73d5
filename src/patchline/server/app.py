"""The server application: device API, management API, the operator's console, repository
files, health, metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from patchline import __version__
from patchline.bounded_cache import BoundedCache
from patchline.clock import Clock, FileClock, SystemClock
from patchline.director.answers import Director
from patchline.director.identity import director_signer, load_director_root
from patchline.errors import PatchlineError
from patchline.repository.layout import RepositoryLayout
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.publisher import Repository
from patchline.server.api import ROUTERS
from patchline.server.api_guard import ApiGuard
from patchline.server.asgi_io import RETRY_AFTER_SECONDS, Receive, Scope, Send
from patchline.server.config import ServerTuning
from patchline.server.console import add_console, error_page, is_console_path
from patchline.server.ddi_api import DdiApi
from patchline.server.device_api import DeviceApi
from patchline.server.devices_cache import DeviceLoader
from patchline.server.docs_ui import add_docs
from patchline.server.http_errors import status_for
from patchline.server.lineage_feed import LineageFeed
from patchline.server.outage_log import OutageLog
from patchline.server.runtime import Runtime
from patchline.server.writer import BatchWriter
from patchline.settings import Settings
from patchline.store.db import DATABASE_UNAVAILABLE, Database
from patchline.store.migrate import upgrade
from patchline.webhooks.deliver import Deliverer, DeliveryPolicy

log = logging.getLogger(__name__)


def build_runtime(
    settings: Settings,
    clock: Clock | None = None,
    passphrases: PassphraseSource | None = None,
    tuning: ServerTuning | None = None,
) -> Runtime:
    """Open the database (migrating it), the director key, and the writer; the home
    directory is made absolute. The clock is ``clock``, else the simulated clock file the
    settings name, else the machine's."""
    if clock is None:
        clock = (
            FileClock(settings.simulated_clock_file)
            if settings.simulated_clock_file
            else SystemClock()
        )
    tuning = tuning or ServerTuning()
    settings = settings.model_copy(update={"home": settings.home.absolute()})
    db = Database.connect(settings.server_database_url())
    upgrade(db)
    repo = Repository.open(settings.home, settings, passphrases, clock)
    root = load_director_root(settings.home)
    director = Director(
        director_signer(repo, root),
        mirrors=list(settings.server_mirrors()),
        poll_after_seconds=tuning.poll_after_seconds,
        validity=tuning.answer_validity,
        answer_cache_size=settings.device_cache_size,
    )
    writer = BatchWriter(db, max_delay=tuning.writer_max_delay)
    policy = DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        retry_base_seconds=settings.webhook_retry_base_seconds,
        retry_max_seconds=settings.webhook_retry_max_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    return Runtime(
        settings=settings,
        tuning=tuning,
        db=db,
        clock=clock,
        director=director,
        writer=writer,
        deliverer=Deliverer(db, clock, policy),
        devices=DeviceLoader(db, BoundedCache(settings.device_cache_size)),
    )


class PatchlineApp:
    """ASGI entry: ``/v1/*`` goes to the device API, ``/TENANT/controller/v1/*`` to the
    hawkBit DDI API, ``/api/v1/*`` to the LineageOS update feed, ``/api/*`` through the
    guard (sign-in, rate limits, body size) to FastAPI, everything else to FastAPI
    directly."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.devices = DeviceApi(runtime)
        self.ddi = DdiApi(runtime)
        self.feed = LineageFeed(runtime)
        self.management = _management_app(runtime)
        self.guarded = ApiGuard(self.management, runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI event."""
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.devices(scope, receive, send)
            return
        if scope["type"] == "http" and DdiApi.handles(scope["path"]):
            await self.ddi(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(LineageFeed.PREFIX):
            await self.feed(scope, receive, send)
            return
        if scope["type"] == "http" and (scope["path"] + "/").startswith("/api/"):
            await self.guarded(scope, receive, send)
            return
        await self.management(scope, receive, send)


def _management_app(rt: Runtime) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="Patchline",
        version=__version__,
        description="Management API of the Patchline update server. Device API: /v1.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_docs(app)
    app.state.runtime = rt
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(PatchlineError)
    async def patchline_error(request: Request, exc: PatchlineError) -> Response:
        if is_console_path(request.url.path):
            return await error_page(request, status_for(exc), exc.message, exc.hint or "")
        body: dict[str, Any] = {"detail": exc.message}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=status_for(exc))

    outages = OutageLog(log)

    async def database_away(request: Request, exc: Exception) -> Response:
        """The database cannot be reached (or its pool is exhausted): 503 with
        Retry-After and a clear error, never a bare 500; the next request after it is
        back is served again by the same process."""
        outages.failed(
            "database", "database unavailable for %s %s: %s", request.method, request.url.path, exc
        )
        message = "the database is unavailable; nothing was changed"
        hint = f"try again in {RETRY_AFTER_SECONDS} seconds"
        if is_console_path(request.url.path):
            page = await error_page(request, 503, message, hint)
            page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return page
        return JSONResponse(
            {"detail": message, "hint": hint},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_away)

    @app.get("/healthz", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and the state of the writer and catalog."""
        stats = rt.writer.stats
        return {
            "ok": stats.failures == 0 or stats.batches > 0,
            "catalog_version": rt.director.catalog.version,
            "writer": {"batches": stats.batches, "failures": stats.failures},
        }

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_console(app, rt)
    layout = RepositoryLayout(rt.settings.home)
    if rt.settings.serve_repository and layout.public_dir.is_dir():
        app.mount("/repository", StaticFiles(directory=layout.public_dir), name="repository")
    return app


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    passphrases: PassphraseSource | None = None,
    tuning: ServerTuning | None = None,
) -> PatchlineApp:
    """The whole server as one ASGI application (key passphrases from the environment
    unless ``passphrases`` is given)."""
    return PatchlineApp(build_runtime(settings, clock, passphrases, tuning))
