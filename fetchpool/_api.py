"""The library entry point: `fetch()`, an async generator of results."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from typing import Any

import httpx

from ._channel import Channel
from ._config import Settings
from ._models import Result, Target
from ._pool import Pool
from ._source import make_target


async def _as_targets(
    urls: Iterable[str | Target] | AsyncIterable[str | Target],
) -> AsyncIterator[Target]:
    line = 0

    def to_target(item: str | Target) -> Target:
        if isinstance(item, Target):
            return item
        return make_target(item.strip(), "-", line)

    if isinstance(urls, AsyncIterable):
        async for item in urls:
            line += 1
            yield to_target(item)
    else:
        for item in urls:
            line += 1
            yield to_target(item)


async def fetch(
    urls: Iterable[str | Target] | AsyncIterable[str | Target],
    *,
    settings: Settings | None = None,
    client: httpx.AsyncClient | None = None,
    **options: Any,
) -> AsyncGenerator[Result, None]:
    """Fetch every URL with a fixed pool of workers; yield each result as it finishes.

    Args:
        urls: URL strings or `Target` values, from a (lazy) iterable or async iterable.
        settings: the settings; or give their fields as keyword options
            (`workers=8, timeout=30, ...`).
        client: a shared `httpx.AsyncClient` to use instead of making one.

    Every URL yields exactly one `Result`; a URL that fails is a result with
    outcome FAIL, never an exception. Breaking out of the loop cancels what is
    in flight (use `contextlib.aclosing` to do that promptly: typed as an async
    generator, `fetch()` has the `aclose()` it needs). Runs on asyncio.
    """
    settings = settings or Settings(**options)
    async with Pool(settings, client=client) as pool:
        results = Channel[Result](settings.workers)
        runner = asyncio.ensure_future(pool.run(_as_targets(urls), results))
        try:
            async for result in results:
                yield result
            await runner
        finally:
            if not runner.done():
                pool.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
