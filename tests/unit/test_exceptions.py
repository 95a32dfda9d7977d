"""The one error policy: every decider reads ``ERROR_POLICIES``, and ``docs/sensors.md`` shows that table.

When the table changes, paste :func:`render_table`'s output into the docs
(``python -c "from tests.unit.test_exceptions import render_table; print(render_table())"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_clearsky import exceptions
from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import (
    ERROR_POLICIES,
    AmbiguousOrderError,
    AuthenticationError,
    BadRequestError,
    ClearSkyApiError,
    ClearSkyError,
    ErrorPolicy,
    InsufficientCreditsError,
    InvalidRequestError,
    LimitExceededError,
    NoImageryError,
    NotCoveredByOrderError,
    NotFoundError,
    OrderOutcomeUnknownError,
    RateLimitedError,
    RetryableTaskError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationFailedError,
    error_class_for,
    error_policy,
)
from airflow_provider_clearsky.operators import download, orders
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor
from airflow_provider_clearsky.triggers._polling import is_fatal, is_transient

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sensors.md"
START = "<!-- error-policy-table: generated from ERROR_POLICIES, checked by tests/unit/test_exceptions.py -->"
END = "<!-- /error-policy-table -->"
WORDS = {ErrorPolicy.RETRY: "task retry", ErrorPolicy.WAIT: "waits (not yet)", ErrorPolicy.FAIL: "fails, no retry"}

RETRY, WAIT, FAIL = ErrorPolicy.RETRY, ErrorPolicy.WAIT, ErrorPolicy.FAIL

#: One error of every kind, and what it must do (in a task step, in a wait).
KINDS: list[tuple[BaseException, ErrorPolicy, ErrorPolicy]] = [
    (RateLimitedError("too many", status_code=429), RETRY, WAIT),
    (error_class_for(400, 1003)("busy", status_code=400, error_code=1003), RETRY, WAIT),
    (error_class_for(408, None)("request timeout", status_code=408), RETRY, WAIT),  # a proxy's, say
    (error_class_for(425, None)("too early", status_code=425), RETRY, WAIT),
    (error_class_for(409, None)("conflict", status_code=409), FAIL, FAIL),
    (ServerError("down", status_code=503), RETRY, WAIT),
    (TransportError("reset", request_sent=True), RETRY, WAIT),
    (TransportError("refused", request_sent=False), RETRY, WAIT),
    (UnexpectedResponseError("a sign-in page", status_code=200), RETRY, WAIT),
    (OrderOutcomeUnknownError("sent, unanswered"), RETRY, RETRY),
    (RetryableTaskError("cut short"), RETRY, RETRY),
    (InvalidRequestError("bad wkt"), FAIL, FAIL),
    (BadRequestError("bad", status_code=400), FAIL, FAIL),
    (ValidationFailedError("invalid", status_code=400, error_code=992), FAIL, FAIL),
    (InsufficientCreditsError("no credits", status_code=400, error_code=994), FAIL, FAIL),
    (NoImageryError("no imagery", status_code=400, error_code=1002), FAIL, FAIL),
    (LimitExceededError("too big", status_code=400, error_code=1004), FAIL, FAIL),
    (NotCoveredByOrderError("not ordered", status_code=400, error_code=1006), FAIL, FAIL),
    (AuthenticationError("wrong key", status_code=401), FAIL, FAIL),
    (AuthenticationError("forbidden", status_code=403), FAIL, FAIL),
    (NotFoundError("no such order", status_code=404), FAIL, FAIL),
    (AmbiguousOrderError("two candidates"), FAIL, FAIL),
    (ClearSkyApiError("other", status_code=418), FAIL, FAIL),
    (ClearSkyError("other"), FAIL, FAIL),
    (KeyError("a bug"), RETRY, RETRY),
]
IDS = [f"{type(error).__name__}-{getattr(error, 'status_code', '')}" for error, _, _ in KINDS]
CLEARSKY_KINDS = [(e, t, w) for e, t, w in KINDS if isinstance(e, ClearSkyError)]
CLEARSKY_IDS = [i for i, (e, _, _) in zip(IDS, KINDS, strict=True) if isinstance(e, ClearSkyError)]


def render_table() -> str:
    """The docs' table of ``ERROR_POLICIES``, one row per entry, in the table's order."""
    lines = [
        "| Error (`airflow_provider_clearsky.exceptions`) | When | In an operator | In a sensor or trigger |",
        "| --- | --- | --- | --- |",
    ]
    for error_class, handling in ERROR_POLICIES.items():
        name = f"`{error_class.__name__}`"
        lines.append(f"| {name} | {handling.meaning} | {WORDS[handling.task]} | {WORDS[handling.wait]} |")
    return "\n".join(lines)


def test_the_docs_show_the_table() -> None:
    text = DOCS.read_text()
    assert START in text and END in text, f"{DOCS} lost its error-policy table markers"
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == render_table(), "docs/sensors.md's error table differs from ERROR_POLICIES: paste render_table()"


def test_every_exception_class_of_the_provider_is_a_kind_here() -> None:
    classes = {value for value in vars(exceptions).values() if isinstance(value, type) and issubclass(value, Exception)}
    assert classes <= {type(error) for error, _, _ in KINDS}


@pytest.mark.parametrize(("error", "task", "wait"), KINDS, ids=IDS)
def test_the_table_says(error: BaseException, task: ErrorPolicy, wait: ErrorPolicy) -> None:
    assert (error_policy(error), error_policy(error, waiting=True)) == (task, wait)
    assert error_policy(error) is not WAIT  # a task step never "waits": only sensors and triggers do


@pytest.mark.parametrize(("error", "task", "wait"), CLEARSKY_KINDS, ids=CLEARSKY_IDS)
def test_the_operators_follow_the_table(error: ClearSkyError, task: ErrorPolicy, wait: ErrorPolicy) -> None:
    assert isinstance(orders._fail_fast(error), AirflowFailException) == (task is FAIL)
    raised = download._api_failure(error, "downloading")
    assert isinstance(raised, AirflowFailException if task is FAIL else RetryableTaskError)


@pytest.mark.parametrize(("error", "task", "wait"), CLEARSKY_KINDS, ids=CLEARSKY_IDS)
def test_the_sensors_and_triggers_follow_the_table(
    error: ClearSkyError, task: ErrorPolicy, wait: ErrorPolicy, clearsky_connection: str
) -> None:
    assert (is_transient(error), is_fatal(error)) == (wait is WAIT, wait is FAIL)
    sensor = ClearSkyOrderStatusSensor(task_id="wait", order_guid="3f2504e0-4f89-41d3-9a0c-0305e82c3301")

    def fails() -> None:
        raise error

    if wait is WAIT:
        assert sensor.call_api("ClearSKY order", fails) is None
        return
    with pytest.raises(
        AirflowFailException if wait is FAIL else RetryableTaskError, match=re.escape(f"ClearSKY order: {error}")
    ):
        sensor.call_api("ClearSKY order", fails)
