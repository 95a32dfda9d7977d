"""The README's Python snippets run: the DAG example builds, the hook example's models validate."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_dag_snippet_builds_a_dag():
    [source] = [block for block in _python_blocks() if "with DAG(" in block]
    namespace: dict = {}
    exec(compile(source, "README.md", "exec"), namespace)
    from airflow.sdk import DAG

    [dag] = [value for value in namespace.values() if isinstance(value, DAG)]
    assert set(dag.task_ids) == {"create_order", "wait_for_order", "wait_for_images", "download"}


def test_readme_hook_snippet_models_validate():
    [source] = [block for block in _python_blocks() if "ClearSkyHook(" in block]
    head = source.split("estimate = hook.")[0]  # everything before the first request
    namespace: dict = {}
    exec(compile(head, "README.md", "exec"), namespace)
    assert namespace["order"].to_payload()["Wkt"].startswith("GEOMETRYCOLLECTION")
