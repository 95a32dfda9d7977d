"""Old argument spellings, accepted for one release with a ``DeprecationWarning`` naming the new one."""

from __future__ import annotations

import warnings
from typing import Any


def renamed_argument(owner: str, old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """``new_value``, or ``old_value`` (with a warning) when the DAG still uses the old name."""
    if old_value is None:
        return new_value
    warnings.warn(
        f"{owner}: the argument {old}= is deprecated and will be removed in the next release; use {new}= instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


__all__ = ["renamed_argument"]
