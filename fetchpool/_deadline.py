"""One timer for the hard deadlines of every fetch in flight.

All fetches of a run share one timeout, so their deadlines come due in the order the fetches
started. A FIFO of scopes and a single loop timer, armed for the oldest scope still running,
do the work of `asyncio.timeout()` without a timer handle per fetch, which costs more than
the rest of the deadline bookkeeping together. Expiry is signalled exactly as
`asyncio.timeout()` does it: the task is cancelled and the scope turns that cancellation,
and only that one, into `TimeoutError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

_ACTIVE = 0
_EXPIRED = 1
_DONE = 2
_SLACK = 64  # finished scopes tolerated in the FIFO beyond twice the active ones


class DeadlineScope:
    """`with deadlines.scope():` bounds the block by the deadline (raises `TimeoutError`)."""

    __slots__ = ("_cancelling", "_deadlines", "_state", "_task", "_when")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self._state = _DONE  # until entered
        self._when = 0.0
        self._cancelling = 0
        self._task: asyncio.Task[object] | None = None

    def __enter__(self) -> DeadlineScope:
        self._deadlines._add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = self._state
        self._state = _DONE
        if state == _ACTIVE:
            self._deadlines._active -= 1
        elif state == _EXPIRED:
            task = self._task
            assert task is not None
            # Ours was the only new cancellation: it is the timeout, not a cancel from outside.
            if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class Deadlines:
    """Deadlines `delay` seconds after each scope is entered, on one event loop timer."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._queue: deque[DeadlineScope] = deque()
        self._active = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        """Scopes entered and neither left nor expired."""
        return self._active

    @property
    def queued(self) -> int:
        """Scopes held in the FIFO, finished ones included (bounded by `pending`)."""
        return len(self._queue)

    def scope(self) -> DeadlineScope:
        """A scope whose deadline starts when it is entered (inside a task)."""
        return DeadlineScope(self)

    def _add(self, scope: DeadlineScope) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline scope must be entered inside a task")
        if loop is not self._loop:
            # First use, or a new event loop: what the old one held can never fire.
            self._loop = loop
            self._queue = deque()
            self._active = 0
            self._timer = None
        scope._task = task
        scope._cancelling = task.cancelling()
        scope._when = loop.time() + self._delay
        scope._state = _ACTIVE
        queue = self._queue
        queue.append(scope)
        self._active += 1
        if self._timer is None:
            self._timer = loop.call_at(scope._when, self._fire)
        elif len(queue) > 2 * self._active + _SLACK:
            # Finished scopes leave the FIFO lazily; drop them before they pile up.
            self._queue = deque(s for s in queue if s._state == _ACTIVE)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        queue = self._queue
        while queue:
            scope = queue[0]
            if scope._state != _ACTIVE:
                queue.popleft()
                continue
            if scope._when > now:
                self._timer = loop.call_at(scope._when, self._fire)
                return
            queue.popleft()
            scope._state = _EXPIRED
            self._active -= 1
            assert scope._task is not None
            scope._task.cancel()
