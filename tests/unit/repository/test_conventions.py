"""The conventions Apache Airflow checks on every provider, as tests of this one.

Written here from what apache/airflow's ``scripts/ci/prek/`` checks enforce (``check_deferrable_default``,
``check_conn_id_templated``, ``validate_operators_init``, ``check_new_airflow_exception_usage``):

* every ``deferrable`` argument defaults to the literal ``conf.getboolean("operators", "default_deferrable",
  fallback=False)``, so ``[operators] default_deferrable`` switches the whole provider at once;
* every ``*conn_id`` argument of an operator or sensor is templated;
* ``__init__`` only stores templated arguments (``self.x = x``, or forwards them to the parent): they are
  still raw Jinja text there, so reading, validating or converting them belongs in ``execute``;
* nothing raises (or builds) a bare ``AirflowException``: the provider's exceptions or Airflow's specific
  ones say what happened and whether a retry helps.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_clearsky
from airflow_provider_clearsky._compat import BaseOperator

PACKAGE = Path(airflow_provider_clearsky.__file__).parent
DEFERRABLE_DEFAULT = "conf.getboolean('operators', 'default_deferrable', fallback=False)"


def _package_files() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def _operator_classes() -> list[type[Any]]:
    """Every operator and sensor class the package defines, private bases included."""
    found: dict[str, type[Any]] = {}
    for package in ("operators", "sensors"):
        module = importlib.import_module(f"airflow_provider_clearsky.{package}")
        for info in pkgutil.iter_modules(module.__path__):
            loaded = importlib.import_module(f"{module.__name__}.{info.name}")
            for value in vars(loaded).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseOperator)
                    and value.__module__.startswith("airflow_provider_clearsky.")
                ):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


OPERATORS = _operator_classes()
PUBLIC_OPERATORS = [cls for cls in OPERATORS if not cls.__name__.startswith("_")]


def _own_init(cls: type[Any]) -> ast.FunctionDef | None:
    """The AST of the ``__init__`` the class itself defines (None when it inherits one)."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return None
    lines, start = inspect.getsourcelines(init)
    tree = ast.increment_lineno(ast.parse(textwrap.dedent("".join(lines))), start - 1)
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def _parameters(init: ast.FunctionDef) -> set[str]:
    args = init.args
    return {arg.arg for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


def _package_mro(cls: type[Any]) -> Iterator[type[Any]]:
    """The class and its ancestors defined in this package, nearest first."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("airflow_provider_clearsky."):
            yield klass


# ---------------------------------------------------------------------------------------------- deferrable


def _deferrable_defaults(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line, default as source) of every ``deferrable`` argument of an ``__init__`` in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef) or node.name != "__init__":
            continue
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
        for argument, default in pairs:
            if argument.arg == "deferrable":
                yield argument.lineno, ast.unparse(default) if default is not None else None


def test_deferrable_defaults_to_airflows_setting_literally() -> None:
    files = [path for path in _package_files() if path.parent.name in ("operators", "sensors")]
    found = {
        f"{path.relative_to(PACKAGE)}:{line}": default for path in files for line, default in _deferrable_defaults(path)
    }
    assert found, "no deferrable argument found: the check would pass vacuously"
    wrong = {where: default for where, default in found.items() if default != DEFERRABLE_DEFAULT}
    assert not wrong, f"deferrable must default to {DEFERRABLE_DEFAULT}: {wrong}"


@pytest.mark.parametrize("setting", [True, False])
def test_deferrable_default_follows_the_setting(setting: bool, tmp_path: Path) -> None:
    """The default is read when the module is imported, as in Airflow's providers (conf is loaded by then)."""
    code = (
        "from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor as S\n"
        "print(S(task_id='t', order_guid='x').deferrable)"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": str(setting)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip().splitlines()[-1] == str(setting)


# ---------------------------------------------------------------------------------------------- conn ids


@pytest.mark.parametrize("cls", PUBLIC_OPERATORS, ids=lambda cls: cls.__name__)
def test_every_conn_id_argument_is_templated(cls: type[Any]) -> None:
    conn_ids = {
        name
        for klass in _package_mro(cls)
        if (init := _own_init(klass)) is not None
        for name in _parameters(init)
        if name.endswith("conn_id")
    }
    assert conn_ids, f"{cls.__name__} takes no connection id"
    missing = conn_ids - set(cls.template_fields)
    assert not missing, f"{cls.__name__}: {sorted(missing)} missing from template_fields"


# ---------------------------------------------------------------------------------------------- __init__


def _self_attribute(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _stores(init: ast.FunctionDef, field: str) -> bool:
    """``self.field = field`` (``field or default`` allowed) or ``super().__init__(field=field)``."""
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and any(_self_attribute(target) == field for target in node.targets):
            value = node.value.values[0] if isinstance(node.value, ast.BoolOp) else node.value
            return isinstance(value, ast.Name) and value.id == field
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__":
            for keyword in node.keywords:
                if keyword.arg == field:
                    return isinstance(keyword.value, ast.Name) and keyword.value.id == field
    return False


def _sanctioned_reads(init: ast.FunctionDef, fields: set[str]) -> set[int]:
    """Reads of templated arguments that do not use their value.

    Storing (``self.x = x``, ``self.x = x or default``, ``x = x or default``), forwarding to the parent
    (``super().__init__(x=x)``), and asking whether the argument was given at all (``x is None``, ``x is not
    None``, ``x is SENTINEL``): only ``__init__`` can see that, and rendering cannot change it.
    """
    sanctioned: set[int] = set()

    def mark(value: ast.expr | None, field: str) -> None:
        if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or):
            value = value.values[0]
        if isinstance(value, ast.Name) and value.id == field:
            sanctioned.add(id(value))

    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = _self_attribute(target) or (target.id if isinstance(target, ast.Name) else None)
                if name in fields:
                    mark(node.value, name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__":
            for keyword in node.keywords:
                if keyword.arg in fields:
                    mark(keyword.value, keyword.arg)
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Is, ast.IsNot))
            and (
                (isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None)
                or (isinstance(node.comparators[0], ast.Name) and node.comparators[0].id.isupper())
                or (isinstance(node.comparators[0], ast.Name) and node.comparators[0].id.startswith("_"))
            )
        ):
            sanctioned.add(id(node.left))
    return sanctioned


def _templated_by_users_of(cls: type[Any]) -> set[str]:
    """Template fields of every package class that runs this class's ``__init__`` (itself and subclasses)."""
    return {field for klass in OPERATORS if issubclass(klass, cls) for field in klass.template_fields}


INITS = [cls for cls in OPERATORS if "__init__" in cls.__dict__]


@pytest.mark.parametrize("cls", INITS, ids=lambda cls: cls.__name__)
def test_init_only_stores_templated_arguments(cls: type[Any]) -> None:
    init = _own_init(cls)
    assert init is not None
    fields = _templated_by_users_of(cls)
    sanctioned = _sanctioned_reads(init, fields)
    bound = _parameters(init) | {
        node.id for node in ast.walk(init) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    in_defaults = {
        id(node) for default in [*init.args.defaults, *init.args.kw_defaults] if default for node in ast.walk(default)
    }
    reads = []
    for node in ast.walk(init):
        if id(node) in sanctioned or id(node) in in_defaults or not isinstance(getattr(node, "ctx", None), ast.Load):
            continue
        if isinstance(node, ast.Name) and node.id in fields and node.id in bound:
            reads.append(f"line {node.lineno}: {node.id}")
        elif (attribute := _self_attribute(node)) in fields:
            reads.append(f"line {node.lineno}: self.{attribute}")
    assert not reads, (
        f"{cls.__name__}.__init__ uses templated arguments before they are rendered (move it to execute): {reads}"
    )


@pytest.mark.parametrize("cls", PUBLIC_OPERATORS, ids=lambda cls: cls.__name__)
def test_every_template_field_is_stored_under_its_own_name(cls: type[Any]) -> None:
    """The ``__init__`` that takes a templated argument stores it as ``self.<argument>``, unchanged."""
    problems = []
    for field in cls.template_fields:
        owner = next(
            (klass for klass in _package_mro(cls) if (init := _own_init(klass)) and field in _parameters(init)), None
        )
        if owner is None:
            problems.append(f"{field}: no __init__ of the class takes it")
            continue
        init = _own_init(owner)
        assert init is not None
        if not _stores(init, field):
            problems.append(f"{field}: {owner.__name__}.__init__ does not store it as self.{field} = {field}")
    assert not problems, f"{cls.__name__}: {problems}"


# ---------------------------------------------------------------------------------------------- exceptions


def _airflow_exception_uses(path: Path) -> Iterator[int]:
    for node in ast.walk(ast.parse(path.read_text())):
        target = node.exc if isinstance(node, ast.Raise) else node.func if isinstance(node, ast.Call) else None
        name = target.func if isinstance(target, ast.Call) else target
        spelled = name.id if isinstance(name, ast.Name) else name.attr if isinstance(name, ast.Attribute) else None
        if spelled == "AirflowException":
            yield node.lineno


def test_no_bare_airflow_exception_is_raised_or_built() -> None:
    found = sorted(
        {f"{path.relative_to(PACKAGE)}:{line}" for path in _package_files() for line in _airflow_exception_uses(path)}
    )
    assert not found, f"raise the provider's exceptions or Airflow's specific ones instead of AirflowException: {found}"


def test_the_checks_see_the_operators() -> None:
    names = {cls.__name__ for cls in PUBLIC_OPERATORS}
    assert {"ClearSkyCreateOrderOperator", "ClearSkyDownloadCompositeOperator", "ClearSkyOrderStatusSensor"} <= names
