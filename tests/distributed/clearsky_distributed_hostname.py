"""``[core] hostname_callable`` of the distributed test: each Airflow process gets its own loopback address
(127.0.0.11 for worker 1, 127.0.0.21 for triggerer 1...), so task instances and triggerer jobs say in Airflow's
own records which worker or triggerer ran them, and the name still resolves (to loopback)."""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ.get("CLEARSKY_DISTRIBUTED_HOSTNAME", "127.0.0.1")
