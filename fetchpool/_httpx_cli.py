"""Keeps `import httpx` from importing httpx's own command line until someone calls it.

httpx imports its `httpx` command (click, pygments and rich: about 30 ms of start-up, and
Rich in the core) whenever click is installed, as it is beside the `ray` extra. fetchpool
never runs that command, so a stand-in `httpx._main` is registered before httpx is first
imported; it loads the real module on first use of `httpx.main`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command line, loaded now."""
    del sys.modules["httpx._main"]
    from httpx._main import main

    return main(*args, **kwargs)


def defer_httpx_command_line() -> None:
    """Register the stand-in, unless httpx (or its command line) is already imported."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "Stand-in: the real module loads on first use.")
    stand_in.main = _main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


defer_httpx_command_line()
