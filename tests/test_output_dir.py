"""`--output-dir` on the local engine, and the library's batch functions.

Results are written as JSON Lines, one file per partition of the input (by host), each
renamed into place once complete; a rerun with the same input and directory reads the
complete partitions back instead of fetching them again.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clihelpers import (
    parse_jsonl,
    parse_summary,
    run_fetchpool,
    spawn_fetchpool,
    wait_exit,
    wait_signal_handlers,
    write_lines,
)
from httpserver import HTTPTestServer, wait_until
from sources import StalledSource

import fetchpool
from fetchpool import Channel, Outcome, Pool, Result, Settings, Target
from fetchpool._partition import OutputDir, Partitioner
from fetchpool._partitioned import PartitionedPool


def _stored(out_dir: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(out_dir.glob("part-*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_output_dir_writes_every_result_once_in_one_file_per_partition(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    lines = [server.url(f"/ok/files/{i}") for i in range(7)] + ["ftp://example.invalid/"]
    urls = write_lines(tmp_path / "urls.txt", lines)
    out_dir = tmp_path / "out"
    proc = run_fetchpool(
        "--output-dir", out_dir, "--partition-size", "3", "--format", "jsonl", urls
    )
    assert proc.returncode == 1, proc.stderr  # the ftp line is a FAIL
    assert sorted(r["url"] for r in parse_jsonl(proc.stdout)) == sorted(lines)
    assert sorted(str(r["url"]) for r in _stored(out_dir)) == sorted(lines)
    # 7 URLs of one host: partitions of 3, 3 and 1; the invalid line has a bucket of its own.
    assert len(list(out_dir.glob("part-*.jsonl"))) == 4
    assert json.loads((out_dir / "fetchpool-partitions.json").read_text()) == {
        "partition_size": 3,
        "buckets": 64,
    }
    assert not list(out_dir.glob(".*.tmp"))


def test_output_dir_after_sigkill_resumes_without_refetching_complete_partitions(
    fresh_server: HTTPTestServer, tmp_path: Path
) -> None:
    lines = [fresh_server.url(f"/ok/resume/{i}") for i in range(6)]
    lines += [fresh_server.url(f"/delay/5000/resume/{i}") for i in range(3)]
    urls = write_lines(tmp_path / "urls.txt", lines)
    out_dir = tmp_path / "out"
    args = ("--output-dir", out_dir, "--partition-size", "3", "--format", "jsonl", urls)
    proc = spawn_fetchpool(*args)
    try:
        assert wait_until(lambda: len(list(out_dir.glob("part-*.jsonl"))) == 2, timeout=15)
        assert wait_until(lambda: fresh_server.hits("/delay/") == 3, timeout=15)
    finally:
        proc.kill()
        wait_exit(proc)
    assert len(list(out_dir.glob("part-*.jsonl"))) == 2  # the slow partition never completed
    fresh_server.reset_stats()
    again = run_fetchpool(*args)
    assert again.returncode == 0, again.stderr
    assert fresh_server.hits("/ok/") == 0
    assert fresh_server.hits("/delay/") == 3
    assert sorted(r["url"] for r in parse_jsonl(again.stdout)) == sorted(lines)
    assert parse_summary(again.stderr).ok == 9  # the summary covers the whole input
    assert b"read back: 6 results of complete partitions" in again.stderr
    assert sorted(str(r["url"]) for r in _stored(out_dir)) == sorted(lines)


def test_output_dir_does_not_keep_a_partition_cut_short_by_sigint(
    fresh_server: HTTPTestServer, tmp_path: Path
) -> None:
    lines = [fresh_server.url(f"/hang/sigint/{i}") for i in range(3)]
    urls = write_lines(tmp_path / "urls.txt", lines)
    out_dir = tmp_path / "out"
    proc = spawn_fetchpool("--output-dir", out_dir, "--format", "jsonl", urls)
    wait_signal_handlers(proc)
    assert wait_until(lambda: fresh_server.hits("/hang/") == 3, timeout=15)
    proc.send_signal(signal.SIGINT)
    out, err = wait_exit(proc)
    assert proc.returncode == 130, err
    assert Counter(r["outcome"] for r in parse_jsonl(out)) == {"cancelled": 3}
    assert not list(out_dir.glob("part-*.jsonl"))
    assert not list(out_dir.glob(".*.tmp"))


def test_partitions_depend_on_the_input_alone_and_keep_a_host_in_one_bucket() -> None:
    urls = [f"http://host{i % 5}.test/{i}" for i in range(40)]
    first, second = Partitioner(3, 8), Partitioner(3, 8)
    targets = [fetchpool.Target(url, "-", n) for n, url in enumerate(urls, 1)]
    assert [first.assign(t) for t in targets] == [second.assign(t) for t in targets]
    buckets: dict[str, set[int]] = {}
    for target in targets:
        host = target.url.split("/")[2]
        buckets.setdefault(host, set()).add(first.bucket_of(target))
    assert all(len(b) == 1 for b in buckets.values())


def test_fetch_batch_returns_one_result_per_url_in_input_order(server: HTTPTestServer) -> None:
    urls = [server.url("/delay/300/a"), server.url("/status/404/b"), "nope", server.url("/ok/c")]
    results = fetchpool.fetch_batch(urls, workers=4, timeout=10)
    assert [r.url for r in results] == urls
    assert [r.status for r in results] == [200, 404, None, 200]
    assert [r.line for r in results] == [1, 2, 3, 4]


def test_fetch_columns_answers_a_batch_of_rows_with_columns_of_results(
    server: HTTPTestServer,
) -> None:
    batch = {"url": [server.url("/ok/col"), server.url("/status/500/col")]}
    columns = fetchpool.fetch_columns(batch, workers=2, retries=0)
    assert columns["url"] == batch["url"]
    assert columns["outcome"] == ["ok", "fail"]
    assert columns["status"] == [200, 500]
    assert columns["kind"] == [None, "http"]


@pytest.mark.parametrize("option", ["--extract", "--recursive"])
def test_output_dir_with_link_checking_or_a_crawl_is_a_usage_error(
    option: str, tmp_path: Path
) -> None:
    # Link checking reports places, and a crawl finds its pages by fetching them: neither is
    # a list of URLs whose partitions a rerun could read back.
    source = "http://127.0.0.1:9/" if option == "--recursive" else str(tmp_path / "doc.md")
    (tmp_path / "doc.md").write_text("[a](http://127.0.0.1:9/)\n", encoding="utf-8")
    proc = run_fetchpool("--output-dir", tmp_path / "out", option, source)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == b""
    assert f"--output-dir does not work with {option}".encode() in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_cancelled_partitioned_run_reports_the_sources_leftovers_cancelled(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    # It read two lines it never handed out.
    source = StalledSource(
        Target(server.url("/hang/left")),
        [Target(server.url("/ok/left/1")), Target(server.url("/ok/left/2"))],
    )

    async def scenario() -> list[Result]:
        out_dir = OutputDir(tmp_path / "out", size=3, buckets=8)
        async with PartitionedPool(Pool(Settings(workers=2, timeout=30)), out_dir) as pool:
            results = Channel[Result](2)
            task = asyncio.create_task(pool.run(source, results))
            await asyncio.sleep(0.3)
            pool.cancel("interrupted by test")
            got = [result async for result in results]
            await task
            assert pool.read_count == 1
            return got

    results = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert sorted(r.url for r in results) == sorted(
        server.url(p) for p in ("/hang/left", "/ok/left/1", "/ok/left/2")
    )
    assert all(r.outcome is Outcome.CANCELLED for r in results)
    assert not list((tmp_path / "out").glob("part-*.jsonl"))
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_closing_the_receive_side_stops_a_partitioned_run_at_once(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    async def scenario() -> tuple[float, str | None]:
        async def source() -> AsyncIterator[Target]:
            for i in range(20):
                yield Target(server.url(f"/hang/closed/{i}"))

        out_dir = OutputDir(tmp_path / "out", size=3, buckets=8)
        async with PartitionedPool(Pool(Settings(workers=4, timeout=30)), out_dir) as pool:
            results = Channel[Result](4)
            task = asyncio.create_task(pool.run(source(), results))
            await asyncio.sleep(0.3)  # every worker waits on a hanging URL
            loop = asyncio.get_running_loop()
            started = loop.time()
            results.close_receive()
            await task
            return loop.time() - started, pool.cancelled

    elapsed, reason = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert elapsed < 2
    assert reason == "results are no longer read"
    assert not list((tmp_path / "out").glob("part-*.jsonl"))
