"""Fault injection: rules that fire on matching requests N times and then disarm themselves.

Spec syntax (CLI ``--fault`` and ``POST /_emulator/faults`` ``{"spec": ...}``), comma-separated
``key=value`` pairs, the first item may be the bare kind::

    KIND[,path=/api/tasking/orders][,method=POST][,times=N][,status=503][,retry_after=S][,delay=S]
        [,bytes=N][,chunk=N][,advance=S]

Kinds:

* ``429`` / ``500`` / ``502`` / ``503`` / ``504`` (or ``status`` with ``status=``): answer that status with a
  ServiceResult error body, the request is not processed. ``retry_after=S`` adds ``Retry-After: S``.
* ``latency``: sleep ``delay`` seconds (default 1), then process normally.
* ``reset``: close the TCP connection with an RST before any response; the request is not processed.
* ``drop_after_commit``: process the request fully (an order is created and charged), then close the
  connection without sending any byte of the response.
* ``truncate``: send the headers (with the full ``Content-Length``) and only ``bytes`` body bytes (default:
  half of the body), then close the connection.
* ``trickle``: send the body in ``chunk``-byte pieces (default 16) with ``delay`` seconds (default 0.05)
  between them.

``path`` matches the lower-cased request path exactly, or as a prefix when it ends with ``*``; default
``*`` (every ``/api`` path). ``method`` default: any. ``times`` default 1; ``times=0`` means unlimited.
``advance=S`` (any kind) moves the emulated clock S seconds forward each time the fault fires, before the
request is handled: time that passes while the client waits the fault out (INVENTED test aid).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

STATUS_KINDS = {"429", "500", "502", "503", "504"}
KINDS = {"status", "latency", "reset", "drop_after_commit", "hold_after_commit", "truncate", "trickle"} | STATUS_KINDS
_ALIASES = {"drop-after-commit": "drop_after_commit", "drop": "drop_after_commit", "slow": "trickle"}


@dataclass
class FaultRule:
    kind: str
    path: str = "*"
    method: str | None = None
    times: int = 1
    status: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    bytes: int | None = None
    chunk: int | None = None
    #: emulated seconds that pass while the fault holds the request up (the clock moves on when it fires),
    #: so a test can delay a request past a moment such as 00:00 UTC on the 1st with a frozen clock
    advance: float | None = None
    id: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path == "*":
            return path.startswith("/api/")
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1].lower())
        return path == self.path.lower().rstrip("/")

    @property
    def exhausted(self) -> bool:
        return self.times > 0 and self.fired >= self.times

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise_rule(rule: FaultRule) -> FaultRule:
    kind = _ALIASES.get(rule.kind.lower(), rule.kind.lower())
    if kind in STATUS_KINDS:
        rule.status = int(kind)
        kind = "status"
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {rule.kind!r}; expected one of {sorted(KINDS)}")
    if kind == "status" and rule.status not in (429, 500, 502, 503, 504):
        raise ValueError("a status fault needs status=429|500|502|503|504")
    if rule.times < 0:
        raise ValueError("times must be >= 0")
    if rule.advance is not None and rule.advance < 0:
        raise ValueError("advance must be >= 0 seconds")
    rule.kind = kind
    return rule


def parse_fault_spec(spec: str) -> FaultRule:
    """Parse ``"503,path=/api/tasking/orders,method=POST,times=2"`` into a rule."""
    items = [p.strip() for p in spec.split(",") if p.strip()]
    if not items:
        raise ValueError("empty fault spec")
    values: dict[str, str] = {}
    for i, item in enumerate(items):
        if "=" not in item:
            if i != 0:
                raise ValueError(f"bad fault spec item {item!r}")
            values["kind"] = item
            continue
        k, v = item.split("=", 1)
        values[k.strip().lower().replace("-", "_")] = v.strip()
    if "kind" not in values:
        raise ValueError("fault spec needs a kind")
    known = {"kind", "path", "method", "times", "status", "retry_after", "delay", "bytes", "chunk", "advance"}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown fault spec keys: {sorted(unknown)}")
    rule = FaultRule(
        kind=values["kind"],
        path=values.get("path", "*"),
        method=values.get("method"),
        times=int(values.get("times", "1")),
        status=int(values["status"]) if "status" in values else None,
        retry_after=float(values["retry_after"]) if "retry_after" in values else None,
        delay=float(values["delay"]) if "delay" in values else None,
        bytes=int(values["bytes"]) if "bytes" in values else None,
        chunk=int(values["chunk"]) if "chunk" in values else None,
        advance=float(values["advance"]) if "advance" in values else None,
    )
    return normalise_rule(rule)


class FaultRegistry:
    """Armed rules; the first matching, non-exhausted rule fires (and counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, rule: FaultRule) -> FaultRule:
        rule = normalise_rule(rule)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path):
                    rule.fired += 1
                    return rule
        return None

    def list(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before
