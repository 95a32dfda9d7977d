"""The record store: accounts and their balances, orders, the charge ledger, persistence to SQLite, and the
changes time brings (denials after review, monthly renewals).

All methods take the emulated ``now`` explicitly and hold one re-entrant lock, so the app (uvicorn thread)
and the control API (test thread) can both call in. ``ordering`` and ``imagery`` add the API's operations.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import date, datetime
from typing import Any

from . import catalogue
from .config import AccountConfig, EmulatorConfig
from .dates import add_months, iso_z, midnight, month_end
from .records import Account, Order, cell_area


class RecordStore:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.charges: list[dict[str, Any]] = []
        self.restored_clock: datetime | None = None
        self._db: sqlite3.Connection | None = None
        self.reset()
        if config.state_file:
            self._open_db(config.state_file)

    # ------------------------------------------------------------------ admin

    def reset(self) -> None:
        with self.lock:
            self.accounts = {a.key: Account.from_config(a) for a in self.config.accounts}
            self.orders = {}
            self.charges = []
            self.save()

    def add_account(self, cfg: AccountConfig) -> Account:
        with self.lock:
            acct = Account.from_config(cfg)
            self.accounts[cfg.key] = acct
            if not any(a.key == cfg.key for a in self.config.accounts):
                self.config.accounts.append(cfg)
            self.save()
            return acct

    def update_account(self, key: str, **changes: Any) -> Account:
        with self.lock:
            acct = self.accounts[key]
            for name, value in changes.items():
                if name in ("euro_credit_amount", "credit_amount"):
                    setattr(acct, name, float(value))
                elif hasattr(acct.config, name):
                    setattr(acct.config, name, value)
                else:
                    raise AttributeError(f"unknown account field {name!r}")
            self.save()
            return acct

    def account(self, key: str | None) -> Account | None:
        return self.accounts.get(key) if key else None

    # ------------------------------------------------------------------ persistence

    def _open_db(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        rows = dict(self._db.execute("SELECT k, v FROM state").fetchall())
        if "orders" in rows:
            self.orders = {o["guid"]: Order.from_json(o) for o in json.loads(rows["orders"])}
        if "accounts" in rows:
            for key, a in json.loads(rows["accounts"]).items():
                cfg = AccountConfig(**a["config"])
                if key not in self.accounts:
                    self.config.accounts.append(cfg)
                self.accounts[key] = Account(cfg, a["euro_credit_amount"], a["credit_amount"], a["spend"])
        if "charges" in rows:
            self.charges = json.loads(rows["charges"])
        if "clock" in rows:
            self.restored_clock = datetime.fromisoformat(json.loads(rows["clock"]))
        self.save()

    def save(self, now: datetime | None = None) -> None:
        if self._db is None:
            return
        with self.lock:
            accounts = {
                k: {
                    "config": a.config.to_dict(),
                    "euro_credit_amount": a.euro_credit_amount,
                    "credit_amount": a.credit_amount,
                    "spend": a.spend,
                }
                for k, a in self.accounts.items()
            }
            items = [
                ("orders", json.dumps([o.to_json() for o in self.orders.values()])),
                ("accounts", json.dumps(accounts)),
                ("charges", json.dumps(self.charges)),
            ]
            if now is not None:
                items.append(("clock", json.dumps(now.isoformat())))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)", items)
            self._db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ time-driven changes

    def sync(self, now: datetime) -> None:
        """Apply what happened up to ``now``: denials after review and monthly renewals at 00:00 UTC."""
        changed = False
        with self.lock:
            for order in self.orders.values():
                if order.canceled or order.denied:
                    continue
                if order.will_deny and order.review_until is not None and now >= order.review_until:
                    order.denied = True
                    self._refund(order, order.review_until, "denied")
                    changed = True
                    continue
                while order.recurring and order.ends is None and add_months(order.paid_through, 1) <= now.date():
                    changed = True
                    self._renew(order, add_months(order.paid_through, 1))
            if changed:
                self.save(now)

    def _renew(self, order: Order, month: date) -> None:
        acct = self.accounts[order.key]
        model = catalogue.find_model(order.model)
        assert model is not None
        cost = catalogue.order_month_cost(
            model, order.constellations, order.mode_factor, self._billed_area(order), 1, acct.spent(month)
        ) + catalogue.storage_cost(self._billed_area(order), order.storage_months, 1)
        if acct.euro_credit_amount - cost < -acct.config.euro_credit_limit:
            # Not enough order credits at renewal: coverage stops at the end of the paid month.
            order.renewal_failed = True
            order.ends = month_end(order.paid_through)
            return
        acct.euro_credit_amount -= cost
        acct.add_spend(month, cost)
        order.charged += cost
        order.paid_through = month
        self.charges.append(
            {
                "kind": "renewal",
                "key": order.key,
                "order": order.guid,
                "eur": round(cost, 6),
                "at": iso_z(midnight(month)),
            }
        )

    def _billed_area(self, order: Order) -> float:
        if order.mode == "tile" and order.deduplicated_tiles:
            dedup = set(order.deduplicated_tiles)
            return sum(cell_area(g) for g in order.tiles + order.minitiles if g not in dedup)
        return order.area_km2

    def _refund(self, order: Order, at: datetime, why: str) -> None:
        acct = self.accounts[order.key]
        acct.euro_credit_amount += order.charged
        acct.add_spend(order.created.date(), -order.charged)
        self.charges.append(
            {
                "kind": "refund",
                "key": order.key,
                "order": order.guid,
                "eur": round(-order.charged, 6),
                "at": iso_z(at),
                "why": why,
            }
        )
        order.charged = 0.0

    def account_info(self, key: str, now: datetime) -> dict[str, Any]:
        with self.lock:
            acct = self.accounts[key]
            c = acct.config
            next_costs = 0.0
            for o in self.orders.values():
                if o.key == key and o.recurring and o.ends is None and not (o.canceled or o.denied):
                    model = catalogue.find_model(o.model)
                    assert model is not None
                    area = self._billed_area(o)
                    next_costs += catalogue.order_month_cost(model, o.constellations, o.mode_factor, area, 1, 0.0)
                    next_costs += catalogue.storage_cost(area, o.storage_months, 1)
            return {
                # /api/apikey/info (2024) fields
                "Key": c.key,
                "CreditAmount": round(acct.credit_amount, 4),
                "EuroCreditAmount": round(acct.euro_credit_amount, 4),
                "CreditLimit": c.credit_limit,
                "EuroCreditLimit": c.euro_credit_limit,
                "ContactInfo": c.contact_info,
                "Email": c.email,
                "MaxConcurrentConnections": c.max_concurrent_connections,
                "MaxCompositeAreaKm2": c.max_composite_area_km2,
                "MaxTotalBands": c.max_total_bands,
                "CurrentMonthCosts": round(acct.spent(now.date()), 4),
                "NextMonthCosts": round(next_costs, 4),
                # /api/account/info (2025) fields
                "TenantId": c.tenant_id,
                "EuroOverdraftLimit": c.euro_credit_limit,
                "EuroBalanceCap": c.euro_balance_cap,
            }
