"""The resolver's own rules, with backends whose answers the test controls.

These are narrow unit tests of `Resolver` (sharing, caching, pacing, cancellation) and of
`ThreadBackend` (daemon threads that never keep the process alive). The real thing, c-ares
and getaddrinfo against a DNS server of the suite's own in a private network namespace, is
in test_dns.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx
import pytest
from httpserver import HTTPTestServer

from fetchpool import Kind
from fetchpool._classify import classify
from fetchpool._transport import Resolver, ThreadBackend, lookup_in_progress
from fetchpool._transport._resolver import Address, Done, resolver_timing

T = TypeVar("T")
LOCAL: list[Address] = [(socket.AF_INET, ("127.0.0.1", 0))]


def run(coro: Awaitable[T], timeout: float = 10) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


class ManualBackend:
    """Records each lookup; the test answers them when it likes (from any thread)."""

    name = "manual"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.done: dict[str, Done] = {}

    def start(self, host: str, done: Done) -> float | None:
        self.started.append(host)
        self.done[host] = done
        return None

    def answer(self, host: str, addrs: list[Address] = LOCAL) -> None:
        self.done[host](addrs, None)

    def fail(self, host: str, code: int, text: str) -> None:
        self.done[host](None, socket.gaierror(code, text))

    def close(self) -> None:
        pass


async def until(predicate: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


def test_concurrent_lookups_of_one_host_share_one_and_the_answer_is_kept() -> None:
    backend = ManualBackend()

    async def scenario() -> None:
        resolver = Resolver(backend)
        waiters = [asyncio.create_task(resolver.resolve("a.test")) for _ in range(50)]
        await until(lambda: backend.started)
        backend.answer("a.test")
        assert [await w for w in waiters] == [LOCAL] * 50
        assert await resolver.resolve("a.test") == LOCAL
        assert resolver.cached("a.test") == LOCAL

    run(scenario())
    assert backend.started == ["a.test"]


def test_no_such_name_is_kept_for_the_run_but_a_temporary_failure_is_asked_again() -> None:
    backend = ManualBackend()

    async def scenario() -> None:
        resolver = Resolver(backend)
        for host, code in (("nx.test", socket.EAI_NONAME), ("again.test", socket.EAI_AGAIN)):
            for _ in range(2):
                task = asyncio.create_task(resolver.resolve(host))
                await until(lambda h=host, t=task: t.done() or h in backend.done)
                if not task.done():
                    backend.fail(host, code, "no")
                    backend.done.pop(host)
                with pytest.raises(socket.gaierror) as info:
                    await task
                assert info.value.errno == code

    run(scenario())
    assert backend.started == ["nx.test", "again.test", "again.test"]


def test_a_cancelled_waiter_leaves_the_shared_lookup_to_the_others() -> None:
    backend = ManualBackend()

    async def scenario() -> None:
        resolver = Resolver(backend)
        seen: list[str | None] = []

        async def impatient() -> None:
            try:
                await resolver.resolve("a.test")
            finally:
                seen.append(lookup_in_progress.get())

        first = asyncio.create_task(impatient())
        second = asyncio.create_task(resolver.resolve("a.test"))
        await until(lambda: backend.started)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The cancelled task can tell that it was cut off in DNS.
        assert seen == ["a.test"]
        backend.answer("a.test")
        assert await second == LOCAL

    run(scenario())
    assert backend.started == ["a.test"]


def test_a_lookup_that_never_answers_does_not_hold_up_other_hosts() -> None:
    backend = ManualBackend()

    async def scenario() -> float:
        # Room for one lookup at a time: the dead one stops counting after 50 ms.
        resolver = Resolver(backend, max_active=1, slow_after=0.05)
        dead = asyncio.create_task(resolver.resolve("dead.test"))
        await until(lambda: backend.started)
        start = time.monotonic()
        alive = asyncio.create_task(resolver.resolve("alive.test"))
        await until(lambda: "alive.test" in backend.done)
        backend.answer("alive.test")
        assert await alive == LOCAL
        dead.cancel()
        return time.monotonic() - start

    waited = run(scenario())
    assert backend.started == ["dead.test", "alive.test"]
    assert waited < 1.0


def test_a_burst_of_names_is_sent_at_most_max_active_at_once() -> None:
    backend = ManualBackend()

    async def scenario() -> None:
        resolver = Resolver(backend, max_active=4, slow_after=60)
        tasks = [asyncio.create_task(resolver.resolve(f"h{i}.test")) for i in range(10)]
        await until(lambda: len(backend.started) == 4)
        await asyncio.sleep(0.01)
        assert len(backend.started) == 4
        for i in range(10):
            await until(lambda i=i: f"h{i}.test" in backend.done)
            backend.answer(f"h{i}.test")
        assert [await t for t in tasks] == [LOCAL] * 10

    run(scenario())


def test_a_queued_lookup_nobody_waits_for_is_never_sent() -> None:
    backend = ManualBackend()

    async def scenario() -> None:
        resolver = Resolver(backend, max_active=1, slow_after=60)
        busy = asyncio.create_task(resolver.resolve("busy.test"))
        queued = asyncio.create_task(resolver.resolve("queued.test"))
        await until(lambda: backend.started)
        await asyncio.sleep(0.01)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        backend.answer("busy.test")
        await busy
        await asyncio.sleep(0.01)

    run(scenario())
    assert backend.started == ["busy.test"]


def test_the_backend_is_made_at_the_first_lookup_only() -> None:
    made: list[ManualBackend] = []

    def factory() -> ManualBackend:
        made.append(ManualBackend())
        return made[-1]

    async def scenario() -> None:
        resolver = Resolver(factory)
        assert made == []
        task = asyncio.create_task(resolver.resolve("a.test"))
        await until(lambda: made and made[0].started)
        made[0].answer("a.test")
        await task

    run(scenario())
    assert len(made) == 1


@pytest.fixture
def stuck_getaddrinfo(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """`socket.getaddrinfo` hangs for names starting with "stuck" until the event is set, then
    fails; other names are 127.0.0.1."""
    release = threading.Event()

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host.startswith("stuck"):
            release.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield release
    release.set()


def test_thread_backend_answers_other_hosts_while_lookups_are_stuck(
    stuck_getaddrinfo: threading.Event,
) -> None:
    release = stuck_getaddrinfo
    backend = ThreadBackend()

    async def scenario() -> None:
        resolver = Resolver(backend)
        stuck = [asyncio.create_task(resolver.resolve(f"stuck{i}.test")) for i in range(20)]
        async with asyncio.timeout(2):
            assert await resolver.resolve("fine.test") == LOCAL
        release.set()
        for task in stuck:
            with pytest.raises(socket.gaierror):
                await task

    try:
        run(scenario())
    finally:
        release.set()
        backend.close()
    assert backend.threads <= 21


def test_a_stuck_system_lookup_does_not_keep_the_process_alive() -> None:
    # A child whose getaddrinfo never returns: it must exit as soon as its work is done.
    script = textwrap.dedent(
        """
        import asyncio, socket, sys, time
        from fetchpool._transport import Resolver, ThreadBackend
        socket.getaddrinfo = lambda *a, **k: time.sleep(60)

        async def main():
            resolver = Resolver(ThreadBackend())
            try:
                async with asyncio.timeout(0.2):
                    await resolver.resolve("stuck.test")
            except TimeoutError:
                print("timed out", flush=True)

        asyncio.run(main())
        """
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    elapsed = time.monotonic() - start
    assert proc.stdout == "timed out\n", proc.stderr
    assert proc.returncode == 0
    assert elapsed < 5, elapsed  # not the 60 s the lookup thread is stuck for


def test_a_run_with_only_ip_addresses_never_starts_a_resolver() -> None:
    # The child counts every resolver backend made: an IP-only run must make none, and so
    # neither starts threads nor imports a resolver library.
    script = textwrap.dedent(
        """
        import asyncio, sys
        import fetchpool
        import fetchpool._transport._resolver as resolver

        made = []
        real = resolver.make_backend
        resolver.make_backend = lambda: made.append(1) or real()

        async def main():
            async for r in fetchpool.fetch(["http://127.0.0.1:9/"], retries=0, timeout=2):
                print(r.kind.value)

        asyncio.run(main())
        print(len(made), "pycares" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout.split() == ["connect", "0", "False"], proc.stderr


class FixedBackend:
    """Answers `web.test` with 127.0.0.1 at once; any other name does not exist."""

    name = "fixed"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def start(self, host: str, done: Done) -> None:
        self.asked.append(host)
        if host == "web.test":
            done(LOCAL, None)
        else:
            done(None, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))

    def close(self) -> None:
        pass


def test_httpx_own_transport_resolves_through_the_run_resolver(server: HTTPTestServer) -> None:
    from fetchpool._transport._httpcore import use_resolver

    backend = FixedBackend()

    async def scenario() -> None:
        transport = httpx.AsyncHTTPTransport()
        use_resolver(transport, Resolver(backend))
        async with httpx.AsyncClient(transport=transport) as client:
            for i in range(3):
                response = await client.get(f"http://web.test:{server.port}/ok/h{i}")
                assert response.status_code == 200
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://nowhere.test:{server.port}/")
            assert classify(info.value, timeout=5).kind is Kind.DNS

    run(scenario())
    assert backend.asked == ["web.test", "nowhere.test"]


def test_when_every_thread_is_stuck_a_lookup_overflows_instead_of_waiting(
    stuck_getaddrinfo: threading.Event,
) -> None:
    release = stuck_getaddrinfo
    overflow = ManualBackend()
    backend = ThreadBackend(max_threads=2, overflow=lambda: overflow)

    async def scenario() -> None:
        resolver = Resolver(backend)
        stuck = [asyncio.create_task(resolver.resolve(f"stuck{i}.test")) for i in range(2)]
        await until(lambda: backend.threads == 2)
        alive = asyncio.create_task(resolver.resolve("alive.test"))
        await until(lambda: "alive.test" in overflow.done)
        overflow.answer("alive.test")
        assert await alive == LOCAL
        release.set()
        for task in stuck:
            with pytest.raises(socket.gaierror):
                await task

    try:
        run(scenario())
    finally:
        release.set()
        backend.close()
    assert overflow.started == ["alive.test"]
    assert backend.overflowed == 1


class BudgetBackend(ManualBackend):
    """Never answers, and asks the resolver to give up after 50 ms."""

    def start(self, host: str, done: Done) -> float | None:
        super().start(host, done)
        return 0.05


def test_a_lookup_past_its_budget_is_a_temporary_failure_asked_again_next_time() -> None:
    backend = BudgetBackend()

    async def scenario() -> None:
        resolver = Resolver(backend)
        for _ in range(2):
            with pytest.raises(socket.gaierror) as info:
                await resolver.resolve("slow.test")
            assert (info.value.errno, info.value.strerror) == (
                socket.EAI_AGAIN,
                "DNS lookup timed out",
            )

    run(scenario())
    assert backend.started == ["slow.test", "slow.test"]


@pytest.mark.parametrize(
    ("conf", "env", "expected"),
    [
        ("nameserver 127.0.0.1\n", "", (5.0, 2)),  # glibc's defaults
        ("options timeout:2 attempts:1\n", "", (2.0, 1)),
        ("options rotate timeout:3\noptions attempts:4\n", "", (3.0, 4)),
        ("options timeout:2\n", "timeout:7 attempts:3", (7.0, 3)),  # RES_OPTIONS wins
        ("options timeout:0 attempts:9\n", "", (1.0, 5)),  # glibc's bounds
    ],
)
def test_resolver_timing_reads_resolv_conf_as_glibc_does(
    tmp_path: Any, conf: str, env: str, expected: tuple[float, int]
) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text(conf)
    assert resolver_timing(str(path), {"RES_OPTIONS": env}) == expected


class HangingFirstAddress(httpcore.AsyncNetworkBackend):
    """An inner backend where the first address never answers and the second connects."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.tried.append(host)
        if host == "127.0.0.2":
            await asyncio.sleep(60)
        return "stream"


def test_httpx_transports_give_each_address_but_the_last_a_bounded_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fetchpool._transport import _httpcore

    monkeypatch.setattr(_httpcore, "ADDRESS_ATTEMPT_TIMEOUT", 0.05)
    answers: dict[str, list[Address]] = {
        "two.test": [(socket.AF_INET, ("127.0.0.2", 0)), (socket.AF_INET, ("127.0.0.1", 0))]
    }
    inner = HangingFirstAddress()

    async def scenario() -> Any:
        backend = _httpcore.ResolvingBackend(Resolver(StaticBackend(answers)), inner)
        async with asyncio.timeout(5):
            return await backend.connect_tcp("two.test", 80)

    assert run(scenario()) == "stream"
    assert inner.tried == ["127.0.0.2", "127.0.0.1"]


class StaticBackend:
    """Fixed answers, at once."""

    name = "static"

    def __init__(self, answers: dict[str, list[Address]]) -> None:
        self.answers = answers

    def start(self, host: str, done: Done) -> None:
        done(self.answers[host], None)

    def close(self) -> None:
        pass
