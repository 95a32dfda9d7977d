"""HTML of the ClearSKY pages: plain server-rendered tables, every value escaped, no script.

Links to Airflow pages open in the top window (the pages are shown inside Airflow's UI in an iframe).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#1a202c;font-size:14px}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.6em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.4em 0 1em}th,td{border-bottom:1px solid #e2e8f0;padding:.3em .7em;
text-align:left;vertical-align:top}th{background:#f7fafc}.num{text-align:right}.error{color:#c53030}
.muted{color:#718096}code{font-size:.95em}
"""


def e(value: Any) -> str:
    """Escaped text of a value; ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _table(headers: list[str], rows: list[list[str]], css_id: str = "") -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f" id='{e(css_id)}'" if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _money(value: Any, currency: Any = None) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:,.2f} {e(currency) if currency else ''}".strip()


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return "-"


def _run_link(ui: str, dag_id: str, run_id: str) -> str:
    href = f"{ui}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"<a href='{e(href)}' target='_top'>{e(dag_id)} / {e(run_id)}</a>"


def _external(url: Any, text: str) -> str:
    return f"<a href='{e(url)}' target='_blank' rel='noopener'>{text}</a>" if url else text


# ----------------------------------------------------------------------------- connection


def _account(account: dict[str, Any] | None) -> str:
    if not account:
        return ""
    fields = [
        ("Order credits (EUR)", _money(account.get("EuroCreditAmount"))),
        ("Processing units", e(account.get("CreditAmount"))),
        ("EUR credit limit", _money(account.get("EuroCreditLimit"))),
        ("Costs this month", _money(account.get("CurrentMonthCosts"))),
        ("Costs next month", _money(account.get("NextMonthCosts"))),
        ("MaxConcurrentConnections", e(account.get("MaxConcurrentConnections"))),
        ("MaxCompositeAreaKm2", e(account.get("MaxCompositeAreaKm2"))),
        ("MaxTotalBands", e(account.get("MaxTotalBands"))),
    ]
    return _table(["Account", ""], [[name, value] for name, value in fields], "account")


def _orders(orders: list[dict[str, Any]], ui: str) -> str:
    rows = []
    for order in orders:
        guid = f"<code class='order-guid'>{e(order['order_guid'])}</code>"
        recurring = order.get("recurring")
        kind = "-" if recurring is None else ("recurring" if recurring else "historical")
        period = f"{e(order.get('date_from'))} .. {e(order.get('date_to') or ('open' if recurring else None))}"
        renewal = (
            f"{e(order['next_renewal'][:10])}<br><span class='countdown'>cancel within {e(order['cancel_countdown'])}"
            "</span>"
            if order.get("next_renewal")
            else "-"
        )
        runs = "<br>".join(
            f"{_run_link(ui, run['dag_id'], run['run_id'])} ({e(run['action'])})" for run in order.get("runs") or []
        )
        files = order.get("files") or []
        status = e(order.get("status")) if order.get("listed") else "<span class='muted'>not listed by the API</span>"
        rows.append(
            [
                _external(order.get("url"), guid),
                status,
                kind,
                period,
                f"<span class='num'>{e(order.get('area_km2'))}</span>",
                e(order.get("model")),
                f"<span class='order-cost'>{_money(order.get('cost'), order.get('currency'))}</span>",
                renewal,
                runs or "-",
                f"<span class='file-count'>{len(files)}</span>",
            ]
        )
    headers = ["Order", "Status", "Type", "Period", "Area km²", "Model", "Cost", "Next renewal", "DAG runs", "Files"]
    return _table(headers, rows, "orders")


def _files(orders: list[dict[str, Any]], ui: str) -> str:
    rows = [
        [
            e(file.get("name")),
            e(file.get("date")),
            f"<span class='num'>{_size(file.get('size'))}</span>",
            e(file.get("downloaded_at")) + (" (already complete, not paid again)" if file.get("skipped") else ""),
            _run_link(ui, file["dag_id"], file["run_id"]),
            f"<code>{e(order['order_guid'])}</code>",
        ]
        for order in orders
        for file in order.get("files") or []
    ]
    return _table(["File", "Image date", "Size", "Downloaded", "DAG run", "Order"], rows, "files")


def _spend(spend: dict[str, Any]) -> str:
    currency = spend.get("currency")
    by_dag = [[e(dag), _money(value, currency)] for dag, value in spend["by_dag"].items()]
    by_month = [[e(month), _money(value, currency)] for month, value in spend["by_month"].items()]
    return (
        f"<p>Spent by this Airflow's runs: <b class='spend-total'>{_money(spend['total'], currency)}</b> "
        "<span class='muted'>(the cost of orders these runs created; renewals of recurring orders are billed by "
        "ClearSKY on the 1st and show in the account's monthly costs)</span></p>"
        + _table(["DAG", "Spent"], by_dag, "spend-by-dag")
        + _table(["Month", "Spent"], by_month, "spend-by-month")
    )


def connection_section(view: dict[str, Any], ui: str, prefix: str) -> str:
    conn_id = view["conn_id"]
    errors = "".join(f"<p class='error'>{e(part)}: {e(text)}</p>" for part, text in view["errors"].items())
    href = f"{ui}{prefix}/connections/{quote(conn_id, safe='')}"
    return (
        f"<section class='connection' data-conn-id='{e(conn_id)}'>"
        f"<h2>Connection <a href='{e(href)}'>{e(conn_id)}</a></h2>{errors}"
        + _account(view["account"])
        + "<h3>Orders</h3>"
        + _orders(view["orders"], ui)
        + "<h3>Files downloaded</h3>"
        + _files(view["orders"], ui)
        + "<h3>Spend</h3>"
        + _spend(view["spend"])
        + "</section>"
    )


def overview_page(view: dict[str, Any], ui: str, prefix: str) -> str:
    sections = "".join(connection_section(c, ui, prefix) for c in view["connections"])
    if not sections:
        sections = "<p>No ClearSKY connection you may read. Add one of type <i>ClearSKY Vision</i>.</p>"
    return _page(
        "ClearSKY",
        f"<h1>ClearSKY</h1><p class='muted'>Live from the ClearSKY API (cached for 30 s) at {e(view['now'][:19])} "
        "UTC, and what this Airflow's DAG runs recorded.</p>" + sections,
    )


def connection_page(view: dict[str, Any], ui: str, prefix: str) -> str:
    return _page(f"ClearSKY - {view['conn_id']}", "<h1>ClearSKY</h1>" + connection_section(view, ui, prefix))


# ----------------------------------------------------------------------------- DAG run


def run_page(view: dict[str, Any], ui: str) -> str:
    what = "this task instance" if view.get("task_id") else "this DAG run"
    orders = _table(
        ["Order", "What the run did", "Status at the end of the wait", "Connection"],
        [
            [
                f"<code class='order-guid'>{e(o['order_guid'])}</code>",
                e(", ".join(o["actions"]) or "used"),
                e(o["status"]),
                e(o["conn_id"]),
            ]
            for o in view["orders"]
        ],
        "run-orders",
    )
    files = _table(
        ["File", "Image date", "Size", "Downloaded", "Task"],
        [
            [
                e(f.get("name")),
                e(f.get("date")),
                f"<span class='num'>{_size(f.get('size'))}</span>",
                e(f.get("downloaded_at")) + (" (already complete)" if f.get("skipped") else ""),
                e(f.get("task_id")),
            ]
            for f in view["files"]
        ],
        "run-files",
    )
    dates = ", ".join(e(d) for d in view["dates"]) or "-"
    body = (
        f"<h1>ClearSKY: {_run_link(ui, view['dag_id'], view['run_id'])}</h1>"
        + (f"<p>Task <code>{e(view['task_id'])}</code></p>" if view.get("task_id") else "")
        + f"<h3>Orders of {what}</h3>{orders}"
        + f"<p>Cost: <b class='run-cost'>{_money(view['cost'], view['currency'])}</b>"
        + " <span class='muted'>(orders created by this run)</span></p>"
        + f"<p>Image dates waited for: <span class='run-dates'>{dates}</span></p>"
        + f"<h3>Files written: <span class='file-count'>{view['file_count']}</span> ({_size(view['bytes'])})</h3>"
        + files
    )
    return _page(f"ClearSKY - {view['dag_id']} {view['run_id']}", body)
