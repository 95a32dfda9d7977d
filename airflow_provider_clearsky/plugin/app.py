"""The plugin's FastAPI app: pages and JSON under ``/clearsky``, every route behind Airflow's auth manager.

Pages are rendered on the server: the browser gets HTML with the numbers in it and no script, so nothing but
what the page shows crosses the network (never the API key: the api-server calls ClearSKY, the browser does
not).

============================================  =====================================================
``GET /clearsky/``                             every ClearSKY connection the user may read
``GET /clearsky/connections/{connection_id}``  one connection: account, orders, what runs did, spend
``GET /clearsky/runs/{dag_id}/{run_id}``       a DAG run's order, cost, dates and files
                                               (``?task_id=&map_index=``: one task instance's)
``GET /clearsky/api/...``                      the same as JSON (``connections``, ``connections/{id}``,
                                               ``runs/{dag_id}/{run_id}``)
============================================  =====================================================
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_clearsky.plugin import auth, data, views

router = APIRouter(dependencies=[Depends(auth.current_user)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ui_root(request: Request) -> str:
    """Airflow's UI root as seen by the browser (the mount's prefix removed from this app's root path)."""
    root = str(request.scope.get("root_path") or "")
    prefix = str(request.app.state.url_prefix)
    return root[: -len(prefix)] if root.endswith(prefix) else root


def _overview(user: Any, now: dt.datetime) -> dict[str, Any]:
    records = [r for r in data.load_records() if auth.may_read_dag_records(user, r.dag_id)]
    conn_ids = [c for c in data.clearsky_conn_ids(records) if auth.may_read_connection(user, c)]
    return {"connections": [data.connection_view(c, records, now) for c in conn_ids], "now": now.isoformat()}


def _connection(user: Any, connection_id: str, now: dt.datetime) -> dict[str, Any]:
    auth.require_connection(user, connection_id)
    records = [r for r in data.load_records() if auth.may_read_dag_records(user, r.dag_id)]
    return data.connection_view(connection_id, records, now)


def _run(user: Any, dag_id: str, run_id: str, task_id: str | None, map_index: int | None) -> dict[str, Any]:
    auth.require_dag(user, dag_id)
    return data.run_view(dag_id, run_id, task_id or None, None if map_index is None or map_index < 0 else map_index)


# ----------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
async def overview_page(request: Request, user: auth.UserDep) -> HTMLResponse:
    view = await run_in_threadpool(_overview, user, _now())
    return HTMLResponse(views.overview_page(view, _ui_root(request), request.app.state.url_prefix))


@router.get("/connections/{connection_id}", response_class=HTMLResponse)
async def connection_page(request: Request, connection_id: str, user: auth.UserDep) -> HTMLResponse:
    view = await run_in_threadpool(_connection, user, connection_id, _now())
    return HTMLResponse(views.connection_page(view, _ui_root(request), request.app.state.url_prefix))


@router.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request,
    dag_id: str,
    run_id: str,
    user: auth.UserDep,
    task_id: str | None = None,
    map_index: int | None = None,
) -> HTMLResponse:
    view = await run_in_threadpool(_run, user, dag_id, run_id, task_id, map_index)
    return HTMLResponse(views.run_page(view, _ui_root(request)))


# ----------------------------------------------------------------------------- JSON


@router.get("/api/connections")
async def connections_json(user: auth.UserDep) -> dict[str, Any]:
    return await run_in_threadpool(_overview, user, _now())


@router.get("/api/connections/{connection_id}")
async def connection_json(connection_id: str, user: auth.UserDep) -> dict[str, Any]:
    return await run_in_threadpool(_connection, user, connection_id, _now())


@router.get("/api/runs/{dag_id}/{run_id}")
async def run_json(
    dag_id: str, run_id: str, user: auth.UserDep, task_id: str | None = None, map_index: int | None = None
) -> dict[str, Any]:
    return await run_in_threadpool(_run, user, dag_id, run_id, task_id, map_index)


# ----------------------------------------------------------------------------- the app


def create_app(url_prefix: str) -> FastAPI:
    app = FastAPI(title="ClearSKY", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.url_prefix = url_prefix
    app.include_router(router)
    return app


@cache
def fastapi_apps(url_prefix: str) -> list[dict[str, Any]]:
    """The plugin's ``fastapi_apps`` entry, built once per process."""
    return [{"app": create_app(url_prefix), "url_prefix": url_prefix, "name": "ClearSKY"}]
