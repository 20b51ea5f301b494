"""The life cycle the suite's servers share: an asyncio loop on a daemon thread of its own.

A subclass binds its sockets in `_run` (on that thread: it sets `_loop`, then `_ready`, and
`_startup_error` if binding failed) and closes them in `_shutdown` (a coroutine on the loop);
`start()`, `stop()` and the context manager are here, each bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Self

STOP_TIMEOUT = 5.0
"""Seconds a server may take to start, and to stop."""


class LoopThreadServer:
    """Base of the test servers that run an asyncio loop on a thread (see the module)."""

    NAME = "test server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> None:
        """Start listening; returns once the sockets are bound."""
        if self._thread is not None:
            raise RuntimeError(f"{self.NAME} already started")
        name = type(self).__name__
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(STOP_TIMEOUT):
            raise RuntimeError(f"{self.NAME} did not start in time")
        if self._startup_error is not None:
            raise RuntimeError(f"{self.NAME} failed to start") from self._startup_error

    def stop(self) -> None:
        """Close the sockets (`_shutdown` on the loop), then join the thread (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._shutdown()))
            thread.join(STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError
