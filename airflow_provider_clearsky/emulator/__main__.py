"""``python -m airflow_provider_clearsky.emulator``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
