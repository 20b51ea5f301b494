"""Fetching through the library in a test: `fetch_all` and `fetch_one`, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import fetchpool
from fetchpool import Result

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def fetch_all(urls: list[str], **options: Any) -> list[Result]:
    async def collect() -> list[Result]:
        return [r async for r in fetchpool.fetch(urls, **options)]

    return run(collect())


def fetch_one(url: str, **options: Any) -> Result:
    options.setdefault("timeout", 5)
    (result,) = fetch_all([url], **options)
    return result
