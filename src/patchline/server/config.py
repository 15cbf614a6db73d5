"""The server's settings, read once from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from patchline.errors import ConfigError
from patchline.store.db import default_url


@dataclass(frozen=True)
class ServerSettings:
    """What ``patchline serve`` needs.

    ``PATCHLINE_DATABASE_URL``: default a SQLite file in the home directory.
    ``PATCHLINE_ENROLLMENT_TOKEN``: devices present it to enroll; unset closes enrollment.
    ``PATCHLINE_PUBLIC_URL``: the URL devices reach this server at.
    ``PATCHLINE_MIRRORS``: comma-separated base URLs of image repositories handed to
    devices, in order (default: this server's own ``/repository``).
    ``PATCHLINE_SERVE_REPOSITORY``: ``1`` (default) serves the public tree at
    ``/repository``; production puts nginx, a CDN or an object store there instead.
    ``PATCHLINE_CREDENTIAL_RECHECK_SECONDS``: see ``credential_recheck_seconds``.
    ``PATCHLINE_ENROLLMENT_REGION``, ``PATCHLINE_ENROLLMENT_DEPLOYED_ON``: bind the
    enrollment token to a region and deployment date (YYYY-MM-DD): devices enrolled with
    it get these, whatever they say (a differing region is kept as a flagged claim).
    ``PATCHLINE_TRUST_CLAIMED_REGION``: ``1`` takes the region a check-in claims as the
    device's region (audited); default ``0``: claims are recorded and flagged only.
    """

    home: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    enrollment_token: str | None = None
    public_url: str = ""
    mirrors: tuple[str, ...] = ()
    serve_repository: bool = True
    answer_validity: timedelta = timedelta(hours=24)
    poll_after_seconds: int = 3600
    last_seen_resolution: timedelta = timedelta(minutes=5)
    device_cache_size: int = 500_000
    catalog_poll_seconds: float = 1.0
    writer_max_delay: float = 0.02
    #: A credential that does not match the cached one is checked against the database
    #: again (a re-enrollment through another process) at most this often per device.
    credential_recheck_seconds: float = 10.0
    #: Largest management API request body (``PATCHLINE_API_MAX_BODY_BYTES``) and
    #: image upload (``PATCHLINE_API_MAX_UPLOAD_BYTES``, POST /api/releases).
    api_max_body_bytes: int = 1 << 20
    api_max_upload_bytes: int = 8 << 30
    #: Management API rate limits, per process (``PATCHLINE_API_REQUESTS_PER_MINUTE_PER_
    #: TOKEN``, ``..._PER_ADDRESS``), and failed sign-ins an address may make a minute
    #: before it gets 429 (``PATCHLINE_API_FAILED_SIGNINS_PER_MINUTE``).
    api_requests_per_minute_per_token: int = 1200
    api_requests_per_minute_per_address: int = 3000
    api_failed_signins_per_minute: int = 10
    #: What the enrollment token vouches for (None: the enrollment request's value).
    enrollment_region: str | None = None
    enrollment_deployed_on: date | None = None
    #: Whether a check-in's claimed region becomes the device's region.
    trust_claimed_region: bool = False

    @classmethod
    def from_env(
        cls, home: Path, host: str, port: int, environ: Mapping[str, str] | None = None
    ) -> ServerSettings:
        """Read the settings; ``home`` is the data directory (repository and SQLite file)."""
        env = os.environ if environ is None else environ
        public_url = env.get("PATCHLINE_PUBLIC_URL", f"http://{host}:{port}").rstrip("/")
        mirrors_raw = env.get("PATCHLINE_MIRRORS", "")
        mirrors = tuple(m.strip().rstrip("/") for m in mirrors_raw.split(",") if m.strip())
        serve_repository = env.get("PATCHLINE_SERVE_REPOSITORY", "1") != "0"
        if not mirrors and serve_repository:
            mirrors = (f"{public_url}/repository",)
        token = env.get("PATCHLINE_ENROLLMENT_TOKEN") or None
        if token is not None and len(token) < 16:
            raise ConfigError("PATCHLINE_ENROLLMENT_TOKEN must be at least 16 characters")
        region = env.get("PATCHLINE_ENROLLMENT_REGION") or None
        if region is not None and not _REGION.match(region):
            raise ConfigError(f"PATCHLINE_ENROLLMENT_REGION {region!r} is not a region code")
        deployed_raw = env.get("PATCHLINE_ENROLLMENT_DEPLOYED_ON") or None
        try:
            deployed_on = date.fromisoformat(deployed_raw) if deployed_raw else None
        except ValueError:
            raise ConfigError(
                f"PATCHLINE_ENROLLMENT_DEPLOYED_ON {deployed_raw!r} is not a YYYY-MM-DD date"
            ) from None
        trust = env.get("PATCHLINE_TRUST_CLAIMED_REGION", "0")
        if trust not in ("0", "1"):
            raise ConfigError("PATCHLINE_TRUST_CLAIMED_REGION must be 0 or 1")
        return cls(
            home=home,
            enrollment_region=region,
            enrollment_deployed_on=deployed_on,
            trust_claimed_region=trust == "1",
            database_url=env.get("PATCHLINE_DATABASE_URL") or default_url(home),
            host=host,
            port=port,
            enrollment_token=token,
            public_url=public_url,
            mirrors=mirrors,
            serve_repository=serve_repository,
            credential_recheck_seconds=float(env.get("PATCHLINE_CREDENTIAL_RECHECK_SECONDS", "10")),
            api_max_body_bytes=_count(env, "PATCHLINE_API_MAX_BODY_BYTES", cls.api_max_body_bytes),
            api_max_upload_bytes=_count(
                env, "PATCHLINE_API_MAX_UPLOAD_BYTES", cls.api_max_upload_bytes
            ),
            api_requests_per_minute_per_token=_count(
                env,
                "PATCHLINE_API_REQUESTS_PER_MINUTE_PER_TOKEN",
                cls.api_requests_per_minute_per_token,
            ),
            api_requests_per_minute_per_address=_count(
                env,
                "PATCHLINE_API_REQUESTS_PER_MINUTE_PER_ADDRESS",
                cls.api_requests_per_minute_per_address,
            ),
            api_failed_signins_per_minute=_count(
                env, "PATCHLINE_API_FAILED_SIGNINS_PER_MINUTE", cls.api_failed_signins_per_minute
            ),
        )


_REGION = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,15}$")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value
