"""The library entry points: `fetch()`, an async generator of results, and `fetch_batch()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import httpx

from ._channel import Channel
from ._config import Settings
from ._models import Result, Target
from ._pool import Pool
from ._records import RECORD_FIELDS, record_of
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


def fetch_batch(
    urls: Iterable[str | Target],
    *,
    settings: Settings | None = None,
    **options: Any,
) -> list[Result]:
    """Fetch a batch of URLs with a pool of workers and return their results, in input order.

    A plain (blocking) function of a batch, for the map-over-partitions step of a
    distributed engine: Ray Data's `map_batches`, Spark's `mapPartitions`, Dask's
    `map_partitions` (see `fetch_columns` for data frames). Called from a thread
    that runs an event loop, it fetches on a thread of its own.

        results = fetchpool.fetch_batch(["https://example.org/"], workers=16, per_host=2)

    Args:
        urls: URL strings (line numbers are their 1-based positions) or `Target` values.
        settings: the settings; or give their fields as keyword options.

    Every URL yields exactly one `Result`; a URL that fails is a FAIL result, never an
    exception.
    """
    items = list(urls)

    async def collect() -> list[Result]:
        return [result async for result in fetch(items, settings=settings, **options)]

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        results = asyncio.run(collect())
    else:  # asyncio.run() cannot nest: fetch on a thread with a loop of its own
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1, "fetchpool-batch") as executor:
            results = executor.submit(asyncio.run, collect()).result()
    return _in_input_order(items, results)


def _in_input_order(items: list[str | Target], results: list[Result]) -> list[Result]:
    positions: dict[tuple[str, int, str], deque[int]] = defaultdict(deque)
    for line, item in enumerate(items, 1):
        target = item if isinstance(item, Target) else make_target(item.strip(), "-", line)
        positions[(target.source, target.line, target.url)].append(line)
    ordered: list[Result | None] = [None] * len(items)
    for result in results:
        ordered[positions[(result.source, result.line, result.url)].popleft() - 1] = result
    return [result for result in ordered if result is not None]


def fetch_columns(
    batch: Mapping[str, Iterable[Any]],
    *,
    column: str = "url",
    settings: Settings | None = None,
    **options: Any,
) -> dict[str, list[Any]]:
    """Fetch the URLs of one column of a batch; return the results as columns, in row order.

    The columns are the fields of `--format jsonl` (`url`, `outcome`, `status`, `elapsed`,
    `attempts`, `final_url`, `error`, `source`, `line`, `kind`, `bytes`, ...), one value per
    input row. It takes a dict of columns (Ray Data's default batch format) or a pandas
    DataFrame, and its answer is what `map_batches` expects back:

        ds = ray.data.from_items([{"url": u} for u in urls])
        results = ds.map_batches(fetchpool.fetch_columns, batch_size=1000,
                                 fn_kwargs={"workers": 32, "per_host": 2})

    Args:
        batch: the batch; `batch[column]` holds the URLs.
        column: the name of the URL column.
        settings: the settings; or give their fields as keyword options.
    """
    results = fetch_batch((str(url) for url in batch[column]), settings=settings, **options)
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_FIELDS}
    for result in results:
        for name, value in record_of(result).items():
            columns[name].append(value)
    return columns
