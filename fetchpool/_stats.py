"""Run statistics in constant memory: outcome counts, failure breakdowns and latency percentiles.

Latencies go into a fixed log-bucket histogram, so a run of a million URLs costs the
same few kilobytes as a run of ten, and percentiles are accurate to about 1 %.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable

from ._models import Kind, Outcome, Result

# Buckets grow by 2 % from 1 µs; a value is reported as its bucket's geometric middle,
# so the relative error of a percentile is at most sqrt(1.02) - 1, about 1 %.
_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)
_LOWEST = 1e-6
_BUCKETS = math.ceil(math.log(1e6 / _LOWEST) / _LOG_GROWTH) + 1  # up to ~11 days


class LatencyHistogram:
    """Counts of non-negative durations in fixed logarithmic buckets (constant memory)."""

    __slots__ = ("_counts", "count", "max", "min")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.min = math.inf
        self.max = 0.0

    @property
    def buckets(self) -> int:
        """The fixed number of buckets, whatever the number of values added."""
        return len(self._counts)

    def add(self, seconds: float) -> None:
        """Count one duration. O(1)."""
        if not seconds >= 0.0:  # NaN or negative: a clock glitch, not a latency
            seconds = 0.0
        if seconds <= _LOWEST:
            index = 0
        else:
            index = min(int(math.log(seconds / _LOWEST) / _LOG_GROWTH) + 1, _BUCKETS - 1)
        self._counts[index] += 1
        self.count += 1
        if seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (nearest rank), e.g. 0.95 for p95; None when empty."""
        if self.count == 0:
            return None
        q = min(max(q, 0.0), 1.0)
        rank = max(1, math.ceil(q * self.count))
        if rank == 1:
            return self.min
        if rank == self.count:
            return self.max
        seen = 0
        index = 0
        for index, n in enumerate(self._counts):  # noqa: B007 - the loop finds the index
            seen += n
            if seen >= rank:
                break
        value = _LOWEST if index == 0 else _LOWEST * _GROWTH ** (index - 0.5)
        # The exact extremes are known, so the estimate never leaves [min, max].
        return min(max(value, self.min), self.max)


@dataclasses.dataclass(slots=True)
class InputCounts:
    """What the input stage read or left out, counted where it happens (the input's own).

    The run adds them to its `RunStats` once, at the end (`RunStats.add_input`), so the
    statistics are written by one stage only.
    """

    excluded: int = 0  # dropped by --include/--exclude
    other_shards: int = 0  # dropped by --shard
    documents: int = 0  # link checking: documents read
    undecodable: int = 0  # ... skipped as not UTF-8
    unchecked: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


class RunStats:
    """Counts and latencies of a run's results, updated one result at a time.

    The CLI's output stage adds every result exactly once (sinks only read the stats),
    including results that `--failures-only` does not print, and at the end what the input
    stage counted (`add_input`).

    Args:
        clock: monotonic time source, in seconds; injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._stopped: float | None = None
        self._latency = LatencyHistogram()
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.cancelled = 0
        self.by_kind: collections.Counter[Kind] = collections.Counter()
        self.by_status: collections.Counter[int] = collections.Counter()
        self.excluded = 0
        self.other_shards = 0
        # Link checking: documents read, those skipped as not UTF-8, links not checked by why.
        self.documents = 0
        self.undecodable = 0
        self.unchecked: collections.Counter[str] = collections.Counter()
        self.interrupted: str | None = None
        self.read_back = 0  # results read back from complete partitions of --output-dir

    def start(self) -> None:
        """Restart the wall clock (when construction and the run's start are apart)."""
        self._started = self._clock()
        self._stopped = None

    def stop(self) -> None:
        """Freeze the wall clock at the end of the run, so the summary's numbers agree."""
        if self._stopped is None:
            self._stopped = self._clock()

    def add_input(self, counts: InputCounts) -> None:
        """Take in what the input stage counted (links left out, documents read)."""
        self.excluded += counts.excluded
        self.other_shards += counts.other_shards
        self.documents += counts.documents
        self.undecodable += counts.undecodable
        self.unchecked.update(counts.unchecked)

    def add_unreported(self, count: int, reason: str) -> None:
        """Count `count` URLs that were read but whose results could not be reported (standard
        output was closed) as cancelled, for `reason`."""
        if count:
            self.done += count
            self.cancelled += count
            self.by_kind[Kind.CANCELLED] += count
            self.interrupted = reason

    def add(self, result: Result, *, again: bool = False) -> None:
        """Count one result. O(1).

        `again` marks the result of a link at another place where it stands (link checking):
        counted as a result, not as another fetch (latency and URLs per second).
        """
        self.done += 1
        outcome = result.outcome
        if outcome is Outcome.OK:
            self.ok += 1
        elif outcome is Outcome.FAIL:
            self.failed += 1
        else:
            self.cancelled += 1
        if outcome is not Outcome.OK:
            if result.kind is not None:
                self.by_kind[result.kind] += 1
            if result.status is not None:
                self.by_status[result.status] += 1
        # An invalid line or a cancelled URL has no meaningful fetch time, nor has a local
        # file's check (not a fetch) or a link's result shown at another of its places.
        if again or result.local or result.kind is Kind.INVALID:
            return
        if outcome is not Outcome.CANCELLED:
            self._latency.add(result.elapsed)

    @property
    def fetched(self) -> int:
        """Results that stand on a fetch: not cancelled, not an invalid input line."""
        return self._latency.count

    def latency(self, q: float) -> float | None:
        """Latency quantile `q` in [0, 1] (0.5 = p50) in seconds; None when nothing was fetched."""
        return self._latency.quantile(q)

    @property
    def max_latency(self) -> float:
        """The longest fetch time seen, in seconds (0.0 when none)."""
        return self._latency.max

    def elapsed(self) -> float:
        """Wall time in seconds since construction or `start()`, up to `stop()` if called."""
        end = self._stopped if self._stopped is not None else self._clock()
        return max(0.0, end - self._started)

    def rate(self) -> float:
        """Fetched URLs per second so far (0.0 before any time has passed).

        Only results that stand on a fetch count: URLs cancelled by Ctrl-C or `--max-time`
        (and invalid input lines) finish at once without a fetch, and would inflate the rate.
        """
        elapsed = self.elapsed()
        return self.fetched / elapsed if elapsed > 0 else 0.0
