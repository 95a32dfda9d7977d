"""Calendar arithmetic of the emulated service: months, image dates, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def month_end(d: date) -> date:
    return add_months(d, 1) - timedelta(days=1)


def months_between(a: date, b: date) -> int:
    """Number of calendar months from a's month to b's month inclusive."""
    return (b.year - a.year) * 12 + b.month - a.month + 1


def midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def image_dates(reference: date, frequency: int, start: date, end: date) -> list[date]:
    """Dates d in [start, end] with ``(d - reference).days % frequency == 0``."""
    if end < start:
        return []
    offset = (start - reference).days % frequency
    first = start + timedelta(days=(frequency - offset) % frequency)
    out = []
    d = first
    while d <= end:
        out.append(d)
        d += timedelta(days=frequency)
    return out


def iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
