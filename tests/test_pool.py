"""The pool as a library: one result per URL, bounded input, drain at EOF, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable

import httpx
import pytest
from fetchhelpers import run
from httpserver import HTTPTestServer
from sources import StalledSource

import fetchpool
from fetchpool import Channel, Kind, Outcome, Pool, Result, Settings, Target


async def collect(urls: list[str], **options: object) -> list[Result]:
    return [r async for r in fetchpool.fetch(urls, **options)]  # type: ignore[arg-type]


def test_every_url_yields_exactly_one_result(server: HTTPTestServer) -> None:
    urls = [server.url(f"/ok/{i}") for i in range(50)] + [
        server.url("/status/404/x"),
        "ftp://nope",
        "not a url",
    ]
    results = run(collect(urls, workers=8, timeout=5))
    assert sorted(r.url for r in results) == sorted(urls)
    by_url = {r.url: r for r in results}
    assert by_url[server.url("/ok/3")].outcome is Outcome.OK
    assert by_url[server.url("/status/404/x")].kind is Kind.HTTP
    assert by_url["ftp://nope"].kind is Kind.INVALID


def test_library_does_not_import_typer_or_rich() -> None:
    code = (
        "import sys, fetchpool, fetchpool._pool, fetchpool._fetch, fetchpool._source;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout


def test_public_api_is_deliberate() -> None:
    assert set(fetchpool.__all__) == {
        "BrokenResourceError",
        "Channel",
        "ClosedResourceError",
        "EndOfChannel",
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
        "TargetSource",
        "UsageError",
        "WouldBlock",
        "__version__",
        "check_url",
        "fetch",
        "fetch_batch",
        "fetch_columns",
        "make_client",
        "open_inputs",
        "parse_line",
    }
    for name in fetchpool.__all__:
        assert getattr(fetchpool, name) is not None


def test_results_are_frozen_values(server: HTTPTestServer) -> None:
    (result,) = run(collect([server.url("/ok/frozen")], timeout=5))
    with pytest.raises(AttributeError):
        result.status = 500  # type: ignore[misc]
    assert not hasattr(result, "__dict__")


def test_workers_bound_the_requests_in_flight(fresh_server: HTTPTestServer) -> None:
    urls = [fresh_server.url(f"/delay/50/{i}") for i in range(40)]
    results = run(collect(urls, workers=4, timeout=5))
    assert all(r.ok for r in results)
    assert fresh_server.max_open_connections <= 4


def test_one_shared_client_reuses_connections(fresh_server: HTTPTestServer) -> None:
    urls = [fresh_server.url(f"/ok/{i}") for i in range(30)]
    results = run(collect(urls, workers=2, timeout=5))
    assert all(r.ok for r in results)
    assert len(fresh_server.requests) == 30
    assert fresh_server.connections_total <= 2


def test_input_is_read_lazily_with_backpressure(server: HTTPTestServer) -> None:
    pulled = 0

    async def urls() -> AsyncIterator[str]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield server.url(f"/delay/200/{i}")

    async def scenario() -> int:
        async for _ in fetchpool.fetch(urls(), workers=2, timeout=5):
            break  # after the first result, far fewer than 1000 were pulled
        return pulled

    assert run(scenario()) <= 10


def test_deadline_cuts_off_a_trickling_server(server: HTTPTestServer) -> None:
    (result,) = run(collect([server.url("/trickle")], timeout=0.5, retries=0))
    assert result.kind is Kind.TIMEOUT
    assert result.error == "timed out after 0.5 s"
    assert result.status == 200  # what was seen before the deadline is kept
    assert 0.4 < result.elapsed < 3


def test_body_reading_stops_after_one_mib(server: HTTPTestServer) -> None:
    (result,) = run(collect([server.url("/bytes/10000000000")], timeout=10))
    assert result.outcome is Outcome.OK
    assert 1024 * 1024 <= result.bytes_read < 2 * 1024 * 1024


def test_a_connection_cut_off_at_the_body_cap_is_not_reused(fresh_server: HTTPTestServer) -> None:
    urls = [fresh_server.url("/bytes/10000000000/capped"), fresh_server.url("/ok/after")]
    results = run(collect(urls, workers=1, timeout=10))
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    # The rest of the capped body was never read, so the next URL needed a new connection.
    assert fresh_server.connections_total == 2


def test_an_exception_while_fetching_becomes_a_fail_and_the_worker_lives_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom":
            raise RuntimeError("boom")
        return httpx.Response(200, text="ok")

    async def scenario() -> list[Result]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client:
            urls = ["http://mock.test/boom", *(f"http://mock.test/{i}" for i in range(5))]
            return [r async for r in fetchpool.fetch(urls, workers=1, client=client)]

    results = run(scenario())
    assert len(results) == 6
    assert results[0].outcome is Outcome.FAIL
    assert "boom" in (results[0].error or "")
    assert all(r.ok for r in results[1:])


async def cancel_after(
    targets: AsyncIterable[Target], seconds: float, *, workers: int
) -> tuple[list[Result], int]:
    """Run a pool over `targets`, cancel it after `seconds`; its results and targets read."""
    async with Pool(Settings(workers=workers, timeout=30)) as pool:
        results = Channel[Result](workers)
        task = asyncio.create_task(pool.run(targets, results))
        await asyncio.sleep(seconds)
        pool.cancel("interrupted by test")
        collected = [r async for r in results]
        await task
        return collected, pool.read_count


def test_cancel_reports_every_unfinished_target_as_cancelled(server: HTTPTestServer) -> None:
    targets = [Target(server.url(f"/hang/{i}"), "list", i + 1) for i in range(20)]

    async def source() -> AsyncIterator[Target]:
        for t in targets:
            yield t

    results, read = run(cancel_after(source(), 0.3, workers=4), timeout=10)
    assert len(results) == read
    assert 4 <= read < 20  # the reader stopped; input not read stays unread
    assert {r.url for r in results} == {t.url for t in targets[:read]}
    assert all(r.outcome is Outcome.CANCELLED for r in results)
    assert all(r.error == "interrupted by test" for r in results)
    assert all(r.kind is Kind.CANCELLED for r in results)


def test_a_sources_leftovers_are_reported_cancelled(server: HTTPTestServer) -> None:
    # It read two lines it never handed out.
    source = StalledSource(
        Target(server.url("/hang/left")),
        [Target(server.url("/ok/left/1")), Target(server.url("/ok/left/2"))],
    )
    results, _ = run(cancel_after(source, 0.3, workers=2), timeout=10)
    assert sorted(r.url for r in results) == sorted(
        server.url(p) for p in ("/hang/left", "/ok/left/1", "/ok/left/2")
    )
    assert all(r.outcome is Outcome.CANCELLED for r in results)


def test_closing_the_receive_side_stops_the_pool_at_once(server: HTTPTestServer) -> None:
    async def scenario() -> float:
        async def source() -> AsyncIterator[Target]:
            for i in range(20):
                yield Target(server.url(f"/hang/closed/{i}"))

        async with Pool(Settings(workers=4, timeout=30)) as pool:
            results = Channel[Result](4)
            task = asyncio.create_task(pool.run(source(), results))
            await asyncio.sleep(0.3)  # every worker waits on a hanging URL
            started = asyncio.get_running_loop().time()
            results.close_receive()
            await task
            assert pool.cancelled == "results are no longer read"
            return asyncio.get_running_loop().time() - started

    assert run(scenario(), timeout=10) < 2


def test_eof_drains_every_queued_and_in_flight_url(server: HTTPTestServer) -> None:
    urls = [server.url(f"/delay/100/{i}") for i in range(12)]
    results = run(collect(urls, workers=3, timeout=5))
    assert len(results) == 12
    assert all(r.ok for r in results)


def test_breaking_out_of_fetch_cancels_in_flight_work(fresh_server: HTTPTestServer) -> None:
    urls = [fresh_server.url("/ok/first")] + [fresh_server.url(f"/hang/b{i}") for i in range(5)]

    async def until(condition: Callable[[], bool]) -> bool:
        for _ in range(100):
            if condition():
                return True
            await asyncio.sleep(0.02)
        return condition()

    async def scenario() -> Result:
        fetched = fetchpool.fetch(urls, workers=6, timeout=30)
        async with contextlib.aclosing(fetched) as results:
            first = await anext(results)
            assert await until(lambda: fresh_server.hits("/hang/") == 5)
        # Closed: the pool's tasks are gone and the hanging connections dropped.
        me = asyncio.current_task()
        assert [task for task in asyncio.all_tasks() if task is not me] == []
        assert await until(lambda: fresh_server.open_connections == 0)
        return first

    assert run(scenario(), timeout=5).ok


def test_per_host_limit_does_not_stall_other_hosts(server: HTTPTestServer) -> None:
    # Two hosts on one server: 127.0.0.1 (slow URLs first) and localhost (fast).
    slow = [server.url(f"/delay/400/s{i}") for i in range(8)]
    fast = [server.url(f"/ok/f{i}").replace("127.0.0.1", "localhost") for i in range(8)]

    async def scenario() -> list[Result]:
        return [r async for r in fetchpool.fetch(slow + fast, workers=4, per_host=1, timeout=10)]

    results = run(scenario())
    assert len(results) == 16
    # Every fast URL finished before the second slow one: a busy host did not block the pool.
    order = [r.url for r in results]
    second_slow = [i for i, u in enumerate(order) if "/delay/" in u][1]
    assert all(order.index(u) < second_slow for u in fast)
