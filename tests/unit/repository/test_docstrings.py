"""Every public class, function and method of the hook, operators, sensors and triggers has a docstring, and the
docs sections that docstrings link to exist.

ruff's pydocstyle rules (D1xx) check public modules only; the helpers these components are built from live in
private modules (``hooks/_api.py``, ``operators/_storage.py``, ``triggers/_polling.py``, ...), so this walk covers
every module of the four packages. "Public" is a name without a leading ``_``, defined at module level or in a
class body (a method of a private class counts too); functions nested in functions are local and skipped.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "airflow_provider_clearsky"
DOCUMENTED_PACKAGES = ("hooks", "operators", "sensors", "triggers")
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def undocumented(source: str) -> list[str]:
    """Return ``line qualname`` of every public definition of ``source`` without a docstring."""
    missing: list[str] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, Definition):
                continue
            name = f"{prefix}{node.name}"
            if not node.name.startswith("_") and ast.get_docstring(node) is None:
                missing.append(f"{node.lineno} {name}")
            if isinstance(node, ast.ClassDef):
                walk(node.body, f"{name}.")

    walk(ast.parse(source).body, "")
    return missing


def modules() -> list[Path]:
    return sorted(path for package in DOCUMENTED_PACKAGES for path in (PACKAGE / package).rglob("*.py"))


def test_the_walk_finds_what_lacks_a_docstring() -> None:
    source = '''
class Public:
    """Documented."""

    def bare(self): ...

    @property
    def documented(self):
        """The value."""

    def _private(self): ...

    class Inner:
        async def bare(self): ...


class _Private:
    def bare(self): ...


def bare_function():
    def local(): ...
'''
    assert undocumented(source) == [
        "5 Public.bare",
        "13 Public.Inner",
        "14 Public.Inner.bare",
        "18 _Private.bare",
        "21 bare_function",
    ]


def test_every_module_of_the_documented_packages_is_walked() -> None:
    names = {path.relative_to(PACKAGE).as_posix() for path in modules()}
    assert {"hooks/_api.py", "operators/_storage_sinks.py", "sensors/_base.py", "triggers/_polling.py"} <= names


def test_every_public_definition_has_a_docstring() -> None:
    missing = [f"{path.relative_to(ROOT)}:{entry}" for path in modules() for entry in undocumented(path.read_text())]
    assert not missing, "public definitions without a docstring (one imperative line, more only for the why):\n" + (
        "\n".join(missing)
    )


# ------------------------------------------------------------------------------------ links into docs/

DOCS_LINK = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")


def github_anchors(markdown: str) -> set[str]:
    """Return the anchors GitHub gives the headings of ``markdown`` (lower case, punctuation dropped, ``-``)."""
    anchors: set[str] = set()
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)  # a ``# comment`` in a code block is no heading
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, number = slug, 0
        while anchor in anchors:
            number += 1
            anchor = f"{slug}-{number}"
        anchors.add(anchor)
    return anchors


def test_github_anchors() -> None:
    headings = "# Sensors\n## Failure behaviour (both sensors)\n### A window (`date_from` to `date_to`)\n## Sidecar `<file>.json`\n"
    assert github_anchors(headings + "## Sensors\n") == {
        "sensors",
        "failure-behaviour-both-sensors",
        "a-window-date_from-to-date_to",
        "sidecar-filejson",
        "sensors-1",
    }


def test_links_into_docs_name_existing_sections() -> None:
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for page, anchor in DOCS_LINK.findall(path.read_text()):
            doc = ROOT / "docs" / page
            if not doc.is_file() or anchor not in github_anchors(doc.read_text()):
                broken.append(f"{path.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert not broken, "links to docs sections that do not exist:\n" + "\n".join(broken)
