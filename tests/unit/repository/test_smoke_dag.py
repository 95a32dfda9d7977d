def test_dag_runs(write_dag):
    dag = write_dag(
        "smoke",
        """
        import datetime as dt
        from airflow.sdk import DAG, task

        with DAG("smoke", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
            @task
            def hello():
                return 42
            hello()
        """,
    )
    run = dag.test()
    assert run.state == "success"
