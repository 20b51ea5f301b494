"""The work of one partition inside a Ray task: fetchpool's own pool over a list of targets.

Plain Python, without Ray: the driver wraps `fetch_partition` with
`ray.remote`, so a worker imports this module (and fetchpool) by name. The
task yields its results in small batches as they finish, so the driver
streams them on long before the partition ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator, Sequence

from ._channel import Channel
from ._config import Settings
from ._models import Result, Target
from ._pool import Pool

# A batch is sent on after this long (or this many results), whichever comes first.
BATCH_SECONDS = 0.05
BATCH_MAX = 256
_POLL = 0.2  # how often a waiting task wakes up, so that a cancellation reaches it


async def _fetch_all(
    settings: Settings,
    targets: Sequence[Target],
    out: queue.SimpleQueue[tuple[int, Result] | None],
    started: threading.Event,
    control: dict[str, object],
) -> None:
    index: defaultdict[tuple[str, int, str], deque[int]] = defaultdict(deque)
    for i, target in enumerate(targets):
        index[(target.source, target.line, target.url)].append(i)

    async def feed() -> AsyncIterator[Target]:
        for target in targets:
            yield target

    async with Pool(settings) as pool:
        control["loop"] = asyncio.get_running_loop()
        control["pool"] = pool
        started.set()
        results = Channel[Result](settings.workers)
        runner = asyncio.create_task(pool.run(feed(), results))
        async for result in results:
            out.put((index[(result.source, result.line, result.url)].popleft(), result))
        await runner


def fetch_partition(
    settings: Settings, targets: Sequence[Target]
) -> Iterator[list[tuple[int, Result]]]:
    """Fetch a partition's targets with a `Pool`; yield `(index, result)` batches as they finish.

    `index` is the target's position in `targets`. Every target yields exactly one
    result. When the generator is closed or interrupted early (the task was
    cancelled), the pool is cancelled and its thread given a moment to stop.

    Args:
        settings: the fetch settings (workers, per-host limit, ... of this partition).
        targets: the partition's targets.
    """
    out: queue.SimpleQueue[tuple[int, Result] | None] = queue.SimpleQueue()
    started = threading.Event()
    control: dict[str, object] = {}

    def drive() -> None:
        try:
            asyncio.run(_fetch_all(settings, targets, out, started, control))
        finally:
            started.set()
            out.put(None)

    thread = threading.Thread(target=drive, name="fetchpool-partition", daemon=True)
    thread.start()
    finished = False
    try:
        while not finished:
            batch: list[tuple[int, Result]] = []
            flush_at: float | None = None
            while len(batch) < BATCH_MAX:
                wait = _POLL if flush_at is None else flush_at - time.monotonic()
                if wait <= 0:
                    break
                try:
                    item = out.get(timeout=min(wait, _POLL))
                except queue.Empty:
                    continue
                if item is None:
                    finished = True
                    break
                batch.append(item)
                if flush_at is None:
                    flush_at = time.monotonic() + BATCH_SECONDS
            if batch:
                yield batch
    finally:
        if not finished:
            started.wait(1.0)
            loop, pool = control.get("loop"), control.get("pool")
            if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(pool, Pool):
                with contextlib.suppress(RuntimeError):  # the loop has already closed
                    loop.call_soon_threadsafe(pool.cancel, "partition cancelled")
            thread.join(2.0)
