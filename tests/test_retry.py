"""The retry policy: what is worth another attempt, and the wait before it."""

from __future__ import annotations

import random

import pytest

from fetchpool._classify import Failure
from fetchpool._models import Kind
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
