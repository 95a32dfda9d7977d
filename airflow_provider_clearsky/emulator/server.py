"""Run the emulator with uvicorn in a background thread (the pytest fixture and the CLI use this)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from .config import EmulatorConfig
from .control import Control
from .emulator import Emulator


class EmulatorServer:
    """Start/stop one emulator on ``config.host:config.port`` (port 0: a free port)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        import uvicorn

        from .app import build_app

        self.config = config or EmulatorConfig()
        self.emulator = Emulator(self.config)
        self.control = Control(self.emulator)
        self.app = build_app(self.emulator)
        self._sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.config.host, self.config.port))
        self.port = int(self._sock.getsockname()[1])
        uv_config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            date_header=True,
            ws="none",
            timeout_keep_alive=30,
            ssl_certfile=self.config.tls_certfile,
            ssl_keyfile=self.config.tls_keyfile,
        )
        self._server: Any = uvicorn.Server(uv_config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        scheme = "https" if self.config.tls_certfile else "http"
        return f"{scheme}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="clearsky-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator server did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.emulator.store.save(self.emulator.now())
        self.emulator.store.close()
        self._sock.close()

    def wait(self) -> None:
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.2)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
