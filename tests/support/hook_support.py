"""A scripted HTTP transport for hook unit tests: records every request, answers from a queue."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_clearsky.hooks._api import RetryPolicy
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def envelope(data: Any = None, *, status: int = 200, code: int | None = None, message: str = "") -> httpx.Response:
    """A ServiceResult answer: success when ``code`` is None."""
    if code is None:
        body = {"Succeeded": True, "Error": None, "Data": data}
    else:
        body = {"Succeeded": False, "Error": {"Message": message, "Code": code}, "Data": data}
    return httpx.Response(status, json=body)


@dataclass
class Script:
    """Answers requests in order; the last answer repeats. Keeps every request it saw."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self._answer(request)

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self._answer(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@dataclass
class Waits:
    """Records the waits tenacity asks for instead of sleeping."""

    seconds: list[float] = field(default_factory=list)

    def __call__(self, delay: float) -> None:
        self.seconds.append(delay)


def scripted_hook(*answers: Answer, max_attempts: int = 4) -> tuple[ClearSkyHook, Script, Waits]:
    script = Script(list(answers))
    waits = Waits()

    hook = ClearSkyHook(
        retry_policy=RetryPolicy(max_attempts=max_attempts, backoff_initial=1.0, backoff_max=8.0, sleep=waits),
        transport=httpx.MockTransport(script.handler),
        async_transport=httpx.MockTransport(script.ahandler),
    )
    return hook, script, waits
