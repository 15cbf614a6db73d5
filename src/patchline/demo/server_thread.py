"""The update server in a background thread, for the demo."""

from __future__ import annotations

import threading
import time

import uvicorn

from patchline.server.app import PatchlineApp


class ServerThread:
    """Runs the server app with uvicorn on ``host:port`` until ``stop()``."""

    def __init__(self, app: PatchlineApp, host: str, port: int) -> None:
        # Ctrl-C stops the demo within seconds even with a browser's connection open.
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout: float = 30) -> ServerThread:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (flushing the server's writes) and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
