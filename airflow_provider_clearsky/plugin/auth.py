"""Who may see what: the api-server's auth manager decides, for every page and JSON route of the plugin.

A plugin's FastAPI app is mounted as is: Airflow protects none of its routes. Each route here depends on
:func:`current_user`, which reads the Airflow JWT the way Airflow 3's own routes do (``Authorization:
Bearer`` first, else the UI's ``_token`` cookie, which is what an embedded page receives) and resolves it with
the auth manager: no token 401, an expired one 401, an invalid one 403. Then:

* a connection's account and orders need permission to read that connection (``is_authorized_connection``
  GET, as ``requires_access_connection("GET")`` checks for Airflow's connection routes);
* what DAG runs recorded needs permission to read that DAG's XComs (``is_authorized_dag`` GET, XCOM).

Airflow 3.0's ``get_user`` reads only the header, so the cookie fallback is ours; the rest is the auth
manager's own API, the same on 3.0 and 3.3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, status

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager

COOKIE_NAME = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def auth_manager() -> BaseAuthManager[Any]:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


async def current_user(request: Request) -> Any:
    """The authenticated Airflow user of the request, or 401/403."""
    from jwt import ExpiredSignatureError, InvalidTokenError

    token = _token_of(request)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated: log in to Airflow first")
    try:
        return await auth_manager().get_user_from_token(token)
    except ExpiredSignatureError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Token expired: log in to Airflow again") from None
    except InvalidTokenError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Invalid JWT token") from None


UserDep = Annotated[Any, Depends(current_user)]


def may_read_connection(user: Any, conn_id: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    return bool(
        auth_manager().is_authorized_connection(method="GET", details=ConnectionDetails(conn_id=conn_id), user=user)
    )


def may_read_dag_records(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.XCOM, details=DagDetails(id=dag_id), user=user
        )
    )


def require_connection(user: Any, conn_id: str) -> None:
    if not may_read_connection(user, conn_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not read connection {conn_id!r}")


def require_dag(user: Any, dag_id: str) -> None:
    if not may_read_dag_records(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not read the runs of DAG {dag_id!r}")
