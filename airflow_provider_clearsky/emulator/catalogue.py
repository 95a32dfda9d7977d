"""Tasking models, constellations, bands and pricing of the emulator (docs/api.md#values, #billing)."""

from __future__ import annotations

from dataclasses import dataclass

#: Monthly EUR spend tiers (reset on the 1st): upper bounds of each tier in EUR.
SPEND_TIER_BOUNDS = (1_000.0, 3_000.0, 12_000.0, 50_000.0, 400_000.0, float("inf"))
#: Order-mode price factors: polygon 100 %, tile 20 % (docs/api.md#billing: the 80 % discount of the current docs,
#: not the older 90 %), minitile 50 %.
MODE_FACTOR = {"polygon": 1.0, "tile": 0.2, "minitile": 0.5}
#: Add-on price per km^2 and month for an OPTIONAL constellation selected on top of the required ones.
ADDON_EUR_PER_KM2 = {"Sentinel1": 0.04, "Sentinel2": 0.04, "Sentinel3": 0.02, "Landsat89": 0.02}
#: Extra storage: EUR per km^2 per extra month (StorageMonths beyond 1).
STORAGE_EUR_PER_KM2_MONTH = 0.00001
#: Processing units: one unit per started 10 km^2 of a download (docs/api.md#billing).
KM2_PER_PROCESSING_UNIT = 10.0

STRATUS_BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]
NIMBUS_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]
RGB = ["B4", "B3", "B2"]


@dataclass(frozen=True)
class TaskingModel:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    tier_rates: tuple[float, ...]
    bands: tuple[str, ...]
    invented: bool = False


_STRATUS2_RATES = (0.20, 0.05, 0.02, 0.01, 0.008, 0.006)
_NIMBUS_RATES = (0.10, 0.075, 0.05, 0.025, 0.02, 0.015)

MODELS: dict[str, TaskingModel] = {
    m.name.lower(): m
    for m in (
        TaskingModel("Stratus2", ("Sentinel1", "Sentinel2", "Landsat89"), (), _STRATUS2_RATES, tuple(STRATUS_BANDS)),
        # "Stratus3" is the probable API value of the display name Stratus-3 (unverified, docs/api.md#values).
        TaskingModel("Stratus3", ("Sentinel1", "Sentinel2", "Landsat89"), (), _STRATUS2_RATES, tuple(STRATUS_BANDS)),
        TaskingModel(
            "Stratus2Fast",
            ("Sentinel1", "Sentinel2"),
            ("Landsat89",),
            tuple(r * 0.9 for r in _STRATUS2_RATES),
            tuple(STRATUS_BANDS),
        ),
        # INVENTED: the Nimbus API values and constellations are not published (docs/api.md#values).
        TaskingModel(
            "NimbusNDVI",
            ("Sentinel2",),
            ("Sentinel1", "Landsat89"),
            _NIMBUS_RATES,
            tuple(NIMBUS_BANDS),
            invented=True,
        ),
    )
}


CONSTELLATIONS = ("Sentinel1", "Sentinel2", "Sentinel3", "Landsat89")


def find_model(name: str | None) -> TaskingModel | None:
    """The model whose API value is ``name``, ignoring case only (the 2024 example sent ``stratus2``).

    Display names (``Stratus-2``, ``Stratus 2``) are refused: the docs say to send API values only.
    """
    if not name:
        return None
    return MODELS.get(name.lower())


def canonical_constellation(name: str) -> str | None:
    """The constellation's API value, ignoring case only (``Sentinel-2`` and ``sentinel 2`` are refused)."""
    known = {c.lower(): c for c in CONSTELLATIONS}
    return known.get(name.lower())


def model_names() -> str:
    return ", ".join(m.name for m in MODELS.values())


def unknown_model(name: str) -> str:
    return f"Unknown model '{name}'. Valid values: {model_names()} (API values, not display names)."


def unknown_constellation(name: str) -> str:
    return f"Unknown satellite constellation '{name}'. Valid values: {', '.join(CONSTELLATIONS)}."


def tiered_cost(quantity_km2_months: float, rates: tuple[float, ...], factor: float, already_spent: float) -> float:
    """Cost of ``quantity`` km^2-months at the model's tier rates given this month's spend so far."""
    remaining = quantity_km2_months
    spent = already_spent
    cost = 0.0
    lo = 0.0
    for rate, hi in zip(rates, SPEND_TIER_BOUNDS, strict=False):
        if remaining <= 0:
            break
        if spent >= hi:
            lo = hi
            continue
        price = rate * factor
        capacity_eur = hi - max(lo, spent)
        q = min(remaining, capacity_eur / price) if price > 0 else remaining
        cost += q * price
        spent += q * price
        remaining -= q
        lo = hi
    return cost


def order_month_cost(
    model: TaskingModel,
    constellations: list[str],
    mode_factor: float,
    area_km2: float,
    months: int,
    already_spent: float,
) -> float:
    """EUR for ``months`` months of coverage of ``area_km2``: tiered model rate plus optional add-ons."""
    qty = area_km2 * months
    cost = tiered_cost(qty, model.tier_rates, mode_factor, already_spent)
    addons = sum(ADDON_EUR_PER_KM2.get(c, 0.0) for c in constellations if c in model.optional)
    return cost + addons * qty


def storage_cost(area_km2: float, storage_months: int, months: int) -> float:
    return area_km2 * max(0, storage_months - 1) * STORAGE_EUR_PER_KM2_MONTH * months


class BandError(ValueError):
    pass


def parse_bandnames(spec: str | None, model: TaskingModel | None) -> list[str]:
    """``all``, ``rgb``, a comma list and ``[B8_B4]`` normalised-difference indices (mixable)."""
    available = list(model.bands) if model else STRATUS_BANDS
    text = (spec or "all").strip()
    if not text:
        text = "all"
    out: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        low = item.lower()
        if low == "all":
            out.extend(available)
        elif low == "rgb":
            out.extend(RGB)
        elif low.startswith("[") and low.endswith("]"):
            parts = item[1:-1].split("_")
            if len(parts) != 2:
                raise BandError(f"index {item!r} must look like [B8_B4]")
            names = [_band(p, available) for p in parts]
            out.append(f"[{names[0]}_{names[1]}]")
        elif item:
            out.append(_band(item, available))
    if not out:
        raise BandError("no bands requested")
    return out


def _band(name: str, available: list[str]) -> str:
    for b in available:
        if b.lower() == name.strip().lower():
            return b
    raise BandError(f"unknown band {name!r}; available: {', '.join(available)}")
