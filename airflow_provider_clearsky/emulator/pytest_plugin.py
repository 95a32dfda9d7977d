"""pytest fixtures that start the ClearSKY emulator on a free loopback port (auto-loaded through the
``pytest11`` entry point).

* ``clearsky_emulator_server`` (session scope): one emulator in a background thread for the session.
* ``clearsky_emulator`` (function scope): the session emulator, ``control.reset()`` before each test.
* ``clearsky_emulator_each_echo`` (function scope, two params): the same, with order answers echoing the
  area ``exact`` and as ``bbox`` (``EmulatorConfig.order_geometry_echo``, ``--order-geometry-echo``).
* ``clearsky_emulator_factory`` (function scope): ``factory(**EmulatorConfig fields)`` starts extra
  emulators with their own configuration; they are stopped after the test.

Each yields an ``EmulatorHandle``: ``.url``, ``.api_key``, ``.control``, ``.client()``,
``.connection_dict()``, ``.connection_json()``, ``.connection_uri()``, ``.set_airflow_connection(monkeypatch)``.

This module is imported by every pytest run of a project that installs the provider, so it imports only
pytest and the standard library at module level; the web stack loads when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .handle import EmulatorHandle


def _start(**overrides: Any) -> EmulatorHandle:
    from .config import DEMO_API_KEY, EmulatorConfig
    from .handle import EmulatorHandle
    from .server import EmulatorServer

    overrides.setdefault("port", 0)
    overrides.setdefault("host", "127.0.0.1")
    overrides.setdefault("admin", True)
    overrides.setdefault("access_log", False)
    config = EmulatorConfig(**overrides)
    server = EmulatorServer(config).start()
    key = config.accounts[0].key if config.accounts else DEMO_API_KEY
    return EmulatorHandle(server, key)


@pytest.fixture(scope="session")
def clearsky_emulator_server() -> Iterator[EmulatorHandle]:
    """A ClearSKY emulator for the whole session (demo key, admin endpoints on, loopback only)."""
    handle = _start()
    try:
        yield handle
    finally:
        handle.server.stop()


@pytest.fixture
def clearsky_emulator(clearsky_emulator_server: EmulatorHandle) -> EmulatorHandle:
    """The session emulator, reset to its start-up state before the test."""
    clearsky_emulator_server.control.reset()
    return clearsky_emulator_server


@pytest.fixture(params=["exact", "bbox"])
def clearsky_emulator_each_echo(request: pytest.FixtureRequest, clearsky_emulator: EmulatorHandle) -> EmulatorHandle:
    """The session emulator, once echoing order areas exactly and once as each polygon's bounding box."""
    clearsky_emulator.control.set_order_geometry_echo(request.param)
    return clearsky_emulator


@pytest.fixture
def clearsky_emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    """Start emulators with a custom ``EmulatorConfig`` (keyword arguments); stopped after the test."""
    started: list[EmulatorHandle] = []

    def factory(**overrides: Any) -> EmulatorHandle:
        handle = _start(**overrides)
        started.append(handle)
        return handle

    try:
        yield factory
    finally:
        for h in started:
            h.server.stop()
