"""What the ClearSKY view shows: the API's live answers (cached briefly) and what the DAG runs recorded.

Nothing here returns the API key or anything derived from it: the API's answers pass through the provider's
models (``AccountInfo`` drops the key an old endpoint echoes) and the records hold GUIDs, costs and files only.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_provider_clearsky.records import RECORD_KEY

T = TypeVar("T")

CACHE_SECONDS = 30.0
API_TIMEOUT = 15.0


# ----------------------------------------------------------------------------- what the runs recorded


@dataclass(frozen=True)
class Record:
    """One task instance's record (``airflow_provider_clearsky.records``) and where it came from."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    timestamp: dt.datetime | None
    value: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.value.get("kind"))

    @property
    def conn_id(self) -> str:
        return str(self.value.get("conn_id") or "")

    @property
    def order_guid(self) -> str | None:
        guid = self.value.get("order_guid")
        return str(guid).lower() if guid else None


def load_records(dag_id: str | None = None, run_id: str | None = None) -> list[Record]:
    """Every record in the XCom table (of one DAG run when given), oldest first."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel).where(XComModel.key == RECORD_KEY)
    if dag_id is not None:
        query = query.where(XComModel.dag_id == dag_id)
    if run_id is not None:
        query = query.where(XComModel.run_id == run_id)
    query = query.order_by(XComModel.timestamp)
    found = []
    with create_session() as session:
        for row in session.scalars(query):
            value = XComModel.deserialize_value(row)
            if isinstance(value, dict) and "kind" in value:
                found.append(Record(row.dag_id, row.run_id, row.task_id, row.map_index, row.timestamp, value))
    return found


def clearsky_conn_ids(records: Iterable[Record]) -> list[str]:
    """The ClearSKY connections to show: those of type ``clearsky`` in the database, those the runs used, and
    ``clearsky_default`` when it resolves (environment variables and secrets backends are not listable)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ids = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type == "clearsky")))
    ids.update(record.conn_id for record in records if record.conn_id)
    if "clearsky_default" not in ids and _resolves("clearsky_default"):
        ids.add("clearsky_default")
    return sorted(ids)


def _resolves(conn_id: str) -> bool:
    from airflow_provider_clearsky._compat import BaseHook

    try:
        return BaseHook.get_connection(conn_id).conn_type == "clearsky"
    except Exception:  # not defined anywhere (AirflowNotFoundException) or unreadable: not shown
        return False


# ----------------------------------------------------------------------------- the API, cached


class TtlCache:
    """One answer per key for ``seconds``; concurrent readers of a key wait for the one request in flight."""

    def __init__(self, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._values: dict[tuple[str, str], tuple[float, Any]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str], fetch: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks[key]
        with lock:
            cached = self._values.get(key)
            if cached is not None and self.clock() < cached[0]:
                return cached[1]  # type: ignore[no-any-return]
            value = fetch()
            self._values[key] = (self.clock() + self.seconds, value)
            return value

    def clear(self) -> None:
        with self._guard:
            self._values.clear()


CACHE = TtlCache()


@dataclass
class Live:
    """What the API said for a connection: each part, or the error that replaced it."""

    account: dict[str, Any] | None = None
    orders: list[dict[str, Any]] | None = None
    dashboard_url: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _hook(conn_id: str) -> Any:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

    # A page must answer: no long retry loops behind it (the next view, after the cache, asks again).
    return ClearSkyHook(conn_id, timeout=API_TIMEOUT, max_retries=0)


# The account fields shown: balances, limits and costs. Only these: an answer's other fields (an old endpoint
# echoes the key itself) never reach a page.
ACCOUNT_FIELDS = {
    "EuroCreditAmount": "euro_credit_amount",
    "CreditAmount": "credit_amount",
    "EuroCreditLimit": "euro_credit_limit",
    "EuroOverdraftLimit": "euro_overdraft_limit",
    "CurrentMonthCosts": "current_month_costs",
    "NextMonthCosts": "next_month_costs",
    "MaxConcurrentConnections": "max_concurrent_connections",
    "MaxCompositeAreaKm2": "max_composite_area_km2",
    "MaxTotalBands": "max_total_bands",
}


def _fetch_account(conn_id: str) -> dict[str, Any]:
    with _hook(conn_id) as hook:
        account = hook.get_account_info()
    return {name: getattr(account, attribute) for name, attribute in ACCOUNT_FIELDS.items()}


def _fetch_orders(conn_id: str) -> list[dict[str, Any]]:
    with _hook(conn_id) as hook:
        return [_order_json(order) for order in hook.list_orders()]


def _order_json(order: Any) -> dict[str, Any]:
    return {
        "order_guid": order.guid,
        "status": order.status,
        "recurring": order.is_recurring,
        "date_from": order.date_from.isoformat() if order.date_from else None,
        "date_to": order.date_to.isoformat() if order.date_to else None,
        "area_km2": order.task_order_area_km2,
        "model": order.model,
        "image_frequency": order.image_frequency,
        "created": order.created_date.isoformat() if order.created_date else None,
    }


def live(conn_id: str, cache: TtlCache = CACHE) -> Live:
    """Account and orders of a connection: at most one request per endpoint per ``cache.seconds``."""
    from airflow_provider_clearsky.exceptions import ClearSkyError

    result = Live()
    try:
        result.dashboard_url = _hook(conn_id).settings.dashboard_url
    except (ClearSkyError, ValueError) as error:
        result.errors["connection"] = _describe(error)
        return result
    except Exception as error:  # the connection does not exist (AirflowNotFoundException)
        result.errors["connection"] = f"connection {conn_id!r} is not usable: {type(error).__name__}"
        return result
    for part, fetch in (("account", _fetch_account), ("orders", _fetch_orders)):
        try:
            setattr(result, part, cache.get((conn_id, part), lambda fetch=fetch: fetch(conn_id)))  # type: ignore[misc]
        except ClearSkyError as error:
            result.errors[part] = _describe(error)
    return result


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


# ----------------------------------------------------------------------------- assembled views


def next_cutoff(now: dt.datetime) -> dt.datetime:
    """00:00 UTC on the 1st of next month: the renewal of recurring orders, and the last moment to cancel it."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def countdown(until: dt.datetime, now: dt.datetime) -> str:
    seconds = max(int((until - now).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h {rest // 60} min"


def _file_rows(record: Record) -> list[dict[str, Any]]:
    files = record.value.get("files") or []
    return [dict(item, dag_id=record.dag_id, run_id=record.run_id, task_id=record.task_id) for item in files]


def _run_row(record: Record) -> dict[str, Any]:
    return {
        "dag_id": record.dag_id,
        "run_id": record.run_id,
        "task_id": record.task_id,
        "action": record.value.get("action") or record.kind,
        "cost": record.value.get("cost"),
        "currency": record.value.get("currency"),
        "when": record.timestamp.isoformat() if record.timestamp else None,
    }


def connection_view(conn_id: str, records: list[Record], now: dt.datetime, cache: TtlCache = CACHE) -> dict[str, Any]:
    """Account, orders (live, with what the runs did with each) and spend of one connection."""
    mine = [record for record in records if record.conn_id == conn_id]
    state = live(conn_id, cache)
    cutoff = next_cutoff(now)
    orders: dict[str, dict[str, Any]] = {}
    for order in state.orders or []:
        orders[order["order_guid"].lower()] = dict(order, listed=True)
    for record in mine:
        guid = record.order_guid
        if guid is None:
            continue
        order = orders.setdefault(guid, {"order_guid": guid, "status": None, "listed": False})
        if record.kind == "order":
            order.setdefault("runs", []).append(_run_row(record))
            for name in ("recurring", "model", "date_from", "date_to"):
                if order.get(name) is None:
                    order[name] = record.value.get(name)
            if record.value.get("cost") is not None:
                order["cost"] = record.value["cost"]
                order["currency"] = record.value.get("currency")
        elif record.kind in ("status", "files"):
            runs = order.setdefault("runs", [])
            if not any(r["dag_id"] == record.dag_id and r["run_id"] == record.run_id for r in runs):
                runs.append(dict(_run_row(record), action="used"))
        if record.kind == "files":
            order.setdefault("files", []).extend(_file_rows(record))
    for order in orders.values():
        order.setdefault("runs", [])
        order.setdefault("files", [])
        if order.get("recurring") and order.get("listed") and not _is_ended(order.get("status")):
            order["next_renewal"] = cutoff.isoformat()
            order["cancel_cutoff"] = cutoff.isoformat()
            order["cancel_countdown"] = countdown(cutoff, now)
        if state.dashboard_url:
            order["url"] = f"{state.dashboard_url}/orders/{order['order_guid']}"
    return {
        "conn_id": conn_id,
        "account": state.account,
        "orders": sorted(orders.values(), key=lambda o: (o.get("date_from") or "", o["order_guid"]), reverse=True),
        "spend": spend(mine),
        "errors": state.errors,
        "now": now.isoformat(),
    }


def _is_ended(status: Any) -> bool:
    from airflow_provider_clearsky.models.enums import is_failed_status

    return bool(status) and is_failed_status(str(status))


def spend(records: Iterable[Record]) -> dict[str, Any]:
    """Order credits this Airflow's runs spent (the cost recorded when an order was created), per DAG and month."""
    by_dag: dict[str, float] = defaultdict(float)
    by_month: dict[str, float] = defaultdict(float)
    currencies = set()
    for record in records:
        cost = record.value.get("cost")
        if record.kind != "order" or not isinstance(cost, (int, float)):
            continue
        by_dag[record.dag_id] += float(cost)
        month = record.timestamp.strftime("%Y-%m") if record.timestamp else "unknown"
        by_month[month] += float(cost)
        currencies.add(str(record.value.get("currency") or ""))
    return {
        "currency": ", ".join(sorted(c for c in currencies if c)) or None,
        "total": round(sum(by_dag.values()), 2),
        "by_dag": {dag: round(value, 2) for dag, value in sorted(by_dag.items())},
        "by_month": {month: round(value, 2) for month, value in sorted(by_month.items())},
    }


def run_view(dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None) -> dict[str, Any]:
    """A DAG run's orders, cost, dates waited for and files written (one task's, when ``task_id`` is given)."""
    records = load_records(dag_id, run_id)
    if task_id:
        records = [r for r in records if r.task_id == task_id and (map_index is None or r.map_index == map_index)]
    guids = sorted({r.order_guid for r in records if r.order_guid})
    costs = [r.value for r in records if r.kind == "order" and isinstance(r.value.get("cost"), (int, float))]
    dates = sorted({d for r in records if r.kind == "dates" for d in r.value.get("dates") or []})
    files = [f for r in records if r.kind == "files" for f in _file_rows(r)]
    statuses = {r.order_guid: r.value.get("status") for r in records if r.kind == "status" and r.order_guid}
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "orders": [
            {
                "order_guid": guid,
                "actions": sorted(
                    {str(r.value.get("action")) for r in records if r.kind == "order" and r.order_guid == guid}
                    - {"None"}
                ),
                "status": statuses.get(guid),
                "conn_id": next(r.conn_id for r in records if r.order_guid == guid),
            }
            for guid in guids
        ],
        "cost": round(sum(float(c["cost"]) for c in costs), 2) if costs else None,
        "currency": next((c.get("currency") for c in costs), None),
        "dates": dates,
        "files": files,
        "file_count": len(files),
        "bytes": sum(int(f.get("size") or 0) for f in files),
    }
