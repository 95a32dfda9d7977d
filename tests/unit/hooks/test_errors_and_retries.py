"""Error mapping and retry policy of the hook, with exact waits (a scripted transport records them)."""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from airflow_provider_clearsky import exceptions as exc
from airflow_provider_clearsky.models import OrderRequest
from tests.conftest import FAKE_API_KEY
from tests.support.hook_support import envelope, scripted_hook

POLYGON = "POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))"
ORDER = {"TaskOrderGuid": "0194d140-faa6-7b7a-a382-2d40abff0f9a", "OrderingProcessStatus": "Review"}


@pytest.fixture(autouse=True)
def _connection(clearsky_connection: str) -> None:
    pass


def order() -> OrderRequest:
    return OrderRequest(
        wkt=POLYGON,
        satellite_constellations=["Sentinel1", "Sentinel2", "Landsat89"],
        model="Stratus2",
        image_frequency=7,
        date_from="2025-06-01",
    )


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (400, 992, exc.ValidationFailedError),
        (400, 993, exc.ValidationFailedError),
        (400, 994, exc.InsufficientCreditsError),
        (400, 1002, exc.NoImageryError),
        (400, 1004, exc.LimitExceededError),
        (400, 1005, exc.LimitExceededError),
        (400, 1006, exc.NotCoveredByOrderError),
        (400, 1099, exc.BadRequestError),
        (401, None, exc.AuthenticationError),
        (403, None, exc.AuthenticationError),
        (404, None, exc.NotFoundError),
    ],
)
def test_each_error_code_maps_to_its_exception_and_is_not_retried(status, code, error_type):
    answer = (
        envelope({"Property": ["Property must be set"]}, status=status, code=code, message="nope")
        if code
        else httpx.Response(status)
    )
    hook, script, waits = scripted_hook(answer)
    with pytest.raises(error_type) as raised:
        hook.estimate_order(order())
    assert len(script.requests) == 1 and waits.seconds == []
    error = raised.value
    assert (error.status_code, error.error_code) == (status, code)
    if code:
        assert error.field_errors == {"Property": ["Property must be set"]}
        assert "Property must be set" in str(error) and "POST /api/tasking/orders/estimate" in str(error)


def test_error_inside_http_200_is_an_error():
    hook, _, _ = scripted_hook(envelope(None, status=200, code=1006, message="not covered"))
    with pytest.raises(exc.NotCoveredByOrderError, match="not covered"):
        hook.get_account_info()


def test_problem_details_body_is_a_validation_error_with_fields():
    hook, _, _ = scripted_hook(
        httpx.Response(
            400,
            json={
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": {"$.ImageFrequency": ["The JSON value could not be converted."]},
                "traceId": "00-1",
            },
        )
    )
    with pytest.raises(exc.ValidationFailedError) as raised:
        hook.estimate_order(order())
    assert raised.value.field_errors == {"$.ImageFrequency": ["The JSON value could not be converted."]}


def test_429_without_retry_after_backs_off_exponentially_with_jitter():
    hook, script, waits = scripted_hook(
        httpx.Response(429), httpx.Response(429), httpx.Response(429), envelope({"TaskingModels": []})
    )
    assert hook.get_tasking_models() == []
    assert len(script.requests) == 4
    # initial 1 s doubling (1, 2, 4), each plus up to 1 s of jitter
    for wait, base in zip(waits.seconds, (1, 2, 4), strict=True):
        assert base <= wait <= base + 1


def test_429_with_retry_after_seconds_waits_that_long():
    hook, _, waits = scripted_hook(httpx.Response(429, headers={"Retry-After": "7"}), envelope({}))
    hook.get_account_info()
    assert waits.seconds == [7.0]


def test_429_with_retry_after_http_date_and_a_cap():
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    hook, _, waits = scripted_hook(
        httpx.Response(429, headers={"Retry-After": later}),
        httpx.Response(429, headers={"Retry-After": "100000"}),
        envelope({}),
    )
    hook.get_account_info()
    assert 25 <= waits.seconds[0] <= 31
    assert waits.seconds[1] == hook.retry_policy.retry_after_cap


def test_code_1003_is_rate_limiting_and_retried():
    hook, script, _ = scripted_hook(envelope(None, status=400, code=1003, message="max concurrent"), envelope({}))
    hook.get_account_info()
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_until_success(status):
    hook, script, waits = scripted_hook(httpx.Response(status), envelope({"TaskOrders": []}))
    assert hook.list_orders() == []
    assert len(script.requests) == 2 and len(waits.seconds) == 1


def test_retries_stop_at_the_limit_with_the_last_error():
    hook, script, _ = scripted_hook(httpx.Response(503), max_attempts=3)
    with pytest.raises(exc.ServerError):
        hook.list_orders()
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
    ],
    ids=["dropped", "read-timeout", "connect-error"],
)
def test_transport_failures_are_retried_for_safe_calls(failure):
    hook, script, _ = scripted_hook(failure, envelope({"TaskOrders": []}))
    hook.list_orders()
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected"),
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(503),
        httpx.Response(504),
    ],
    ids=["read-timeout", "dropped", "500", "502", "503", "504"],
)
def test_create_is_never_resent_when_its_outcome_is_unknown(failure):
    hook, script, waits = scripted_hook(failure, envelope(ORDER))
    with pytest.raises(exc.OrderOutcomeUnknownError, match="look it up"):
        hook.create_order(order())
    assert len(script.requests) == 1 and waits.seconds == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.Response(429),
        envelope(None, status=400, code=1003, message="busy"),
    ],
    ids=["never-connected", "429", "1003"],
)
def test_create_is_retried_when_the_server_surely_did_nothing(failure):
    hook, script, _ = scripted_hook(failure, envelope(ORDER))
    assert hook.create_order(order()).guid == ORDER["TaskOrderGuid"]
    assert len(script.requests) == 2


def test_create_validation_error_is_not_retried():
    hook, script, _ = scripted_hook(envelope(None, status=400, code=992, message="bad"))
    with pytest.raises(exc.ValidationFailedError):
        hook.create_order(order())
    assert len(script.requests) == 1


async def test_async_path_retries_and_guards_create_the_same_way():
    hook, script, waits = scripted_hook(httpx.Response(429, headers={"Retry-After": "2"}), envelope({"TaskOrders": []}))
    assert await hook.alist_orders() == []
    assert waits.seconds == [2.0] and len(script.requests) == 2
    await hook.aclose()

    hook, script, _ = scripted_hook(httpx.ReadTimeout("timed out"), envelope(ORDER))
    with pytest.raises(exc.OrderOutcomeUnknownError):
        await hook.acreate_order(order())
    assert len(script.requests) == 1
    await hook.aclose()


def test_download_error_answer_is_raised_not_saved():
    hook, _, _ = scripted_hook(envelope(None, status=400, code=994, message="Insufficient processing units"))
    from airflow_provider_clearsky.models import ImageryRequest

    with (
        pytest.raises(exc.InsufficientCreditsError),
        hook.stream_composite(ImageryRequest(wkt=POLYGON, date="2025-06-08")),
    ):
        pytest.fail("a failed download must not yield a body")


def test_no_api_key_in_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    hook, _, _ = scripted_hook(
        httpx.Response(429), httpx.Response(503), httpx.ReadTimeout("timed out"), httpx.Response(401), max_attempts=4
    )
    with pytest.raises(exc.AuthenticationError) as raised:
        hook.get_tasking_models()
    texts = [str(raised.value), repr(raised.value), caplog.text]
    texts += [str(cause) for cause in (raised.value.__cause__, raised.value.__context__) if cause]
    assert "retry" in caplog.text  # the retries were logged …
    assert all(FAKE_API_KEY not in text for text in texts)  # … without the key


@pytest.mark.parametrize(
    "failure",
    [httpx.RemoteProtocolError("Server disconnected"), httpx.ReadTimeout("timed out")],
    ids=["dropped", "read-timeout"],
)
def test_paid_download_is_not_resent_once_the_server_may_have_charged(failure):
    from airflow_provider_clearsky.models import ImageryRequest

    hook, script, _ = scripted_hook(
        failure, httpx.Response(200, content=b"tif", headers={"content-type": "image/tiff"})
    )
    with pytest.raises(exc.TransportError), hook.stream_composite(ImageryRequest(wkt=POLYGON, date="2025-06-08")):
        pass
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("[Errno 111] Connection refused"), httpx.Response(429), httpx.Response(503)],
    ids=["never-connected", "429", "503"],
)
def test_paid_download_is_retried_when_nothing_was_delivered(failure):
    from airflow_provider_clearsky.models import ImageryRequest

    hook, script, _ = scripted_hook(
        failure, httpx.Response(200, content=b"tif", headers={"content-type": "image/tiff"})
    )
    with hook.stream_composite(ImageryRequest(wkt=POLYGON, date="2025-06-08")) as download:
        assert b"".join(download.iter_bytes()) == b"tif"
    assert len(script.requests) == 2
