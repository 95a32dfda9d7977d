"""``python -m airflow_provider_clearsky.demo [--standalone]``: the one-command demo (``make demo`` / ``make airflow``).

The code lives in :mod:`airflow_provider_clearsky.emulator.demo`; nothing imports this module.
"""

from __future__ import annotations

from airflow_provider_clearsky.emulator.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
