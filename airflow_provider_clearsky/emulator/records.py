"""The records the emulator keeps: orders, accounts, and a download planned for streaming."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import geo, grid
from .config import AccountConfig
from .dates import image_dates, month_end
from .geotiff import GeoTiffStream


@dataclass
class Order:
    guid: str
    key: str
    created: datetime
    model: str
    constellations: list[str]
    storage_months: int
    api_requests: int
    image_frequency: int
    reference_date: date
    from_date: date
    to_date: date | None
    mode: str  # "polygon" | "tile"
    wkt: str | None
    tiles: list[str]
    minitiles: list[str]
    area_km2: float
    area_raw_km2: float
    mode_factor: float
    charged: float
    paid_through: date  # first day of the last month paid for
    accepted_at: datetime | None
    review_until: datetime | None
    will_deny: bool = False
    denied: bool = False
    canceled: bool = False
    canceled_at: datetime | None = None
    renewal_stopped: bool = False
    renewal_failed: bool = False
    #: Last day of coverage of a recurring order that stopped renewing (cancelled or unpaid). ``to_date``
    #: stays what was ordered (null): a cancel does not turn a recurring order into a historical one.
    ends: date | None = None
    automatic_order_guid: str | None = None
    deduplicated_tiles: list[str] = field(default_factory=list)
    passes_used: dict[str, int] = field(default_factory=dict)
    _geometry: BaseGeometry | None = field(default=None, repr=False, compare=False)

    @property
    def recurring(self) -> bool:
        return self.to_date is None

    @property
    def geometry(self) -> BaseGeometry:
        if self._geometry is None:
            if self.wkt:
                self._geometry = shapely.union_all(geo.split_aois(shapely.from_wkt(self.wkt)))
            else:
                cells = [grid.parse_guid(g) for g in self.tiles + self.minitiles]
                self._geometry = shapely.union_all([c.geometry for c in cells if c is not None])
        return self._geometry

    def end_date(self) -> date:
        """Last day of coverage paid for so far."""
        if self.to_date is not None:
            return self.to_date
        if self.ends is not None:
            return self.ends
        return month_end(self.paid_through)

    def scheduled_dates(self) -> list[date]:
        if self.canceled or self.denied:
            return []
        return image_dates(self.reference_date, self.image_frequency, self.from_date, self.end_date())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_geometry")
        for k, v in list(d.items()):
            if isinstance(v, (date, datetime)):
                d[k] = v.isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Order:
        d = dict(d)
        for k in ("created", "accepted_at", "review_until", "canceled_at"):
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        for k in ("reference_date", "from_date", "to_date", "paid_through", "ends"):
            if d.get(k):
                d[k] = date.fromisoformat(d[k])
        return cls(**d)


@dataclass
class Account:
    config: AccountConfig
    euro_credit_amount: float
    credit_amount: float
    spend: dict[str, float] = field(default_factory=dict)  # "YYYY-MM" -> EUR charged

    @classmethod
    def from_config(cls, cfg: AccountConfig) -> Account:
        return cls(AccountConfig(**cfg.to_dict()), cfg.euro_credit_amount, cfg.credit_amount)

    def spent(self, month: date) -> float:
        return self.spend.get(month.strftime("%Y-%m"), 0.0)

    def add_spend(self, month: date, eur: float) -> None:
        k = month.strftime("%Y-%m")
        self.spend[k] = self.spend.get(k, 0.0) + eur


@dataclass
class PlannedDownload:
    """A validated, charged download ready to stream."""

    stream: GeoTiffStream
    filename: str
    upload_url: str | None


def cell_area(guid: str) -> float:
    """Geodesic area (km2) of a tile or minitile, 0 for an unknown GUID."""
    cell = grid.parse_guid(guid)
    return geo.geodesic_area_km2(cell.geometry) if cell else 0.0
