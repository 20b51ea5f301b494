"""fetchpool: fetch many URLs concurrently with a fixed pool of workers.

    async for result in fetchpool.fetch(["https://example.org/"], workers=8, timeout=30):
        print(result.outcome, result.status, result.url)

The core (this package outside `fetchpool.cli`) imports neither Typer nor Rich.

Layout, in the order data flows (each stage only hands on; none calls back into the one
before it):

    input lines    _source.TargetReader     a `TargetSource`: lazy lines → `Target`s;
                   _links.FilteredTargets     --include/--exclude/--shard over a URL list;
                   _links.LinkSource          or the links of documents and pages (--extract)
        │  async for target               after a cancel the pool asks `leftovers()`
        ▼
    pool           _pool.Pool.run           reader → bounded queue → N workers, each
                                              `_fetch.Fetcher.fetch` (or `_check.LinkChecker`)
        │  _channel.Channel[Result]       the pool closes the send side at the end;
        ▼                                   a consumer that stops closes the receive side
    results        fetch() (_api)           the library: `async for result in fetch(...)`
                   cli/runner._Output       the CLI: sink, cache and `RunStats`, one writer
        │
        ▼
    sink           cli/sinks, cli/table     plain, JSONL, CSV, the live table, reports

Stopping flows down the same way: a signal or `--max-time` (cli/runner) calls
`Pool.cancel()`, whose workers end and whose unfinished targets come out as CANCELLED
results at the end of the same channel. The live displays (cli/progress, cli/table) draw
on threads of their own from `cli/view.RunView`, a frozen snapshot the event loop publishes,
never from the pool. Shared pieces: `_config.Settings` (every default, once), `_models`
(frozen `Target` and `Result`), `_stats.RunStats`.

Past one pool: `_partition` cuts the input by host, `_partitioned.PartitionedPool` keeps
results per partition for --output-dir, `_ray.RayPool` runs partitions on a Ray cluster
(`_ray_task` inside each task); both offer the pool's `run(source, results)`. The library's
`fetch_batch`/`fetch_columns` (_api) fetch one batch for a map-over-partitions step.
"""

from __future__ import annotations

# First: keeps `import httpx` below from loading httpx's own command line (and Rich).
from . import _httpx_cli  # noqa: F401
from ._api import fetch, fetch_batch, fetch_columns
from ._channel import (
    BrokenResourceError,
    Channel,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
)
from ._client import make_client
from ._config import Settings, StatusSet
from ._errors import FetchpoolError, UsageError
from ._fetch import Fetcher
from ._models import Kind, Outcome, Result, Target
from ._pool import Pool
from ._source import TargetReader, TargetSource, check_url, open_inputs, parse_line
from ._version import __version__

__all__ = [
    "BrokenResourceError",
    "Channel",
    "ClosedResourceError",
    "EndOfChannel",
    "Fetcher",
    "FetchpoolError",
    "Kind",
    "Outcome",
    "Pool",
    "Result",
    "Settings",
    "StatusSet",
    "Target",
    "TargetReader",
    "TargetSource",
    "UsageError",
    "WouldBlock",
    "__version__",
    "check_url",
    "fetch",
    "fetch_batch",
    "fetch_columns",
    "make_client",
    "open_inputs",
    "parse_line",
]
