"""An update feed in the shape LineageOS's updater reads: ``GET /api/v1/{device}/{type}/
{incremental}`` -> ``{"response": [{datetime, filename, id, romtype, size, url,
version}]}``.

The updater sends no credential, so a feed device is unidentified: ``device`` is taken
as the model, ``incremental`` as the build it runs (it must be a signed, not withdrawn
build of that model: its patch level and image hash are the signed ones), and nothing
else is known. Its region and deployment date are unknown, so a rule that limits by
either does not cover it in its favour (rules fail closed on unknown facts); a release
under a rollout not completed is not offered (a rollout's phases are for enrolled
devices); builds that failed on it are unknown. The answer is the director's decision
for that cohort, so a feed device sees only what the rules allow an unknown device of
its model on its build. Only ``.zip`` images (OTA packages) are listed. Feed requests
are counted in the metrics, not recorded per device (there is no device to record).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from patchline.bounded_cache import BoundedCache
from patchline.policy.decide import Action as DecisionAction
from patchline.repository.layout import RepositoryLayout
from patchline.server.asgi_io import Receive, Scope, Send, send_bytes, send_error
from patchline.store.models import Release

if TYPE_CHECKING:
    from patchline.server.runtime import Runtime

log = logging.getLogger(__name__)

_PATH = re.compile(
    r"^/api/v1/(?P<device>[A-Za-z0-9][A-Za-z0-9._-]{0,63})/(?P<type>[A-Za-z0-9_-]{1,32})/"
    r"(?P<incremental>[A-Za-z0-9][A-Za-z0-9._-]{0,63})/?$"
)
_ENCODER = msgspec.json.Encoder()
_ANY_SPACE = 2**62
#: Images a LineageOS updater installs: OTA packages.
FEED_IMAGE_SUFFIX = ".zip"


class LineageFeed:
    """ASGI app for ``/api/v1/{device}/{type}/{incremental}``."""

    PREFIX = "/api/v1/"

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.layout = RepositoryLayout(runtime.settings.home)
        self._build_times: BoundedCache[str, int] = BoundedCache(1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one feed request; a path of another shape is 404, a method other
        than GET 405."""
        match = _PATH.match(scope["path"])
        if match is None:
            await send_error(send, 404, "feed paths are /api/v1/DEVICE/TYPE/INCREMENTAL")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(send, 405, "the update feed takes GET")
            return
        builds = await self.feed(match["device"], match["type"], match["incremental"])
        await send_bytes(send, 200, _ENCODER.encode({"response": builds}))

    async def feed(self, model: str, romtype: str, incremental: str) -> list[dict[str, Any]]:
        """The builds a feed device of ``model`` on build ``incremental`` may install:
        the director's offer for it, or nothing."""
        rt = self.rt
        running = next(
            (r for r in rt.director.catalog.releases_of(model) if r.build == incremental), None
        )
        if running is None:
            rt.metrics.count_checkin("none")
            return []
        decision, _digest = rt.director.decide(
            model=model,
            region=None,
            deployed_on=None,
            build=running.build,
            build_sha256=running.sha256,
            security_patch_level=running.security_patch_level.isoformat(),
            free_bytes=_ANY_SPACE,
            battery_percent=100,
            network="wifi",
            now=rt.clock.now(),
            unidentified=True,
        )
        rt.metrics.count_checkin(decision.action.value)
        release = decision.release
        if (
            decision.action is not DecisionAction.INSTALL
            or release is None
            or not release.target_path.endswith(FEED_IMAGE_SUFFIX)
        ):
            return []
        built = await self._build_time(release.target_path)
        stored = self.layout.target_file(release.target_path, release.sha256)
        relative = stored.relative_to(self.layout.public_dir).as_posix()
        mirror = rt.settings.server_mirrors()[0].rstrip("/")
        return [
            {
                "datetime": built,
                "filename": release.target_path.rsplit("/", 1)[-1],
                "id": release.sha256,
                "romtype": romtype,
                "size": release.length,
                "url": f"{mirror}/{relative}",
                "version": release.build,
            }
        ]

    async def _build_time(self, target_path: str) -> int:
        cached = self._build_times.get(target_path)
        if cached is not None:
            return cached

        def read() -> datetime | None:
            with self.rt.db.engine.connect() as conn:
                query = select(Release.build_time, Release.published_at).where(
                    Release.target_path == target_path
                )
                row = conn.execute(query).first()
                conn.rollback()
            return None if row is None else (row.build_time or row.published_at)

        when = await asyncio.get_running_loop().run_in_executor(None, read)
        value = int(when.timestamp()) if when is not None else 0
        self._build_times.put(target_path, value)
        return value
