"""What the live displays read of a running pool: one immutable snapshot, published by the loop.

The displays draw on threads of their own (the progress line's and the live table's refresh
timers), while the event loop changes the pool's state between any two of their bytecodes.
So they never read the pool: the event loop builds a `RunSnapshot` a few times a second and
swaps it into `RunView.snapshot` by reference (one attribute store, atomic under the GIL), and
a display reads that attribute once per draw, getting a consistent state at most
`PUBLISH_INTERVAL` old.

Rich's `Live` and `Progress` take the other road: an `RLock` held by both sides around every
read and write. Here a lock would put the displays' cost on the pool's hot path (each worker
start and finish would take it); a snapshot puts it on a timer at the displays' own rate, and
a display thread can never hold up a worker. Imports no Rich: the runner builds the view for
every run, drawn or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._models import Target

PUBLISH_INTERVAL = 0.05
"""Seconds between snapshots: twice the displays' refresh rate (10 per second)."""


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """The running pool at one moment, as the displays show it."""

    in_flight: tuple[tuple[Target, float], ...] = ()
    """(target, monotonic start time) of each busy worker."""
    total: int | None = None
    """How many URLs there are in all, once known (None until then)."""


class RunView:
    """The running pool as the live displays see it: the last snapshot the event loop published.

    Args:
        snapshot: the first snapshot (nothing in flight, total unknown by default).
    """

    def __init__(self, snapshot: RunSnapshot | None = None) -> None:
        self.snapshot = snapshot or RunSnapshot()

    def publish(self, snapshot: RunSnapshot) -> None:
        """Replace the snapshot (on the event loop); display threads see the new one next."""
        self.snapshot = snapshot
