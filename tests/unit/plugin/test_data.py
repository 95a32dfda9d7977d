"""What the view computes from records and the API, without a server."""

from __future__ import annotations

import datetime as dt
import threading

from airflow_provider_clearsky.plugin import data, views


def record(kind: str, dag_id: str = "d", when: str = "2025-06-01", **value: object) -> data.Record:
    stamp = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    return data.Record(dag_id, "r", "t", -1, stamp, {"kind": kind, "conn_id": "c", **value})


def test_one_request_per_endpoint_while_cached_even_when_views_arrive_together() -> None:
    now = [0.0]
    cache = data.TtlCache(seconds=30, clock=lambda: now[0])
    calls: list[str] = []
    release = threading.Event()

    def fetch() -> str:
        calls.append("x")
        release.wait(5)
        return "answer"

    threads = [threading.Thread(target=cache.get, args=(("c", "orders"), fetch)) for _ in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert calls == ["x"]
    now[0] = 31.0
    assert cache.get(("c", "orders"), fetch) == "answer" and calls == ["x", "x"]


def test_renewal_and_cancel_cutoff_is_midnight_utc_on_the_first_of_next_month() -> None:
    now = dt.datetime(2025, 12, 30, 22, 15, tzinfo=dt.UTC)
    assert data.next_cutoff(now) == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert data.countdown(data.next_cutoff(now), now) == "1 d 1 h 45 min"
    assert data.countdown(now, now + dt.timedelta(hours=1)) == "0 d 0 h 0 min"


def test_spend_counts_the_cost_of_orders_runs_created_per_dag_and_month() -> None:
    records = [
        record("order", "a", "2025-06-01", cost=1.5, currency="EUR", action="created"),
        record("order", "a", "2025-07-01", cost=None, currency="EUR", action="adopted"),
        record("order", "b", "2025-07-02", cost=2.25, currency="EUR", action="created"),
        record("files", "a", "2025-07-03", files=[{"size": 10}]),
    ]
    assert data.spend(records) == {
        "currency": "EUR",
        "total": 3.75,
        "by_dag": {"a": 1.5, "b": 2.25},
        "by_month": {"2025-06": 1.5, "2025-07": 2.25},
    }


def test_pages_escape_what_they_show() -> None:
    assert views.e("<script>") == "&lt;script&gt;" and views.e(None) == "-"
    page = views.run_page(
        {
            "dag_id": "<d>",
            "run_id": "r",
            "task_id": None,
            "orders": [],
            "cost": None,
            "currency": None,
            "dates": [],
            "files": [{"name": "<f>.tif", "size": 2048, "date": "2025-05-01", "task_id": "t"}],
            "file_count": 1,
            "bytes": 2048,
        },
        "",
    )
    assert "<d>" not in page and "&lt;f&gt;.tif" in page and "2.0 KiB" in page
