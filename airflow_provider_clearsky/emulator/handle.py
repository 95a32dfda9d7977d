"""What the pytest fixtures yield: URL, key, control API and Airflow-connection helpers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

    from .control import Control
    from .server import EmulatorServer


class EmulatorHandle:
    def __init__(self, server: EmulatorServer, api_key: str) -> None:
        self.server = server
        self.url: str = server.url
        self.api_key = api_key
        self.control: Control = server.control

    @property
    def port(self) -> int:
        return self.server.port

    def connection_dict(self) -> dict[str, Any]:
        """An Airflow connection as JSON-style dict: the hook reads the key from ``password`` and the base
        URL (with scheme) from ``host``."""
        return {"conn_type": "clearsky", "host": self.url, "password": self.api_key}

    def connection_json(self) -> str:
        return json.dumps(self.connection_dict())

    def connection_uri(self) -> str:
        """An Airflow connection URI whose host carries the scheme (percent-encoded, Airflow's convention):
        ``clearsky://:KEY@http%3A%2F%2F127.0.0.1%3APORT`` parses to host ``http://127.0.0.1:PORT``."""
        return f"clearsky://:{quote(self.api_key, safe='')}@{quote(self.url, safe='')}"

    def set_airflow_connection(self, monkeypatch: Any, conn_id: str = "clearsky_default") -> str:
        """Point ``conn_id`` at the emulator via ``AIRFLOW_CONN_<ID>`` (JSON form); returns the env name."""
        name = f"AIRFLOW_CONN_{conn_id.upper()}"
        monkeypatch.setenv(name, self.connection_json())
        return name

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on the emulator sending ``x-api-key``."""
        import httpx

        headers = {"x-api-key": api_key or self.api_key, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def __repr__(self) -> str:
        return f"EmulatorHandle(url={self.url!r})"
