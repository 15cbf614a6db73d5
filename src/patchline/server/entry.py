"""An application factory for ASGI servers started by import path (granian, uvicorn).

Reads ``PATCHLINE_HOME``, ``PATCHLINE_HOST`` and ``PATCHLINE_PORT`` besides the
server's own settings (``patchline.server.config``).
"""

from __future__ import annotations

import os
from pathlib import Path

from patchline.server.app import PatchlineApp, create_app
from patchline.server.config import ServerSettings


def app_from_env() -> PatchlineApp:
    """Build the server application from the environment."""
    settings = ServerSettings.from_env(
        Path(os.environ.get("PATCHLINE_HOME", ".")).absolute(),
        os.environ.get("PATCHLINE_HOST", "127.0.0.1"),
        int(os.environ.get("PATCHLINE_PORT", "8000")),
    )
    return create_app(settings)
