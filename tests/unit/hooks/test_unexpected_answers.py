"""A 2xx answer that is not the API's envelope, or whose Data has the wrong shape, is an error, never data."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_clearsky import exceptions as exc
from airflow_provider_clearsky.models import ImageryRequest, OrderRequest
from tests.conftest import FAKE_API_KEY
from tests.support.hook_support import envelope, scripted_hook

POLYGON = "POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))"
ORDER = {"TaskOrderGuid": "0194d140-faa6-7b7a-a382-2d40abff0f9a", "OrderingProcessStatus": "Review"}


def sign_in_page() -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Type": "text/html; charset=utf-8"}, content=b"<html><body>Sign in</body></html>"
    )


def empty() -> httpx.Response:
    return httpx.Response(200)


def bare_json() -> httpx.Response:
    return httpx.Response(200, json={"TaskOrders": []})


def not_a_list() -> httpx.Response:
    return envelope({"Orders": []})


@pytest.fixture(autouse=True)
def _connection(clearsky_connection: str) -> None:
    pass


@pytest.mark.parametrize("answer", [sign_in_page, empty, bare_json, not_a_list], ids=["html", "empty", "bare", "shape"])
@pytest.mark.parametrize("method", ["list_orders", "get_tasking_models", "get_account_info"])
def test_an_answer_that_is_not_the_apis_is_an_error_after_retries(answer, method):
    if method == "get_account_info" and answer is not_a_list:
        answer = lambda: envelope(None)  # noqa: E731  Data missing where an object is due
    hook, script, waits = scripted_hook(lambda _request: answer(), max_attempts=3)
    with pytest.raises(exc.UnexpectedResponseError) as raised:
        getattr(hook, method)()
    assert raised.value.status_code == 200
    assert len(script.requests) >= 3 and len(waits.seconds) >= 2  # retried like a 5xx


def test_the_error_names_status_content_type_and_first_bytes_never_the_key():
    hook, _, _ = scripted_hook(sign_in_page(), max_attempts=1)
    with pytest.raises(exc.UnexpectedResponseError) as raised:
        hook.list_orders()
    text = str(raised.value)
    assert "HTTP 200" in text and "text/html" in text and "<html><body>Sign in" in text
    assert FAKE_API_KEY not in text


def test_a_json_body_of_the_wrong_shape_is_described_by_its_keys_not_its_values():
    echo = httpx.Response(200, json={"Key": FAKE_API_KEY, "Other": 1})
    hook, _, _ = scripted_hook(echo, max_attempts=1)
    with pytest.raises(exc.UnexpectedResponseError) as raised:
        hook.get_account_info()
    assert "Key" in str(raised.value) and FAKE_API_KEY not in str(raised.value)


def test_then_the_real_answer_is_used():
    hook, script, _ = scripted_hook(sign_in_page(), envelope({"TaskOrders": [ORDER]}))
    assert [o.guid for o in hook.list_orders()] == [ORDER["TaskOrderGuid"]]
    assert len(script.requests) == 2


@pytest.mark.parametrize("answer", [sign_in_page, empty, bare_json, lambda: envelope({"Nothing": 1})])
def test_a_create_answered_with_something_else_is_an_unknown_outcome_and_not_resent(answer):
    hook, script, _ = scripted_hook(answer(), envelope(ORDER))
    order = OrderRequest(
        wkt=POLYGON,
        satellite_constellations=["Sentinel1", "Sentinel2", "Landsat89"],
        model="Stratus2",
        image_frequency=7,
        reference_date="2025-06-01",
        date_from="2025-06-01",
    )
    with pytest.raises(exc.OrderOutcomeUnknownError):
        hook.create_order(order)
    assert len(script.requests) == 1


async def test_the_async_path_refuses_the_same_answers():
    hook, _, _ = scripted_hook(sign_in_page(), max_attempts=1)
    with pytest.raises(exc.UnexpectedResponseError):
        await hook.alist_orders()
    await hook.aclose()


def test_a_page_instead_of_a_file_is_not_saved():
    hook, _, _ = scripted_hook(sign_in_page(), max_attempts=1)
    with (
        pytest.raises(exc.UnexpectedResponseError),
        hook.stream_composite(ImageryRequest(wkt=POLYGON, date="2025-06-08", epsg_projection=32632)),
    ):
        pytest.fail("a page must not be yielded as a file")


def test_a_cancel_answered_with_an_empty_body_is_its_success():
    hook, _, _ = scripted_hook(empty(), max_attempts=1)
    hook.cancel_order(ORDER["TaskOrderGuid"])


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_every_method_sends_content_type_json(method):
    hook, script, _ = scripted_hook(envelope({"TaskOrders": []}))
    {
        "GET": lambda: hook.list_orders(),
        "DELETE": lambda: hook.cancel_order(ORDER["TaskOrderGuid"]),
        "POST": lambda: hook.get_order_details([ORDER["TaskOrderGuid"]]),
    }[method]()
    assert script.requests[0].method == method
    assert script.requests[0].headers["content-type"] == "application/json"
