"""Read templated arguments: what a Jinja template renders as text, back to the number, flag, list or date meant.

Every operator and sensor validates its arguments in ``execute``, after rendering, where a number may arrive
as ``"7"``, a list as ``"['a', 'b']"`` and an unset parameter as ``"None"``. These functions read such text the
one way the whole provider reads it; anything else is left to the models, which name what is wrong.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

#: Text a template renders for "nothing".
BLANK_TEXTS = ("", "none", "null")


def is_blank_text(value: Any) -> bool:
    """Tell whether ``value`` is text a template renders for "nothing": ``""``, ``"None"``, ``"null"``."""
    return isinstance(value, str) and value.strip().lower() in BLANK_TEXTS


def as_int(name: str, value: Any) -> Any:
    """Return a templated whole number given as text ("7") as an int; leave anything else to the model."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def as_bool(name: str, value: Any, *, strict: bool = False) -> bool:
    """Return True or False, also from rendered text; ``strict`` refuses ``""``/``"None"`` instead of reading false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    falsy = ("false", "0", "no", "off") if strict else ("false", "0", "no", "off", "", "none")
    if isinstance(value, str) and value.strip().lower() in falsy:
        return False
    if isinstance(value, int):
        return bool(value)
    raise ValueError(f"{name} must be true or false, got {value!r}")


def as_cost(name: str, value: Any) -> float | None:
    """Return a budget in the order's currency.

    Only a literal Python ``None`` means "no limit": a template that renders to ``"None"`` or ``""`` (an
    unset param) is refused, never read as "no budget".
    """
    if value is None:
        return None
    hint = "(or a literal None, not a text, for no limit)"
    if is_blank_text(value):
        raise ValueError(
            f"{name} rendered to {value!r}, which is not an amount; give a number such as 250.0 {hint}: an unset "
            "template parameter never removes the budget"
        )
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an amount such as 250.0 {hint}, got {value!r}")
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an amount such as 250.0 {hint}, got {value!r}") from None
    if math.isnan(amount) or amount < 0 or math.isinf(amount):
        raise ValueError(f"{name} must be zero or more (and finite), got {value!r}")
    return amount


def read_list_text(text: str) -> Any:
    """Return the value of a list rendered as text: JSON (``'["a"]'``) or Python (``"['a', 'b']"``).

    Raises ``ValueError`` or ``SyntaxError`` when it is neither.
    """
    import json

    try:
        return json.loads(text)
    except ValueError:
        import ast

        return ast.literal_eval(text)


def as_list(value: Any) -> list[Any] | None:
    """Return a templated list that may arrive rendered as text (JSON list, comma-separated, or one item)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return list(read_list_text(text))
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, (Sequence, set, frozenset, tuple)):
        return list(value)
    return [value]


def as_guid_list(name: str, value: Any) -> Any:
    """GUID lists may arrive rendered as text ("['a', 'b']", '["a"]' or "a, b"): turn those into lists."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if is_blank_text(text):
        return None
    if text.startswith("["):
        try:
            return read_list_text(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{name} is not a readable list of GUIDs: {text[:80]!r}") from None
    return [part.strip() for part in text.replace(";", ",").replace("\n", ",").split(",") if part.strip()]


def parse_day(value: Any, argument: str) -> dt.date:
    """Return the date of a date, datetime, or ISO text; a time with an offset gives its UTC date.

    ValueError naming ``argument`` if it is not one.
    """
    from airflow_provider_clearsky.models.orders import utc_date

    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        day = utc_date(value if isinstance(value, dt.datetime) else str(value).strip())
        return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(
            f"{argument}: {value!r} is not a date; use YYYY-MM-DD (or a date-time with its offset)"
        ) from None


def utc(moment: dt.datetime) -> dt.datetime:
    """Return ``moment`` in UTC; a moment without an offset is taken as UTC (the API's time zone)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
