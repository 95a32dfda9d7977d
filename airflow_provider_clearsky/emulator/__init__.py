"""A local emulator of the ClearSKY Vision API (see ``clearsky-emulator --help`` and docs/emulator.md).

Importing this package is light: the web stack (FastAPI, uvicorn) is imported only when a server is built.
The provider's hooks and operators never import it; it is for development, tests, demos and benchmarks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import DEMO_API_KEY, AccountConfig, EmulatorConfig, LifecycleDurations
    from .control import Control
    from .server import EmulatorServer

#: Public name -> the submodule that defines it, imported on first access: the pytest plugin, loaded in every
#: pytest run of a project with the provider, imports this package and must not pay for any of it.
_WHERE = {
    "DEMO_API_KEY": "config",
    "AccountConfig": "config",
    "EmulatorConfig": "config",
    "LifecycleDurations": "config",
    "Control": "control",
    "EmulatorServer": "server",
}

__all__ = [
    "DEMO_API_KEY",
    "AccountConfig",
    "Control",
    "EmulatorConfig",
    "EmulatorServer",
    "LifecycleDurations",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(name)
