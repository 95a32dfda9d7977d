"""A local emulator of the ClearSKY Vision API (see ``clearsky-emulator --help`` and docs/emulator.md).

Importing this package is light: the web stack (FastAPI, uvicorn) is imported only when a server is built.
The provider's hooks and operators never import it; it is for development, tests, demos and benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import DEMO_API_KEY, AccountConfig, EmulatorConfig, LifecycleDurations

if TYPE_CHECKING:
    from .control import Control
    from .server import EmulatorServer

__all__ = [
    "DEMO_API_KEY",
    "AccountConfig",
    "Control",
    "EmulatorConfig",
    "EmulatorServer",
    "LifecycleDurations",
]


def __getattr__(name: str) -> Any:
    if name == "EmulatorServer":
        from .server import EmulatorServer

        return EmulatorServer
    if name == "Control":
        from .control import Control

        return Control
    raise AttributeError(name)
