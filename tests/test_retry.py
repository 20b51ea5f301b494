"""The retry policy: what is worth another attempt, and the wait before it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import formatdate
from urllib.parse import quote

import httpx
import pytest
from fetchhelpers import fetch_one
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import Kind, Outcome
from fetchpool._classify import Failure
from fetchpool._retry import backoff, is_transient, retry_after


@pytest.mark.parametrize(
    ("failure", "status", "expected"),
    [
        (Failure(Kind.CONNECT, "connection refused"), None, True),
        (Failure(Kind.TIMEOUT, "timed out"), None, True),
        (Failure(Kind.DNS, "DNS: temporary failure", transient=True), None, True),
        (Failure(Kind.DNS, "DNS: no such name"), None, False),
        (Failure(Kind.TLS, "TLS: bad certificate"), None, False),
        (None, 503, True),
        (None, 429, True),
        (None, 500, False),
        (None, 200, False),
    ],
)
def test_what_is_worth_another_attempt(
    failure: Failure | None, status: int | None, expected: bool
) -> None:
    assert is_transient(failure, status) is expected


def test_a_seeded_jitter_gives_the_same_waits_each_run() -> None:
    def waits(seed: int) -> list[float]:
        draw = random.Random(seed).uniform
        return [backoff(n, None, jitter=draw) for n in range(1, 6)]

    assert waits(7) == waits(7)
    assert waits(7) != waits(8)


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    assert retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=500.0) == 0.0
    assert retry_after("soon") is None


# -- retries ----------------------------------------------------------------------------------


def test_transient_status_is_retried_until_ok(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky/r1/2/503"), retries=2)
    assert result.outcome is Outcome.OK
    assert result.attempts == 3
    assert fresh_server.hits("/flaky/r1/") == 3


def test_retries_give_up_after_the_given_number(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky/r2/5/502"), retries=1)
    assert (result.status, result.attempts) == (502, 2)
    assert fresh_server.hits("/flaky/r2/") == 2


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_every_transient_status_of_the_contract_is_retried(
    fresh_server: HTTPTestServer, status: int
) -> None:
    result = fetch_one(fresh_server.url(f"/flaky/t{status}/1/{status}"), retries=1)
    assert (result.outcome, result.status, result.attempts) == (Outcome.OK, 200, 2)


def test_backoff_doubles_per_attempt_with_jitter() -> None:
    def fetcher_drawing(jitter: Callable[[float, float], float]) -> fetchpool.Fetcher:
        return fetchpool.Fetcher(httpx.AsyncClient(), fetchpool.Settings(), jitter=jitter)

    highest = [min(8.0, 0.25 * 2 ** (n - 1)) for n in range(1, 8)]
    top = fetcher_drawing(lambda lo, hi: hi)
    assert [top._backoff(n, None) for n in range(1, 8)] == highest
    bottom = fetcher_drawing(lambda lo, hi: lo)
    assert [bottom._backoff(n, None) for n in range(1, 8)] == [h / 2 for h in highest]
    fetcher = fetchpool.Fetcher(httpx.AsyncClient(), fetchpool.Settings())
    draws = {fetcher._backoff(3, None) for _ in range(20)}
    assert len(draws) > 1  # jittered, not a fixed wait
    assert all(d is not None and 0.5 <= d <= 1.0 for d in draws)
    assert fetcher._backoff(3, "7") == 7.0  # Retry-After wins over the backoff


@pytest.mark.parametrize("status", [404, 410, 401, 500])
def test_non_transient_status_is_never_retried(fresh_server: HTTPTestServer, status: int) -> None:
    result = fetch_one(fresh_server.url(f"/flaky/n{status}/5/{status}"), retries=3)
    assert result.attempts == 1
    assert fresh_server.hits(f"/flaky/n{status}/") == 1


def test_connection_errors_are_retried(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky-reset/c1/1"), retries=2)
    assert result.outcome is Outcome.OK
    assert result.attempts == 2


def test_retry_after_seconds_is_honoured(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/ra/1/429?retry_after=1"), retries=1, timeout=5)
    assert result.outcome is Outcome.OK
    assert time.monotonic() - started >= 0.95


def test_retry_after_http_date_is_honoured(fresh_server: HTTPTestServer) -> None:
    when = quote(formatdate(time.time() + 2, usegmt=True))
    started = time.monotonic()
    result = fetch_one(fresh_server.url(f"/flaky/rd/1/503?retry_after={when}"), retries=1)
    assert result.outcome is Outcome.OK
    assert time.monotonic() - started >= 0.5


def test_a_retry_after_that_is_not_a_number_falls_back_to_the_backoff(
    fresh_server: HTTPTestServer,
) -> None:
    # "²" is a digit to str.isdigit() but not a number to float(): a hostile server's header.
    assert retry_after("\u00b2") is None
    result = fetch_one(fresh_server.url("/flaky/rs/1/503?retry_after=%C2%B2"), retries=1)
    assert (result.outcome, result.status, result.attempts) == (Outcome.OK, 200, 2)


def test_retry_after_longer_than_the_time_left_is_not_waited(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/rl/1/503?retry_after=60"), retries=2, timeout=3)
    assert (result.status, result.attempts) == (503, 1)
    assert time.monotonic() - started < 2


def test_the_deadline_covers_all_attempts_together(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/dl/99/503?retry_after=1"), retries=10, timeout=2.5)
    assert result.outcome is Outcome.FAIL
    assert time.monotonic() - started < 4
    assert 2 <= result.attempts <= 3
