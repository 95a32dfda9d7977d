"""The emulator's deterministic tasking grid.

* Tiles are 0.5 x 0.5 degree lon/lat cells (about 55 x 55 km at the equator, 1,500-3,100 km^2 in the
  inhabited latitudes), the real grid's 51.2 km UTM tiles being unknown in detail.
* Each tile holds 16 x 16 minitiles of 0.03125 degrees (about 3.5 x 3.5 km).
* GUIDs are derived from the grid position and are reversible, so any GUID the emulator ever handed out
  resolves after a restart: a UUIDv8 (RFC 9562 "custom") whose 122 free bits hold the cell position and a
  93-bit SHA-1 checksum. A GUID that is not a valid grid GUID is unknown (404).
* ``Epsg`` of a tile is the UTM zone of its centre, as a string ("32632"), like the 2024 repo model.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from .geo import utm_epsg_for

TILE_DEG = 0.5
MINI_PER_TILE = 16
MINI_DEG = TILE_DEG / MINI_PER_TILE
N_X = int(360 / TILE_DEG)
N_Y = int(180 / TILE_DEG)
_SECRET = b"clearsky-emulator-grid-v1"


@dataclass(frozen=True)
class Cell:
    """A tile (``mx``/``my`` None) or a minitile of the grid."""

    ix: int
    iy: int
    mx: int | None = None
    my: int | None = None

    @property
    def is_mini(self) -> bool:
        return self.mx is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0 = -180 + self.ix * TILE_DEG
        y0 = -90 + self.iy * TILE_DEG
        if self.mx is None or self.my is None:
            return x0, y0, x0 + TILE_DEG, y0 + TILE_DEG
        x0 += self.mx * MINI_DEG
        y0 += self.my * MINI_DEG
        return x0, y0, x0 + MINI_DEG, y0 + MINI_DEG

    @property
    def geometry(self) -> BaseGeometry:
        return box(*self.bounds)

    @property
    def epsg(self) -> int:
        x0, y0, x1, y1 = self.bounds
        return utm_epsg_for((x0 + x1) / 2, (y0 + y1) / 2)

    @property
    def guid(self) -> str:
        return cell_guid(self)

    def parent(self) -> Cell:
        return Cell(self.ix, self.iy)

    def minitiles(self) -> list[Cell]:
        return [Cell(self.ix, self.iy, mx, my) for my in range(MINI_PER_TILE) for mx in range(MINI_PER_TILE)]


def _fields(cell: Cell) -> int:
    kind = 1 if cell.mx is None else 2
    return (kind << 27) | (cell.ix << 17) | (cell.iy << 8) | ((cell.mx or 0) << 4) | (cell.my or 0)


def _checksum(fields: int) -> int:
    digest = hashlib.sha1(_SECRET + fields.to_bytes(4, "big")).digest()  # noqa: S324 - not security
    return int.from_bytes(digest, "big") >> (160 - 93)


def cell_guid(cell: Cell) -> str:
    fields = _fields(cell)
    payload = (_checksum(fields) << 29) | fields  # 122 bits
    hi48 = payload >> 74
    mid12 = (payload >> 62) & 0xFFF
    lo62 = payload & ((1 << 62) - 1)
    value = (hi48 << 80) | (0x8 << 76) | (mid12 << 64) | (0b10 << 62) | lo62
    return str(uuid.UUID(int=value))


def parse_guid(guid: str) -> Cell | None:
    """The cell of a grid GUID, or None when the GUID is not one of the emulator's."""
    try:
        value = uuid.UUID(str(guid)).int
    except (ValueError, AttributeError, TypeError):
        return None
    if (value >> 76) & 0xF != 0x8 or (value >> 62) & 0b11 != 0b10:
        return None
    payload = ((value >> 80) << 74) | (((value >> 64) & 0xFFF) << 62) | (value & ((1 << 62) - 1))
    fields = payload & ((1 << 29) - 1)
    if payload >> 29 != _checksum(fields):
        return None
    kind = fields >> 27
    ix = (fields >> 17) & 0x3FF
    iy = (fields >> 8) & 0x1FF
    mx = (fields >> 4) & 0xF
    my = fields & 0xF
    if ix >= N_X or iy >= N_Y or kind not in (1, 2):
        return None
    return Cell(ix, iy) if kind == 1 else Cell(ix, iy, mx, my)


def tiles_intersecting(geom: BaseGeometry, limit: int = 5000) -> list[Cell]:
    """Tiles whose footprint intersects ``geom`` (touching edges excluded)."""
    minx, miny, maxx, maxy = geom.bounds
    ix0 = max(0, math.floor((minx + 180) / TILE_DEG))
    ix1 = min(N_X - 1, math.floor((maxx + 180) / TILE_DEG))
    iy0 = max(0, math.floor((miny + 90) / TILE_DEG))
    iy1 = min(N_Y - 1, math.floor((maxy + 90) / TILE_DEG))
    if (ix1 - ix0 + 1) * (iy1 - iy0 + 1) > limit:
        raise ValueError(f"the geometry spans more than {limit} tiles")
    out = []
    for iy in range(iy0, iy1 + 1):
        for ix in range(ix0, ix1 + 1):
            cell = Cell(ix, iy)
            inter = cell.geometry.intersection(geom)
            if not inter.is_empty and inter.area > 0:
                out.append(cell)
    return out


def minitiles_intersecting(tile: Cell, geom: BaseGeometry) -> list[tuple[Cell, float]]:
    """Minitiles of ``tile`` that intersect ``geom`` with the covered fraction of each."""
    out = []
    for cell in tile.minitiles():
        g = cell.geometry
        inter = g.intersection(geom)
        if not inter.is_empty and inter.area > 0:
            out.append((cell, inter.area / g.area))
    return out
