"""fetchpool: fetch many URLs concurrently with a fixed pool of workers.

    async for result in fetchpool.fetch(["https://example.org/"], workers=8, timeout=30):
        print(result.outcome, result.status, result.url)

The core (this package outside `fetchpool.cli`) imports neither Typer nor Rich.
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
