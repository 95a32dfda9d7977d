"""``ClearSkyHook``: the whole ClearSKY HTTP API, sync (operators) and async (triggers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from functools import cached_property
from typing import Any, TypeVar

import httpx
import tenacity
from airflow.providers.common.compat.connection import get_async_connection

from airflow_provider_clearsky import __version__
from airflow_provider_clearsky._compat import BaseHook, airflow_version, mask_secret
from airflow_provider_clearsky.connection import DEFAULT_CONN_ID, UI_FIELD_BEHAVIOUR, ConnectionSettings
from airflow_provider_clearsky.exceptions import ClearSkyApiError, ClearSkyError, NotFoundError
from airflow_provider_clearsky.hooks import endpoints
from airflow_provider_clearsky.hooks._api import (
    ApiCall,
    RetryPolicy,
    aopen_stream,
    open_stream,
    outcome_unknown,
    parse_response,
    retrying_kwargs,
    transport_error,
)
from airflow_provider_clearsky.hooks.download import AsyncDownload, Download
from airflow_provider_clearsky.models import imagery
from airflow_provider_clearsky.models.catalog import (
    AccountInfo,
    OptimizedTiles,
    TaskingModel,
    TileSearchRequest,
    TileSearchResult,
)
from airflow_provider_clearsky.models.geometry import Aoi
from airflow_provider_clearsky.models.orders import OrderEstimate, OrderRequest, TaskOrder

T = TypeVar("T")
R = TypeVar("R")


class ClearSkyHook(BaseHook):
    """Talks to the ClearSKY Vision API through the ``clearsky`` connection.

    API key in the connection's password, base URL in host, options in extra (``timeout``,
    ``connect_timeout``, ``max_retries``, ``max_concurrent_connections``, ``backoff_initial``,
    ``backoff_max``, ``retry_after_cap``, ``dashboard_url``).

    Every endpoint has a sync method and an async one (``a`` prefix). Both retry 429, 5xx, connect errors
    and timeouts with exponential backoff and jitter, honour ``Retry-After``, and never retry another 4xx.
    A create-order POST is never re-sent once it may have reached the server: an unclear outcome raises
    :class:`~airflow_provider_clearsky.exceptions.OrderOutcomeUnknownError`.

    No client is created and no I/O is done until the first call.

    :param clearsky_conn_id: the connection to use.
    :param timeout: read timeout in seconds, overriding the connection's.
    :param max_retries: retries after the first attempt, overriding the connection's.
    :param retry_policy: full control of retries (tests use it to record waits).
    :param transport: an ``httpx`` transport for the sync client (tests only).
    :param async_transport: an ``httpx`` transport for the async client (tests only).
    """

    conn_name_attr = "clearsky_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "clearsky"
    hook_name = "ClearSKY Vision"

    def __init__(
        self,
        clearsky_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.clearsky_conn_id = clearsky_conn_id
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_policy = retry_policy
        self._transport = transport
        self._async_transport = async_transport
        self._settings: ConnectionSettings | None = None
        self._async_client: httpx.AsyncClient | None = None

    # ----------------------------------------------------------------- connection and clients

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return how Airflow's connection form shows the ClearSKY fields."""
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return typed option fields for Airflow before 3.2 (3.2+ reads the provider info's ``conn-fields``)."""
        from airflow_provider_clearsky.connection import form_widgets

        return form_widgets()

    def _accept(self, settings: ConnectionSettings) -> ConnectionSettings:
        mask_secret(settings.api_key)
        self._settings = settings
        return settings

    @property
    def settings(self) -> ConnectionSettings:
        """Return the validated connection settings (the connection is read once, on first use)."""
        if self._settings is None:
            conn = self.get_connection(self.clearsky_conn_id)
            self._accept(ConnectionSettings.from_connection(conn))
        assert self._settings is not None
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """Return the settings, read without blocking the event loop.

        Reading a connection's extras and registering the key with the masker may call Airflow
        synchronously (Airflow 3.0 does, and refuses that inside a running event loop), so both run in a
        worker thread.
        """
        if self._settings is None:
            from asgiref.sync import sync_to_async

            conn = await get_async_connection(self.clearsky_conn_id)
            settings = await sync_to_async(ConnectionSettings.from_connection)(conn)
            await sync_to_async(self._accept)(settings)
        assert self._settings is not None
        return self._settings

    @property
    def retry_policy(self) -> RetryPolicy:
        """Return the retry policy: the one given, else the connection's (``max_retries`` overridable)."""
        if self._retry_policy is not None:
            return self._retry_policy
        settings = self.settings
        retries = self._max_retries if self._max_retries is not None else settings.max_retries
        return RetryPolicy(
            max_attempts=retries + 1,
            backoff_initial=settings.backoff_initial,
            backoff_max=settings.backoff_max,
            retry_after_cap=settings.retry_after_cap,
        )

    def _client_options(self, settings: ConnectionSettings) -> dict[str, Any]:
        read = self._timeout if self._timeout is not None else settings.timeout
        limit = settings.max_concurrent_connections
        return {
            "base_url": settings.base_url,
            "headers": {
                "x-api-key": settings.api_key,
                "Accept": "application/json, application/octet-stream",
                # The docs list Content-Type as required on every request, GETs and DELETEs included.
                "Content-Type": "application/json",
                "User-Agent": f"airflow-provider-clearsky/{__version__} apache-airflow/{airflow_version()} "
                f"httpx/{httpx.__version__}",
            },
            "timeout": httpx.Timeout(read, connect=settings.connect_timeout),
            # Never more connections in flight than the account allows (MaxConcurrentConnections).
            "limits": httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            "follow_redirects": False,
        }

    @cached_property
    def client(self) -> httpx.Client:
        """Return the sync ``httpx.Client``, created on first use."""
        return httpx.Client(transport=self._transport, **self._client_options(self.settings))

    def get_conn(self) -> httpx.Client:
        """Return the hook's ``httpx.Client``, ready for calls the hook has no method for.

        It carries the connection's base URL, the API key header, the timeouts and the connection limit; it is
        created on first use (no I/O until a request) and closed by :meth:`close`. Calls made through it bypass
        the hook's retries and typed errors.
        """
        return self.client

    async def aget_client(self) -> httpx.AsyncClient:
        """Return the ``httpx.AsyncClient``, created on first use without blocking the event loop."""
        if self._async_client is None:
            settings = await self.aget_settings()
            self._async_client = httpx.AsyncClient(transport=self._async_transport, **self._client_options(settings))
        return self._async_client

    def close(self) -> None:
        """Close the sync client, if one was created; the next call opens a fresh one."""
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    async def aclose(self) -> None:
        """Close the async client, if one was created."""
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    def __enter__(self) -> ClearSkyHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Test the connection with one read-only authenticated call; never raises and never echoes the key."""
        try:
            info = self.get_account_info()
        except ClearSkyError as error:
            return False, f"ClearSKY connection failed: {error}"
        except Exception as error:
            return False, f"ClearSKY connection failed: {type(error).__name__}"
        finally:
            self.close()
        limits = (
            f"max {info.max_concurrent_connections} concurrent connections" if info.max_concurrent_connections else ""
        )
        return True, f"Connected to ClearSKY at {self.settings.base_url}. {limits}".strip()

    # ----------------------------------------------------------------- sending

    def _send_once(self, call: ApiCall[T]) -> T:
        try:
            response = self.client.send(call.build(self.client))
        except httpx.TransportError as error:
            raise transport_error(call, error) from error
        return parse_response(call, response)

    async def _asend_once(self, call: ApiCall[T]) -> T:
        client = await self.aget_client()
        try:
            response = await client.send(call.build(client))
        except httpx.TransportError as error:
            raise transport_error(call, error) from error
        return parse_response(call, response)

    def run(self, call: ApiCall[T]) -> T:
        """Send ``call`` with the retry policy and return its parsed ``Data``."""
        return self._retried(call, self._send_once)

    async def arun(self, call: ApiCall[T]) -> T:
        """Send ``call`` with the retry policy and return its parsed ``Data`` (async :meth:`run`)."""
        return await self._aretried(call, self._asend_once)

    def _retried(self, call: ApiCall[T], attempt_once: Callable[[ApiCall[T]], R]) -> R:
        """Make single attempts of ``call`` under the retry policy; unclear create outcomes become typed."""
        try:
            for attempt in tenacity.Retrying(**retrying_kwargs(self.retry_policy, call)):
                with attempt:
                    return attempt_once(call)
        except ClearSkyError as error:
            converted = outcome_unknown(call, error)
            if converted is error:
                raise
            raise converted from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _aretried(self, call: ApiCall[T], attempt_once: Callable[[ApiCall[T]], Awaitable[R]]) -> R:
        await self.aget_settings()
        try:
            async for attempt in tenacity.AsyncRetrying(**retrying_kwargs(self.retry_policy, call, asynchronous=True)):
                with attempt:
                    return await attempt_once(call)
        except ClearSkyError as error:
            converted = outcome_unknown(call, error)
            if converted is error:
                raise
            raise converted from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    # ----------------------------------------------------------------- account and catalogue

    def get_account_info(self) -> AccountInfo:
        """Return balances and limits of the key's account (``/api/account/info``, else ``/api/apikey/info``)."""
        try:
            return self.run(endpoints.account_info())
        except NotFoundError:
            return self.run(endpoints.apikey_info())

    async def aget_account_info(self) -> AccountInfo:
        """Return balances and limits of the key's account (async :meth:`get_account_info`)."""
        try:
            return await self.arun(endpoints.account_info())
        except NotFoundError:
            return await self.arun(endpoints.apikey_info())

    def get_tasking_models(self) -> list[TaskingModel]:
        """Return the tasking models and their constellations (``/api/tasking/models``)."""
        return self.run(endpoints.tasking_models())

    async def aget_tasking_models(self) -> list[TaskingModel]:
        """Return the tasking models (async :meth:`get_tasking_models`)."""
        return await self.arun(endpoints.tasking_models())

    def search_tiles(self, request: TileSearchRequest) -> TileSearchResult:
        """Return the orderable tiles and minitiles of an area or of the given GUIDs (free)."""
        return self.run(endpoints.search_tiles(request))

    async def asearch_tiles(self, request: TileSearchRequest) -> TileSearchResult:
        """Return the tiles and minitiles of a search (async :meth:`search_tiles`)."""
        return await self.arun(endpoints.search_tiles(request))

    def optimize_tiles(self, aoi: Aoi) -> OptimizedTiles:
        """Return the cheapest tile and minitile cover of an area (free)."""
        return self.run(endpoints.optimize_tiles(aoi))

    async def aoptimize_tiles(self, aoi: Aoi) -> OptimizedTiles:
        """Return the cheapest cover of an area (async :meth:`optimize_tiles`)."""
        return await self.arun(endpoints.optimize_tiles(aoi))

    # ----------------------------------------------------------------- orders

    def estimate_order(self, order: OrderRequest, *, simulated_euro_usage: float | None = None) -> OrderEstimate:
        """Return the price and candidate image dates of an order; free, and identical in body to the create.

        ``simulated_euro_usage``: estimate as if this many EUR were already spent this month (spend tiers).
        """
        return self.run(endpoints.estimate_order(order, simulated_euro_usage))

    async def aestimate_order(self, order: OrderRequest, *, simulated_euro_usage: float | None = None) -> OrderEstimate:
        """Return an order's price and candidate dates (async :meth:`estimate_order`)."""
        return await self.arun(endpoints.estimate_order(order, simulated_euro_usage))

    def create_order(
        self, order: OrderRequest, *, tile_deduplication: bool = False, automatic_order_guid: str | None = None
    ) -> TaskOrder:
        """Create (and pay for) an order. Not idempotent: an unclear outcome raises OrderOutcomeUnknownError.

        ``automatic_order_guid``: the ``automaticOrderGuid`` query parameter of the automatic order flow.
        """
        return self.run(endpoints.create_order(order, tile_deduplication, automatic_order_guid))

    async def acreate_order(
        self, order: OrderRequest, *, tile_deduplication: bool = False, automatic_order_guid: str | None = None
    ) -> TaskOrder:
        """Create (and pay for) an order (async :meth:`create_order`, never re-sent either)."""
        return await self.arun(endpoints.create_order(order, tile_deduplication, automatic_order_guid))

    def list_orders(self, *, recurring_only: bool = False, include_expired: bool = False) -> list[TaskOrder]:
        """Return the account's orders, optionally only recurring ones or with expired ones too."""
        return self.run(endpoints.list_orders(recurring_only, include_expired))

    async def alist_orders(self, *, recurring_only: bool = False, include_expired: bool = False) -> list[TaskOrder]:
        """Return the account's orders (async :meth:`list_orders`)."""
        return await self.arun(endpoints.list_orders(recurring_only, include_expired))

    def get_order_details(self, guids: list[str]) -> list[TaskOrder]:
        """Return order details: POST as the 2025 client does, GET (the docs list it) when POST answers 404/405."""
        try:
            return self.run(endpoints.order_details(guids))
        except ClearSkyApiError as error:
            if not _post_refused(error):
                raise
        return self.run(endpoints.order_details_get(guids))

    async def aget_order_details(self, guids: list[str]) -> list[TaskOrder]:
        """Return the details of these orders (async :meth:`get_order_details`)."""
        try:
            return await self.arun(endpoints.order_details(guids))
        except ClearSkyApiError as error:
            if not _post_refused(error):
                raise
        return await self.arun(endpoints.order_details_get(guids))

    def get_order(self, order_guid: str) -> TaskOrder:
        """Return one order's details; :class:`NotFoundError` if the account has no such order."""
        return _only_order(order_guid, self.get_order_details([order_guid]))

    async def aget_order(self, order_guid: str) -> TaskOrder:
        """Return one order's details (async :meth:`get_order`)."""
        return _only_order(order_guid, await self.aget_order_details([order_guid]))

    def cancel_order(self, order_guid: str) -> dict[str, Any]:
        """Cancel an order in Review, or stop a recurring order's next renewal (docs/api.md#cancellation)."""
        return self.run(endpoints.cancel_order(order_guid))

    async def acancel_order(self, order_guid: str) -> dict[str, Any]:
        """Cancel an order or stop its renewal (async :meth:`cancel_order`)."""
        return await self.arun(endpoints.cancel_order(order_guid))

    # ----------------------------------------------------------------- imagery

    def search_available_dates(self, request: imagery.AvailableDatesRequest) -> imagery.AvailableDates:
        """Return the dates with imagery for an area and a date range."""
        return self.run(endpoints.search_available_dates(request))

    async def asearch_available_dates(self, request: imagery.AvailableDatesRequest) -> imagery.AvailableDates:
        """Return the dates with imagery (async :meth:`search_available_dates`)."""
        return await self.arun(endpoints.search_available_dates(request))

    def check_composite_available(self, request: imagery.ImageryRequest) -> imagery.CompositeAvailability:
        """Return whether a composite for these exact settings can be downloaded now, and why not."""
        return self.run(endpoints.composite_available(request))

    async def acheck_composite_available(self, request: imagery.ImageryRequest) -> imagery.CompositeAvailability:
        """Return a composite's availability (async :meth:`check_composite_available`)."""
        return await self.arun(endpoints.composite_available(request))

    def estimate_composite(self, request: imagery.ImageryRequest) -> imagery.CompositeEstimate:
        """Return the processing units and area a composite download would cost (free)."""
        return self.run(endpoints.composite_estimate(request))

    async def aestimate_composite(self, request: imagery.ImageryRequest) -> imagery.CompositeEstimate:
        """Return a composite's cost estimate (async :meth:`estimate_composite`)."""
        return await self.arun(endpoints.composite_estimate(request))

    # ----------------------------------------------------------------- downloads (streamed)

    def _open_stream(self, call: ApiCall[Any]) -> httpx.Response:
        return open_stream(self.client, call)

    async def _aopen_stream(self, call: ApiCall[Any]) -> httpx.Response:
        return await aopen_stream(await self.aget_client(), call)

    @contextmanager
    def _stream(self, call: ApiCall[Any]) -> Iterator[Download]:
        response = self._retried(call, self._open_stream)
        try:
            yield Download(call, response)
        finally:
            response.close()

    @asynccontextmanager
    async def _astream(self, call: ApiCall[Any]) -> AsyncIterator[AsyncDownload]:
        response = await self._aretried(call, self._aopen_stream)
        try:
            yield AsyncDownload(call, response)
        finally:
            await response.aclose()

    def stream_composite(self, request: imagery.ImageryRequest) -> AbstractContextManager[Download]:
        """Produce and stream a composite; use as ``with hook.stream_composite(req) as download: ...``.

        Processing units are charged when the API starts answering. With ``upload_url`` set the API
        writes the file there and ``download.uploaded`` is true with no body.
        """
        return self._stream(endpoints.download_composite(request))

    def astream_composite(self, request: imagery.ImageryRequest) -> AbstractAsyncContextManager[AsyncDownload]:
        """Produce and stream a composite (async :meth:`stream_composite`)."""
        return self._astream(endpoints.download_composite(request))

    def stream_tile(self, request: imagery.GridImageryRequest) -> AbstractContextManager[Download]:
        """Stream a tile or minitile download (whichever GUID ``request`` names)."""
        return self._stream(endpoints.download_grid(request))

    def astream_tile(self, request: imagery.GridImageryRequest) -> AbstractAsyncContextManager[AsyncDownload]:
        """Stream a tile or minitile download (async :meth:`stream_tile`)."""
        return self._astream(endpoints.download_grid(request))


def _post_refused(error: ClearSkyApiError) -> bool:
    """404 or 405 to the POST: try the docs' GET (an unknown order then answers 404 there too)."""
    return error.status_code in (404, 405)


def _only_order(order_guid: str, orders: list[TaskOrder]) -> TaskOrder:
    for order in orders:
        if order.task_order_guid.lower() == order_guid.lower():
            return order
    raise NotFoundError(f"no order {order_guid} on this account", status_code=404)
