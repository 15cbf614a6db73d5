"""An application factory for ASGI servers started by import path (granian, uvicorn).

Every setting, ``PATCHLINE_HOME``, ``PATCHLINE_HOST`` and ``PATCHLINE_PORT`` included,
comes from the process environment through ``patchline.settings.Settings``.
"""

from __future__ import annotations

import os
import sys

from patchline.errors import PatchlineError
from patchline.server.app import PatchlineApp, create_app
from patchline.settings import Settings


def app_from_env() -> PatchlineApp:
    """Build the server application from the environment; an invalid setting (or a home
    the server cannot run from) stops the process with the error and what to do on
    stderr, and the error's exit code, not a traceback."""
    try:
        return create_app(Settings.from_env(os.environ))
    except PatchlineError as exc:
        print(f"patchline: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
