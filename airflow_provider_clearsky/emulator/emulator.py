"""The emulator object: configuration, clock, store, faults, request log - what the app and the control
API share."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from .clock import EmulatorClock
from .config import EmulatorConfig
from .faults import FaultRegistry, parse_fault_spec
from .state import Store

#: Configuration a test may change on a running emulator (``Control.set_*``); ``reset()`` restores them.
SWITCHES = ("order_geometry_echo", "order_details_methods")


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._initial_accounts = copy.deepcopy(self.config.accounts)
        self._initial_switches = {name: getattr(self.config, name) for name in SWITCHES}
        self.store = Store(self.config)
        start = self.config.start_time or self.store.restored_clock
        self.clock = EmulatorClock(start, self.config.clock_speed)
        self.faults = FaultRegistry()
        for spec in self.config.faults:
            self.faults.add(parse_fault_spec(spec))
        self.request_log: list[dict[str, Any]] = []
        self.log_lock = threading.Lock()
        self.inflight: dict[str, int] = defaultdict(int)
        # What each key's in-flight requests are ("POST /path from 127.0.0.1:port since <time>"), by request:
        # a concurrency refusal's log entry names them (invented: the real service says only the limit).
        self.inflight_requests: dict[str, dict[int, str]] = defaultdict(dict)
        # The most requests of one key in flight at once since start (or reset): what the account's
        # MaxConcurrentConnections is checked against.
        self.peak_inflight: dict[str, int] = defaultdict(int)
        self.inflight_lock = threading.Lock()

    def now(self) -> datetime:
        return self.clock.now()

    def reset(self) -> None:
        """Back to the start-up state: accounts, no orders, no faults, empty logs, clock at real now (or the
        configured start time) and the configured speed."""
        self.config.accounts = copy.deepcopy(self._initial_accounts)
        self.configure(**self._initial_switches)
        self.store.reset()
        self.faults.clear()
        with self.log_lock:
            self.request_log.clear()
        with self.inflight_lock:
            self.peak_inflight.clear()
        self.clock = EmulatorClock(self.config.start_time, self.config.clock_speed)

    def configure(self, **switches: Any) -> None:
        """Change fidelity switches (``order_geometry_echo``, ``order_details_methods``) at run time."""
        unknown = set(switches) - set(SWITCHES)
        if unknown:
            raise ValueError(f"unknown switch(es) {sorted(unknown)}; known: {', '.join(SWITCHES)}")
        candidate = dataclasses.replace(self.config, **switches)  # validates the values
        for name in switches:
            setattr(self.config, name, getattr(candidate, name))

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > 100_000:
                del self.request_log[:10_000]
