"""fetchpool: fetch many URLs concurrently with a fixed pool of workers.

    async for result in fetchpool.fetch(["https://example.org/"], workers=8, timeout=30):
        print(result.outcome, result.status, result.url)

The core (this package outside `fetchpool.cli`) imports neither Typer nor Rich.

General layout, in the order data flows: `_source` reads input lines into `Target`s
(`_links`/`_extract` for documents, `_filter` for --include/--exclude/--shard); `_pool` runs
the workers, each calling `_fetch` (one URL → one `Result`, `_models`) over `_transport`;
`_api` is the library's entry (`fetch`, `fetch_batch`, `fetch_columns`). Past one pool:
`_partition` cuts the input by host, `_partitioned` keeps results per partition for
--output-dir, `_ray` and `_ray_task` run partitions on a Ray cluster. `cli/` turns options
into a run and results into output.
"""

from __future__ import annotations

# First: keeps `import httpx` below from loading httpx's own command line (and Rich).
from . import _httpx_cli  # noqa: F401
from ._api import fetch, fetch_batch, fetch_columns
from ._channel import Channel
from ._config import Settings, StatusSet
from ._errors import FetchpoolError, UsageError
from ._fetch import Fetcher, make_client
from ._models import Kind, Outcome, Result, Target
from ._pool import Pool
from ._source import TargetReader, check_url, open_inputs, parse_line
from ._version import __version__

__all__ = [
    "Channel",
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
    "UsageError",
    "__version__",
    "check_url",
    "fetch",
    "fetch_batch",
    "fetch_columns",
    "make_client",
    "open_inputs",
    "parse_line",
]
