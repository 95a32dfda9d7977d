"""The Python control API of a running emulator (mirrors the ``/_emulator/...`` admin endpoints)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .config import AccountConfig
from .faults import FaultRule, parse_fault_spec

if TYPE_CHECKING:
    from .emulator import Emulator


class Control:
    """Drive the emulator from tests: clock, state inspection, accounts, faults, reset."""

    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator

    # ---- clock
    def now(self) -> datetime:
        return self._emu.now()

    def advance(self, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
        """Move the emulated clock forward; renewals and denials due in between are applied."""
        new = self._emu.clock.advance(timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds))
        self._emu.store.sync(new)
        return new

    def set_time(self, dt: datetime) -> datetime:
        new = self._emu.clock.set_time(dt)
        self._emu.store.sync(new)
        return new

    def set_speed(self, speed: float) -> None:
        self._emu.clock.set_speed(speed)

    # ---- state
    def orders(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every order (all keys, or one key's) as its details payload plus ``ApiKey`` (redacted) and
        ``ChargedEur`` and ``CoverageEnds`` (the last day paid for so far)."""
        store = self._emu.store
        now = self.now()
        store.sync(now)
        with store.lock:
            out = []
            for o in store.orders.values():
                if api_key is not None and o.key != api_key:
                    continue
                d = store.order_payload(o, now, details=True)
                d["ApiKey"] = o.key[:4] + "***"
                d["ChargedEur"] = round(o.charged, 6)
                d["CoverageEnds"] = o.end_date().isoformat()  # last day paid for so far (control plane only)
                d["PassesUsed"] = dict(o.passes_used)
                out.append(d)
            return out

    def order(self, guid: str) -> dict[str, Any]:
        for o in self.orders():
            if o["TaskOrderGuid"] == guid.lower():
                return o
        raise KeyError(guid)

    def order_count(self, api_key: str | None = None) -> int:
        with self._emu.store.lock:
            return sum(1 for o in self._emu.store.orders.values() if api_key is None or o.key == api_key)

    def account(self, api_key: str) -> dict[str, Any]:
        """The account-info payload of a key (balances, limits, costs)."""
        self._emu.store.sync(self.now())
        return self._emu.store.account_info(api_key, self.now())

    def add_account(self, api_key: str, **fields: Any) -> dict[str, Any]:
        """Add a key; ``fields`` are ``AccountConfig`` fields (``euro_credit_amount``, ``auto_accept``...)."""
        self._emu.store.add_account(AccountConfig(key=api_key, **fields))
        return self.account(api_key)

    def update_account(self, api_key: str, **fields: Any) -> dict[str, Any]:
        self._emu.store.update_account(api_key, **fields)
        return self.account(api_key)

    # ---- logs
    def request_log(self) -> list[dict[str, Any]]:
        with self._emu.log_lock:
            return [dict(e) for e in self._emu.request_log]

    def request_count(self, endpoint: str | None = None, method: str | None = None, status: int | None = None) -> int:
        """Number of ``/api`` requests, optionally for one path (any casing), method and status."""
        path = endpoint.lower().rstrip("/") if endpoint else None
        n = 0
        for e in self.request_log():
            if path is not None and e["path"] != path:
                continue
            if method is not None and e["method"] != method.upper():
                continue
            if status is not None and e["status"] != status:
                continue
            n += 1
        return n

    def charges(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Charge events: ``order``, ``renewal``, ``refund`` (EUR) and ``download`` (processing units)."""
        with self._emu.store.lock:
            return [dict(c) for c in self._emu.store.charges if kind is None or c["kind"] == kind]

    def download_count(self) -> int:
        return len(self.charges("download"))

    # ---- concurrency
    def peak_concurrency(self) -> int:
        """The most ``/api`` requests of one key in flight at once since start, reset or the last
        :meth:`reset_peak_concurrency` (requests refused for concurrency are not counted)."""
        with self._emu.inflight_lock:
            return max(self._emu.peak_inflight.values(), default=0)

    def in_flight(self) -> int:
        with self._emu.inflight_lock:
            return sum(self._emu.inflight.values())

    def reset_peak_concurrency(self) -> None:
        with self._emu.inflight_lock:
            self._emu.peak_inflight.clear()

    # ---- faults
    def add_fault(
        self,
        kind: str,
        path: str = "*",
        method: str | None = None,
        times: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
        bytes: int | None = None,
        chunk: int | None = None,
        advance: float | None = None,
    ) -> dict[str, Any]:
        rule = FaultRule(kind, path, method, times, status, retry_after, delay, bytes, chunk, advance)
        return self._emu.faults.add(rule).to_dict()

    def add_fault_spec(self, spec: str) -> dict[str, Any]:
        return self._emu.faults.add(parse_fault_spec(spec)).to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self._emu.faults.list()]

    def clear_faults(self) -> None:
        self._emu.faults.clear()

    # ---- fidelity switches
    def set_order_geometry_echo(self, echo: str) -> None:
        """``exact`` or ``bbox`` (each polygon's bounding box) in order answers, until ``reset()``."""
        self._emu.configure(order_geometry_echo=echo)

    def set_order_details_methods(self, methods: str) -> None:
        """``both``, ``post`` or ``get`` serve order details (the other answers 405), until ``reset()``."""
        self._emu.configure(order_details_methods=methods)

    # ---- everything
    def reset(self) -> None:
        """Accounts back to their start-up balances, no orders, charges, faults or logged requests, clock
        back to real now (or the configured start) at the configured speed."""
        self._emu.reset()
