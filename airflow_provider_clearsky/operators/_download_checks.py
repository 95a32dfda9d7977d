"""Checks of a download before it is paid: its arguments, then the account's limits and the estimate.

The arguments are checked before any request; the limits and the estimate before the paid request. Each
failure names the argument and the fix, and nothing is paid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.operators._download_target import DownloadTarget, geometry_of
from airflow_provider_clearsky.utils.area import geojson_area_km2

if TYPE_CHECKING:
    from airflow_provider_clearsky.models import AccountInfo, CompositeEstimate

VERIFY_MODES = ("checksum", "size")


# ----------------------------------------------------------------------------- arguments, before any request


def check_transfer_arguments(*, verify_existing: Any, chunk_size: Any, destination: Any, upload_url: Any) -> None:
    """Check how the file is checked, chunked and where it goes (a folder, or an upload URL)."""
    if verify_existing not in VERIFY_MODES:
        raise AirflowFailException(
            f"verify_existing: must be one of {', '.join(VERIFY_MODES)}, not {verify_existing!r}"
        )
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 4096):
        raise AirflowFailException(
            f"chunk_size: must be None (as received, fastest) or at least 4096 bytes, not {chunk_size!r}"
        )
    if upload_url and destination:
        raise AirflowFailException(
            "destination and upload_url: give one of them; with upload_url the API writes the file itself"
        )
    if not upload_url and not destination:
        raise AirflowFailException(
            "destination: required (a local folder, file://, memory:// or any fsspec URL, e.g. "
            "'s3://aws_default@bucket/imagery/{{ ds }}'), unless upload_url is given"
        )
    if upload_url and not str(upload_url).lower().startswith(("https://", "http://")):
        raise AirflowFailException("upload_url: must be an http(s) URL (a signed URL the API can PUT to)")
    if destination is not None and not upload_url:
        check_destination_text(destination)


def check_destination_text(destination: Any) -> None:
    """Refuse, before paying, a destination a template rendered from nothing.

    ``"None"``, ``""`` or a ``None`` folder would be paid for and written to the worker's current directory.
    """
    if not isinstance(destination, (str, os.PathLike)):
        raise AirflowFailException(
            f"destination: must be a folder path or URL as text, not {type(destination).__name__}"
        )
    text = os.fspath(destination).strip()
    parts = [part.strip().lower() for part in text.split("://", 1)[-1].split("/")]
    if not text or any(part in ("none", "null") for part in parts) or "{{" in text or "{%" in text:
        raise AirflowFailException(
            f"destination: {text!r} looks like a template that rendered nothing (a 'None' or empty part, or an "
            "unrendered template); give the folder to write to, e.g. '/data/imagery/{{ ds }}' or "
            "'s3://aws_default@bucket/imagery'. Nothing was downloaded or paid."
        )


def checked_order_guid(value: Any) -> str | None:
    """Return ``order_guid`` checked (None stays None)."""
    if value is None:
        return None
    from airflow_provider_clearsky.models.orders import order_guid

    try:
        return order_guid(value)
    except ValueError as error:
        raise AirflowFailException(f"{error}; or leave order_guid unset (a literal None)") from None


def order_guid_of_details(details: Any, order_guid: str | None) -> str:
    """Return the GUID of ``order_details`` (the order record the run has), checked against ``order_guid``."""
    from airflow_provider_clearsky.models.orders import order_guid as checked

    guid = details.get("TaskOrderGuid") if isinstance(details, Mapping) else None
    if not isinstance(guid, str):
        raise AirflowFailException(
            "order_details: must be the order record ClearSkyOrderStatusSensor returns (a mapping with "
            f"TaskOrderGuid, e.g. wait_for_order.output), not {type(details).__name__}; or leave it unset"
        )
    try:
        guid = checked(guid, "order_details' TaskOrderGuid")
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
    if order_guid is not None and order_guid.lower() != guid.lower():
        raise AirflowFailException(
            f"order_details: it is the record of order {guid} but order_guid is {order_guid}; pass the "
            "same order's record, or leave order_details unset"
        )
    return order_guid or guid


def max_units(value: Any) -> float | None:
    """Return ``max_processing_units`` as a number (None: no ceiling)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or number < 0:
        raise AirflowFailException(f"max_processing_units: must be a number >= 0, not {value!r}")
    return number


# ----------------------------------------------------------------------------- the account, before paying


def check_bands(targets: Sequence[DownloadTarget], account: AccountInfo) -> None:
    """Refuse more bands than ``MaxTotalBands`` before any download request."""
    limit = account.max_total_bands
    for target in targets:
        count = target.request.band_count
        if limit is not None and count > limit:
            raise AirflowFailException(
                f"bands: {target.request.bandnames!r} asks for {count} bands but the account allows "
                f"MaxTotalBands={limit} per request; request fewer bands (e.g. split into several downloads)"
            )


def check_area(targets: Sequence[DownloadTarget], account: AccountInfo) -> None:
    """Refuse an area above ``MaxCompositeAreaKm2`` (computed locally) before any download request."""
    limit = account.max_composite_area_km2
    if limit is None:
        return
    for target in targets:
        geometry = geometry_of(target)
        area = geojson_area_km2(geometry) if geometry else 0.0
        if area > limit:
            raise AirflowFailException(
                f"wkt/geojson: the area is about {area:,.1f} km² but the account allows "
                f"MaxCompositeAreaKm2={limit:,.0f} per composite; split the area into smaller parts"
            )


def check_estimate(estimate: CompositeEstimate, ceiling: float | None, account: AccountInfo) -> None:
    """Refuse a download whose estimate is above ``max_processing_units``, the area limit or the balance."""
    units, area = estimate.credit_estimate, estimate.area_estimate_km2
    if ceiling is not None:
        if units is None:
            raise AirflowFailException(
                "max_processing_units is set but the estimate returned no CreditEstimate; not downloading"
            )
        if units > ceiling:
            raise AirflowFailException(
                f"max_processing_units: the download would cost {units:g} processing units, above the "
                f"limit of {ceiling:g}; raise max_processing_units or reduce the area/resolution. Nothing was "
                "downloaded or paid."
            )
    limit = account.max_composite_area_km2
    if area is not None and limit is not None and area > limit:
        raise AirflowFailException(
            f"wkt/geojson: the estimate puts the area at {area:,.1f} km², above MaxCompositeAreaKm2={limit:,.0f}; "
            "split the area into smaller parts"
        )
    balance = account.credit_amount
    if units is not None and balance is not None and units > balance + (account.credit_limit or 0):
        raise AirflowFailException(
            f"the download needs {units:g} processing units but the account has {balance:g} left; top up "
            "processing units or reduce the area/resolution"
        )
