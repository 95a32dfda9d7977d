"""The API's routes: account, catalogue and tiles, orders, availability and downloads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import errors, geo, grid
from .errors import ApiError, validation_error
from .imagery import request_aoi
from .messages import api_key_of, ok, parse_body, query, query_bool
from .schemas import AoiBody, DetailsBody, DownloadBody, OrderBody, SearchAvailableBody, TileSearchBody

if TYPE_CHECKING:
    from .emulator import Emulator


def add_api_routes(app: FastAPI, emulator: Emulator) -> None:
    store = emulator.store

    def now() -> Any:
        return emulator.now()

    # ---- account
    @app.get("/api/account/info")
    @app.get("/api/apikey/info")
    async def account_info(request: Request) -> JSONResponse:
        return ok(store.account_info(api_key_of(request), now()))

    # ---- catalogue
    @app.get("/api/tasking/models")
    async def models(request: Request) -> JSONResponse:
        from .catalogue import MODELS

        out = []
        for m in MODELS.values():
            sats = [{"SatelliteConstellation": c, "Optional": False} for c in m.required]
            sats += [{"SatelliteConstellation": c, "Optional": True} for c in m.optional]
            out.append({"Model": m.name, "SupportedSatelliteConstellations": sats})
        return ok({"TaskingModels": out})

    @app.post("/api/tasking/search/tiles")
    async def search_tiles(request: Request) -> JSONResponse:
        body = await parse_body(request, TileSearchBody)
        return ok(_search_tiles(body))

    @app.post("/api/tasking/tile/optimize")
    async def optimize(request: Request) -> JSONResponse:
        body = await parse_body(request, AoiBody)
        return ok(_optimize(body))

    # ---- orders
    @app.post("/api/tasking/orders/estimate")
    @app.post("/api/satelliteimages/process/tasking/orders/estimate")
    async def estimate(request: Request) -> JSONResponse:
        body = await parse_body(request, OrderBody)
        return ok(store.estimate(api_key_of(request), body, now()))

    @app.post("/api/tasking/orders")
    @app.post("/api/satelliteimages/process/tasking/orders")
    async def create(request: Request) -> JSONResponse:
        body = await parse_body(request, OrderBody)
        q = query(request)
        auto_values = q.get("automaticorderguid")
        auto = auto_values[-1] if auto_values else None
        return ok(store.create(api_key_of(request), body, now(), auto))

    @app.get("/api/tasking/orders")
    @app.get("/api/satelliteimages/process/tasking/orders")
    async def list_orders(request: Request) -> JSONResponse:
        q = query(request)
        orders = store.list_orders(
            api_key_of(request), now(), query_bool(q, "recurringOnly"), query_bool(q, "getExpired")
        )
        return ok({"TaskOrders": orders})

    def details_method_allowed(method: str) -> bool:
        served = emulator.config.order_details_methods
        return served == "both" or served == method

    @app.post("/api/tasking/orders/details", response_model=None)
    async def details_post(request: Request) -> Response:
        if not details_method_allowed("post"):
            return Response(status_code=405, headers={"Allow": "GET"})
        body = await parse_body(request, DetailsBody)
        if not body.Guids:
            raise validation_error({"Guids": ["'Guids' must not be empty."]})
        return ok({"TaskOrders": store.details(api_key_of(request), body.Guids, now())})

    @app.get("/api/tasking/orders/details", response_model=None)
    async def details_get(request: Request) -> Response:
        if not details_method_allowed("get"):
            return Response(status_code=405, headers={"Allow": "POST"})
        q = query(request)
        guids = [g.strip() for v in q.get("guids", []) + q.get("guid", []) for g in v.split(",") if g.strip()]
        if not guids:
            raise validation_error({"guids": ["At least one 'guids' query parameter is required."]})
        return ok({"TaskOrders": store.details(api_key_of(request), guids, now())})

    @app.delete("/api/tasking/orders/cancel")
    async def cancel(request: Request) -> JSONResponse:
        q = query(request)
        guid_values = q.get("taskorderguid")
        guid = guid_values[-1] if guid_values else None
        return ok(store.cancel(api_key_of(request), guid, now()))

    # ---- availability
    @app.post("/api/satelliteimages/search/available")
    async def search_available(request: Request) -> JSONResponse:
        body = await parse_body(request, SearchAvailableBody)
        aoi = request_aoi(body)
        if body.From is None:
            raise validation_error({"From": ["'From' must not be empty."]})
        return ok(store.search_available(api_key_of(request), aoi, body.From, body.Until, now()))

    @app.post("/api/satelliteimages/process/composite/available")
    async def composite_available(request: Request) -> JSONResponse:
        body = await parse_body(request, DownloadBody)
        return ok(store.composite_available(api_key_of(request), body, now()))

    @app.post("/api/satelliteimages/process/composite/estimate")
    async def composite_estimate(request: Request) -> JSONResponse:
        body = await parse_body(request, DownloadBody)
        return ok(store.composite_estimate(api_key_of(request), body, now()))

    async def _download(request: Request, kind: str) -> Response:
        body = await parse_body(request, DownloadBody)
        plan = store.prepare_download(api_key_of(request), body, kind, now())
        stream = plan.stream
        if plan.upload_url:
            await _upload(plan.upload_url, stream)
            return Response(status_code=201)
        headers = {
            "Content-Length": str(stream.size),
            "Content-Disposition": f'attachment; filename="{plan.filename}"',
        }
        return StreamingResponse(stream.aiter_strips(), media_type="application/octet-stream", headers=headers)

    @app.post("/api/satelliteimages/process/composite")
    async def composite(request: Request) -> Response:
        return await _download(request, "composite")

    @app.post("/api/satelliteimages/process/tile")
    async def tile(request: Request) -> Response:
        return await _download(request, "tile")

    @app.post("/api/satelliteimages/process/minitile")
    async def minitile(request: Request) -> Response:
        return await _download(request, "minitile")


async def _upload(url: str, stream: Any) -> None:
    """PUT the file to the caller's URL. The URL is never logged or echoed (it may be signed).

    httpcore rather than httpx: httpx logs every request's full URL at INFO level, signature included.
    """
    import httpcore

    headers = [(b"Content-Length", str(stream.size).encode()), (b"Content-Type", b"application/octet-stream")]
    try:
        async with httpcore.AsyncConnectionPool() as pool:
            response = await pool.request(
                "PUT", url, headers=headers, content=stream.aiter_strips(), extensions={"timeout": {"read": 120.0}}
            )
    except (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
    ) as exc:
        raise ApiError(400, errors.DOMAIN_RULE, f"Upload to UploadUrl failed: {type(exc).__name__}.") from exc
    if response.status >= 300:
        raise ApiError(400, errors.DOMAIN_RULE, f"Upload to UploadUrl failed with HTTP {response.status}.")


def _tile_entry(cell: grid.Cell) -> dict[str, Any]:
    return {
        "Guid": cell.guid,
        "MiniTile": cell.is_mini,
        "Epsg": str(cell.epsg),
        "DataGeogWkt": geo.to_wkt(cell.geometry),
    }


def _cells(guids: list[str], mini: bool, fieldname: str) -> list[grid.Cell]:
    out = []
    for g in guids:
        cell = grid.parse_guid(g)
        if cell is None or cell.is_mini != mini:
            raise errors.not_found(
                f"Unknown {'minitile' if mini else 'tile'} '{g}'.", {fieldname: [f"Unknown GUID '{g}'."]}
            )
        out.append(cell)
    return out


def _search_tiles(body: TileSearchBody) -> dict[str, Any]:
    modes = [
        body.Wkt is not None,
        body.GeoJson is not None,
        bool(body.TileGuids),
        bool(body.MiniTileGuids),
        body.TileGuidForMiniTiles is not None,
    ]
    if sum(modes) != 1:
        raise validation_error(
            {"Wkt": ["Specify exactly one of Wkt, GeoJson, TileGuids, MiniTileGuids or TileGuidForMiniTiles."]}
        )
    if body.TileGuids:
        return {"Tiles": [_tile_entry(c) for c in _cells(body.TileGuids, False, "TileGuids")]}
    if body.MiniTileGuids:
        return {"Tiles": [_tile_entry(c) for c in _cells(body.MiniTileGuids, True, "MiniTileGuids")]}
    if body.TileGuidForMiniTiles is not None:
        tile = _cells([body.TileGuidForMiniTiles], False, "TileGuidForMiniTiles")[0]
        minis = tile.minitiles()
        # docs/api.md#tiles: both shapes - Tiles entries with MiniTile=true and a MiniTiles GUID list.
        return {"Tiles": [_tile_entry(c) for c in minis], "MiniTiles": [c.guid for c in minis]}
    aoi = request_aoi(body)
    try:
        tiles = grid.tiles_intersecting(aoi)
    except ValueError as exc:
        raise validation_error({"Wkt": [str(exc)]}) from exc
    # The 2025 client and its example read tiles and minitiles from one list, told apart by ``MiniTile``.
    minis = [cell for tile in tiles for cell, _ in grid.minitiles_intersecting(tile, aoi)]
    return {"Tiles": [_tile_entry(c) for c in tiles] + [_tile_entry(c) for c in minis]}


def _optimize(body: AoiBody) -> dict[str, Any]:
    """Best-effort cheapest covering: a whole tile when more than 40 % of it is needed, otherwise every
    minitile the AOI touches (so the covering is complete)."""
    aoi = request_aoi(body)
    try:
        tiles = grid.tiles_intersecting(aoi)
    except ValueError as exc:
        raise validation_error({"Wkt": [str(exc)]}) from exc
    out_tiles: list[str] = []
    out_minis: list[str] = []
    for t in tiles:
        frac = t.geometry.intersection(aoi).area / t.geometry.area
        if frac > 0.4:
            out_tiles.append(t.guid)
        else:
            out_minis.extend(c.guid for c, _ in grid.minitiles_intersecting(t, aoi))
    return {"Tiles": out_tiles, "MiniTiles": out_minis}
