"""A tile search feeds a tile-mode order through ``search.output["tile_guids"]`` in a real DAG run."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]


def test_search_output_keys_feed_downstream_tasks(write_dag, clearsky_emulator, monkeypatch):
    clearsky_emulator.set_airflow_connection(monkeypatch)
    clearsky_emulator.control.set_time(dt.datetime(2025, 6, 2, tzinfo=dt.UTC))
    dag = write_dag(
        "clearsky_tiles_feed",
        """
        import datetime as dt
        from airflow.sdk import DAG, task
        from airflow_provider_clearsky.operators.tiles import ClearSkyOptimizeTilesOperator

        with DAG("clearsky_tiles_feed", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
            cover = ClearSkyOptimizeTilesOperator(
                task_id="cover", wkt="POLYGON ((9.50 55.70, 9.53 55.70, 9.53 55.72, 9.50 55.72, 9.50 55.70))"
            )

            @task
            def count(minitiles, whole):
                assert minitiles == whole["minitile_guids"]
                return len(minitiles)

            count(cover.output["minitile_guids"], cover.output)
        """,
    )
    run = dag.test()
    assert run.state == "success"
