"""When a failed attempt is tried again, and after how long: transient failures, exponential
backoff with jitter, and the server's `Retry-After` (RFC 9110 §10.2.3)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

from ._classify import Failure
from ._config import TRANSIENT_STATUSES
from ._models import Kind

__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "Jitter", "backoff", "is_transient", "retry_after"]

BACKOFF_BASE = 0.25
BACKOFF_MAX = 8.0

Jitter = Callable[[float, float], float]
"""A draw from [low, high], as `random.uniform` (or a seeded `random.Random().uniform`)."""


def is_transient(failure: Failure | None, status: int | None) -> bool:
    """True when an attempt that ended so is worth another: a connection error, a time-out,
    a DNS answer that may pass, or a status such as 503 (`TRANSIENT_STATUSES`)."""
    if failure is not None:
        return failure.transient or failure.kind in (Kind.CONNECT, Kind.TIMEOUT)
    return status in TRANSIENT_STATUSES


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone also takes "²"
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)


def backoff(attempts: int, retry_after_header: str | None, *, jitter: Jitter) -> float:
    """Seconds to wait after attempt number `attempts` (1-based).

    The server's `Retry-After` wins; otherwise the ceiling doubles per attempt from
    `BACKOFF_BASE` up to `BACKOFF_MAX`, and the wait is drawn from its upper half, so
    workers that failed together do not all come back at once.
    """
    asked = retry_after(retry_after_header)
    if asked is not None:
        return asked
    ceiling: float = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempts - 1))
    return ceiling * jitter(0.5, 1.0)
