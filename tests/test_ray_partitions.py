"""The Ray engine's bookkeeping of partitions, without a cluster: narrow unit tests with a
stand-in for the remote task (the real cluster runs in tests/test_ray.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from fetchpool._channel import Channel, EndOfChannel, WouldBlock
from fetchpool._config import Settings
from fetchpool._models import Outcome, Result, Target
from fetchpool._partition import OutputDir, Partitioner, PartitionId
from fetchpool._ray import RayPool, _Partition


class _EndsEarly:
    """A remote task that ends without a result (as a task does whose pool raised on a
    worker): a normal end of its stream, not an error Ray reports."""

    def __init__(self) -> None:
        self.calls = 0

    def remote(self, settings: Any, targets: list[Target]) -> AsyncIterator[Any]:
        self.calls += 1

        async def stream() -> AsyncIterator[Any]:
            for _ in ():
                yield

        return stream()


def _drain(results: Channel[Result]) -> list[Result]:
    taken = []
    while True:
        try:
            taken.append(results.receive_nowait())
        except (WouldBlock, EndOfChannel):
            return taken


def test_a_task_that_ends_without_every_result_still_gives_each_url_one() -> None:
    async def scenario() -> tuple[int, list[Result]]:
        pool = RayPool(Settings(), partitioner=Partitioner(10, 1), max_in_flight=2)
        remote = _EndsEarly()
        pool._remote = remote
        results = Channel[Result](100)
        pool._results = results
        targets = [Target(f"http://h/{i}", "in", i) for i in range(1, 4)]
        partition = _Partition(PartitionId(0, 0), targets)
        pool._running[0] = partition
        await pool._run_partition(partition)
        return remote.calls, _drain(results)

    calls, results = asyncio.run(scenario())
    assert calls == 3  # tried again for the missing ones, then gave up
    assert sorted(r.url for r in results) == ["http://h/1", "http://h/2", "http://h/3"]
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert all("ended without its result" in (r.error or "") for r in results)


def test_urls_added_to_a_complete_partition_do_not_swallow_the_next_partition(
    tmp_path: Path,
) -> None:
    output = OutputDir(tmp_path / "out", size=3, buckets=1)
    writer = output.writer(PartitionId(0, 0))  # an earlier run completed partition 0
    for i in (1, 2, 3):
        writer.write(Result(f"http://h/t{i}", "in", i, Outcome.OK, 200))
    writer.commit()

    async def scenario() -> tuple[list[_Partition], int]:
        pool = RayPool(Settings(), partitioner=output.partitioner(), output_dir=output)
        pool._results = Channel[Result](100)
        pool._max_in_flight = 10
        # The input changed: line 2 is new; partition 1 (u1..u3) was never run.
        for line, name in enumerate(["t1", "NEW", "t3", "u1", "u2", "u3"], start=1):
            pool._feed.send_nowait(Target(f"http://h/{name}", "in", line))
        pool._feed.close()
        await pool._read()
        return list(pool._ready), pool.reused

    ready, reused = asyncio.run(scenario())
    assert reused == 2
    assert [(p.pid.number, p.keep_file, [t.url for t in p.targets]) for p in ready] == [
        (0, False, ["http://h/NEW"]),  # fetched, its partition's file left as it is
        (1, True, ["http://h/u1", "http://h/u2", "http://h/u3"]),  # its own file, this time
    ]
