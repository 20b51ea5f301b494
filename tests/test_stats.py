"""Run statistics: counts by outcome, kind and status; latency percentiles in constant memory."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable

import pytest

from fetchpool._models import Kind, Outcome, Result
from fetchpool._stats import LatencyHistogram, RunStats


def _result(
    outcome: Outcome = Outcome.OK,
    *,
    elapsed: float = 0.1,
    status: int | None = 200,
    kind: Kind | None = None,
) -> Result:
    return Result(
        url="http://127.0.0.1/x",
        source="-",
        line=1,
        outcome=outcome,
        status=status,
        elapsed=elapsed,
        kind=kind,
    )


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda rng: rng.uniform(0.001, 2.0), id="uniform"),
        pytest.param(lambda rng: rng.lognormvariate(-3.0, 1.5), id="lognormal"),
        pytest.param(lambda rng: rng.expovariate(20.0), id="exponential"),
        pytest.param(
            lambda rng: rng.choice([0.005, 0.006, 30.0]) * rng.uniform(0.99, 1.01),
            id="timeouts-mixed-in",
        ),
    ],
)
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_percentiles_are_within_two_percent_of_exact(
    draw: Callable[[random.Random], float], q: float
) -> None:
    rng = random.Random(4)
    values = [draw(rng) for _ in range(20_000)]
    stats = RunStats()
    for v in values:
        stats.add(_result(elapsed=v))
    got = stats.latency(q)
    assert got is not None
    assert got == pytest.approx(_exact(values, q), rel=0.02)


def test_max_latency_and_extremes_are_exact() -> None:
    stats = RunStats()
    for v in (0.25, 0.003, 7.5):
        stats.add(_result(elapsed=v))
    assert stats.max_latency == 7.5
    assert stats.latency(1.0) == 7.5
    assert stats.latency(0.0) == 0.003


def test_latency_is_none_before_any_result() -> None:
    stats = RunStats()
    assert stats.latency(0.5) is None
    assert stats.max_latency == 0.0


def test_memory_stays_constant_however_many_results() -> None:
    small, big = LatencyHistogram(), LatencyHistogram()
    small.add(0.1)
    rng = random.Random(1)
    for _ in range(200_000):
        big.add(rng.expovariate(1.0))
    assert big.buckets == small.buckets < 2000
    assert sys.getsizeof(big._counts) == sys.getsizeof(small._counts)
    assert big.count == 200_000


def test_extreme_durations_are_clamped_not_lost() -> None:
    hist = LatencyHistogram()
    for v in (0.0, -1.0, float("nan"), 1e-9, 1e9):
        hist.add(v)
    assert hist.count == 5
    assert hist.quantile(1.0) == 1e9


def test_counts_by_outcome_kind_and_status() -> None:
    stats = RunStats()
    stats.add(_result())
    stats.add(_result(Outcome.FAIL, status=404, kind=Kind.HTTP))
    stats.add(_result(Outcome.FAIL, status=404, kind=Kind.HTTP))
    stats.add(_result(Outcome.FAIL, status=500, kind=Kind.HTTP))
    stats.add(_result(Outcome.FAIL, status=None, kind=Kind.TIMEOUT))
    stats.add(_result(Outcome.CANCELLED, status=None, kind=Kind.CANCELLED))
    assert (stats.done, stats.ok, stats.failed, stats.cancelled) == (6, 1, 4, 1)
    assert stats.by_kind == {Kind.HTTP: 3, Kind.TIMEOUT: 1, Kind.CANCELLED: 1}
    assert stats.by_status == {404: 2, 500: 1}


def test_ok_statuses_are_not_counted_as_failures_by_status() -> None:
    stats = RunStats()
    stats.add(_result(status=200))
    stats.add(_result(status=301))
    assert not stats.by_status


def test_cancelled_and_invalid_results_do_not_skew_latency() -> None:
    stats = RunStats()
    stats.add(_result(elapsed=0.5))
    stats.add(_result(Outcome.CANCELLED, elapsed=0.0, status=None, kind=Kind.CANCELLED))
    stats.add(_result(Outcome.FAIL, elapsed=0.0, status=None, kind=Kind.INVALID))
    assert stats.latency(0.0) == 0.5


def test_elapsed_and_rate_follow_the_injected_clock() -> None:
    now = [100.0]
    stats = RunStats(clock=lambda: now[0])
    assert stats.rate() == 0.0
    for _ in range(50):
        stats.add(_result())
    now[0] = 102.0
    assert stats.elapsed() == 2.0
    assert stats.rate() == 25.0
    stats.stop()
    now[0] = 200.0
    assert stats.elapsed() == 2.0
    stats.start()
    assert stats.elapsed() == 0.0


def test_what_the_input_counted_is_added_at_the_end() -> None:
    from fetchpool._stats import InputCounts

    stats = RunStats()
    stats.excluded = 1
    counts = InputCounts(excluded=2, other_shards=3, documents=4, undecodable=5)
    counts.unchecked["scheme"] += 6
    stats.add_input(counts)
    assert (stats.excluded, stats.other_shards, stats.documents, stats.undecodable) == (3, 3, 4, 5)
    assert stats.unchecked == {"scheme": 6}
