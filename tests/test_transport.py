"""FastTransport through httpx.AsyncClient against a raw-socket HTTP/1.1 server on 127.0.0.1.

The server is the suite's `HTTPTestServer`, fresh for each test and given this file's routes,
so each test controls the exact bytes on the wire and can count connections; every test runs
its own event loop (stdlib asyncio, and uvloop where installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest
import trustme
from httpserver import HTTPTestServer, Route, ServerConnection, ServerRequest

from fetchpool._transport import FastTransport, Resolver
from fetchpool._transport._parser import PLAIN_FIELDS as _PLAIN_FIELDS
from fetchpool._transport._parser import parse_fields as _parse_fields
from fetchpool._transport._parser import parse_fields_fully as _parse_fields_fully

LOOPS = ["asyncio"]
try:
    import uvloop

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover - uvloop is an optional extra
    uvloop = None  # type: ignore[assignment]

BIG = 4 * 1024 * 1024


def run(coro: Coroutine[Any, Any, Any], loop: str = "asyncio") -> Any:
    """Run one scenario in a fresh loop, bounded so a deadlock fails instead of hanging."""

    async def bounded() -> Any:
        async with asyncio.timeout(20):
            return await coro

    if loop == "uvloop":
        assert uvloop is not None
        return uvloop.run(bounded())
    return asyncio.run(bounded())


ROUTES: dict[str, Route] = {}
"""This file's routes: each writes exact bytes; True closes the connection after."""


@contextlib.asynccontextmanager
async def raw_server(**options: Any) -> AsyncIterator[HTTPTestServer]:
    """A fresh `HTTPTestServer` that answers this file's routes (its counts start at 0)."""
    with HTTPTestServer(routes=ROUTES, **options) as server:
        yield server


async def wait_all_closed(server: HTTPTestServer) -> None:
    async with asyncio.timeout(5):
        while server.open_connections:
            await asyncio.sleep(0.01)


def route(path: str) -> Callable[[Route], Route]:
    """Register the decorated function as the route for `path`."""

    def register(fn: Route) -> Route:
        ROUTES[path] = fn
        return fn

    return register


def fixed_route(path: str, payload: bytes) -> None:
    """Register a route that writes `payload` and keeps the connection."""

    async def fixed(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
        conn.writer.write(payload)
        await conn.writer.drain()
        return False

    ROUTES[path] = fixed


fixed_route("/cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")
fixed_route("/204", b"HTTP/1.1 204 No Content\r\n\r\n")
fixed_route("/reason", b"HTTP/1.1 299 Tr\xe8s Bien\r\nContent-Length: 0\r\n\r\n")
fixed_route(
    "/continue", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
)
fixed_route("/lf-only", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
fixed_route("/garbage", b"SPAM AND EGGS\r\n\r\n")
fixed_route("/bad-length", b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
fixed_route("/huge-head", b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70000 + b"\r\n\r\n")


@route("/head")
async def _head(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    body = b"" if req.method == "HEAD" else b"hello"
    conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body)
    return False


@route("/chunked")
async def _chunked(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    w = conn.writer
    w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel")
    await w.drain()
    await asyncio.sleep(0.01)
    w.write(b"lo\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\n\r\n")
    return False


@route("/until-close")
async def _until_close(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    w = conn.writer
    w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfirst ")
    await w.drain()
    await asyncio.sleep(0.01)
    w.write(b"second")
    await w.drain()
    w.close()
    return True


@route("/http10")
async def _http10(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    conn.writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await conn.writer.drain()
    return True


@route("/big")
async def _big(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    w = conn.writer
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
    block = b"x" * 65536
    for _ in range(BIG // len(block)):
        w.write(block)
        await w.drain()
    return False


@route("/slow")
async def _slow(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    await asyncio.sleep(0.02)
    conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return False


@route("/hang")
async def _hang(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    # Silent until the client gives up and closes.
    with contextlib.suppress(ConnectionError):
        await conn.reader.read()
    return True


@route("/eof")
async def _eof(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    return True


@route("/reset")
async def _reset(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    conn.reset()
    return True


@route("/cut-body")
async def _cut_body(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
    await conn.writer.drain()
    return True


@route("/close-when-idle")
async def _close_when_idle(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await conn.writer.drain()
    await asyncio.sleep(0.05)
    return True


@route("/drop-second")
async def _drop_second(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
    # A keep-alive server that times out its connection just as the next request arrives.
    if conn.served >= 2:
        return True
    conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return False


@contextlib.asynccontextmanager
async def client_for(**kwargs: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FastTransport]]:
    transport = FastTransport(**kwargs)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        yield client, transport


# -- keep-alive and pooling -------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_ten_sequential_requests_share_one_keep_alive_connection(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            for _ in range(10):
                r = await client.get(srv.base + "/cl")
                assert r.status_code == 200
                assert r.content == b"hello"
            assert srv.connections_total == 1
            assert transport.open_connections == 1
            assert transport.idle_connections == 1

    run(scenario(), loop)


@pytest.mark.parametrize("loop", LOOPS)
def test_concurrent_requests_never_exceed_max_connections(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(max_connections=50) as (client, transport):
            results = await asyncio.gather(*(client.get(srv.base + "/slow") for _ in range(200)))
            assert [r.status_code for r in results] == [200] * 200
            assert srv.max_open_connections <= 50
            assert srv.connections_total <= 50
            assert transport.open_connections <= 50

    run(scenario(), loop)


def test_waiting_for_a_free_connection_times_out_as_pool_timeout() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(max_connections=1) as (client, transport):
            async with client.stream("GET", srv.base + "/big"):
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(srv.base + "/cl", timeout=httpx.Timeout(5, pool=0.1))
            r = await client.get(srv.base + "/cl")
            assert r.status_code == 200
            assert transport.open_connections == 1

    run(scenario())


def test_idle_connections_hold_no_busy_slot_so_each_origin_keeps_one() -> None:
    async def scenario() -> None:
        async with raw_server() as a, raw_server() as b, client_for(max_connections=1) as (c, t):
            for _ in range(3):
                assert (await c.get(a.base + "/cl")).status_code == 200
                assert (await c.get(b.base + "/cl")).status_code == 200
            assert (a.connections_total, b.connections_total) == (1, 1)
            assert t.idle_connections == 2
            assert t.busy_connections == 0

    run(scenario())


def test_idle_budget_closes_the_least_recently_used_connection() -> None:
    async def scenario() -> None:
        async with (
            raw_server() as a,
            raw_server() as b,
            raw_server() as c,
            client_for(max_idle=2) as (client, t),
        ):
            for srv in (a, b, c):
                assert (await client.get(srv.base + "/cl")).status_code == 200
            assert t.idle_connections == 2
            await wait_all_closed(a)  # a's was the least recently used
            assert (await client.get(c.base + "/cl")).status_code == 200
            assert c.connections_total == 1

    run(scenario())


def test_connection_idle_past_keepalive_expiry_is_not_reused() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(keepalive_expiry=0.05) as (client, t):
            assert (await client.get(srv.base + "/cl")).status_code == 200
            await asyncio.sleep(0.1)
            assert (await client.get(srv.base + "/cl")).status_code == 200
            assert srv.connections_total == 2
            assert t.open_connections == 1

    run(scenario())


def test_connection_closed_by_server_while_idle_leaves_the_pool() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            assert (await client.get(srv.base + "/close-when-idle")).status_code == 200
            await wait_all_closed(srv)
            await asyncio.sleep(0.05)
            assert transport.idle_connections == 0
            assert transport.open_connections == 0
            assert (await client.get(srv.base + "/cl")).status_code == 200

    run(scenario())


def test_stale_keep_alive_connection_is_retried_once_on_a_new_one() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            assert (await client.get(srv.base + "/drop-second")).content == b"ok"
            assert (await client.get(srv.base + "/drop-second")).content == b"ok"
            assert srv.connections_total == 2

    run(scenario())


def test_max_idle_per_host_closes_extra_idle_connections() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(max_idle_per_host=2) as (client, transport):
            await asyncio.gather(*(client.get(srv.base + "/slow") for _ in range(5)))
            assert transport.idle_connections == 2
            assert transport.open_connections == 2

    run(scenario())


# -- bodies and framing -----------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_chunked_body_with_extensions_and_trailers_is_decoded(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            for _ in range(2):
                r = await client.get(srv.base + "/chunked")
                assert r.content == b"hello, world!!!"
            assert srv.connections_total == 1

    run(scenario(), loop)


def test_close_delimited_body_is_read_to_the_end_and_not_reused() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            r = await client.get(srv.base + "/until-close")
            assert r.content == b"first second"
            assert transport.open_connections == 0
            r = await client.get(srv.base + "/http10")
            assert r.content == b"ok"
            assert r.extensions["http_version"] == b"HTTP/1.0"
            assert transport.open_connections == 0

    run(scenario())


def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            r = await client.head(srv.base + "/head")
            assert r.status_code == 200
            assert r.headers["content-length"] == "5"
            assert r.content == b""
            r = await client.get(srv.base + "/204")
            assert r.status_code == 204
            assert r.content == b""
            assert (await client.get(srv.base + "/head")).content == b"hello"
            assert srv.connections_total == 1

    run(scenario())


def test_informational_response_is_skipped_and_reason_phrase_kept_raw() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            r = await client.get(srv.base + "/continue")
            assert (r.status_code, r.content) == (200, b"ok")
            r = await client.get(srv.base + "/reason")
            assert r.status_code == 299
            assert r.extensions["reason_phrase"] == b"Tr\xe8s Bien"
            assert r.extensions["http_version"] == b"HTTP/1.1"
            r = await client.get(srv.base + "/lf-only")
            assert r.content == b"ok"

    run(scenario())


def test_request_line_host_and_body_are_sent() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            r = await client.post(srv.base + "/cl?q=1", content=b"payload")
            assert r.status_code == 200
            head = srv.heads[-1]
            assert head.startswith(b"POST /cl?q=1 HTTP/1.1\r\n")
            assert f"Host: 127.0.0.1:{srv.port}".encode() in head
            assert b"Content-Length: 7" in head
            assert (await client.get(srv.base + "/cl")).status_code == 200
            assert srv.connections_total == 1

    run(scenario())


def test_request_head_is_exactly_what_the_request_says() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (_client, transport):
            url = srv.base + "/cl?a=1&b=%20"
            no_body = httpx.ByteStream(b"")
            headers = [("X-One", "1"), ("x-two", "a, b"), ("Accept", "*/*")]
            # Without a Host header (a request built with stream=): the transport adds it, first.
            request = httpx.Request("GET", url, headers=headers, stream=no_body)
            await (await transport.handle_async_request(request)).aread()
            assert (
                srv.heads[-1]
                == (
                    f"GET /cl?a=1&b=%20 HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                    "X-One: 1\r\nx-two: a, b\r\nAccept: */*\r\n\r\n"
                ).encode()
            )
            # A Host header of any case is kept, and not sent twice.
            request = httpx.Request("HEAD", url, headers=[("hOsT", "vhost.test")], stream=no_body)
            await (await transport.handle_async_request(request)).aread()
            assert srv.heads[-1] == b"HEAD /cl?a=1&b=%20 HTTP/1.1\r\nhOsT: vhost.test\r\n\r\n"
            second = [("X-Host", "h"), ("Host", "v.test")]
            request = httpx.Request("GET", srv.base + "/cl", headers=second, stream=no_body)
            await (await transport.handle_async_request(request)).aread()
            assert srv.heads[-1] == b"GET /cl HTTP/1.1\r\nX-Host: h\r\nHost: v.test\r\n\r\n"
            # No headers at all.
            request = httpx.Request("GET", srv.base + "/cl", stream=no_body)
            await (await transport.handle_async_request(request)).aread()
            host = f"Host: 127.0.0.1:{srv.port}".encode()
            assert srv.heads[-1] == b"GET /cl HTTP/1.1\r\n" + host + b"\r\n\r\n"

    run(scenario())


def test_a_body_given_as_a_byte_stream_is_sent_with_its_length() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            request = httpx.Request("POST", srv.base + "/cl", stream=httpx.ByteStream(b"xyz"))
            await (await transport.handle_async_request(request)).aread()
            assert srv.heads[-1].endswith(b"\r\nContent-Length: 3\r\n\r\n")
            assert srv.bodies[-1] == b"xyz"
            # A length given by the caller is kept, not doubled.
            headers = [("Content-Length", "3")]
            request = httpx.Request(
                "PUT", srv.base + "/cl", headers=headers, stream=httpx.ByteStream(b"abc")
            )
            await (await transport.handle_async_request(request)).aread()
            assert srv.heads[-1].lower().count(b"content-length") == 1
            assert srv.bodies[-1] == b"abc"
            # The connection stayed in step: the next request is read as a request.
            assert (await client.get(srv.base + "/cl")).status_code == 200
            assert srv.connections_total == 1

    run(scenario())


@pytest.mark.parametrize(
    "header",
    [("X-Evil", "a\r\nInjected: yes"), ("X-Evil", "a\nb"), ("X-Evil", "a\rb"), ("X-Ev\nil", "a")],
)
def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    header: tuple[str, str],
) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, _transport):
            with pytest.raises(httpx.LocalProtocolError, match="line break"):
                await client.get(srv.base + "/cl", headers=[header])
            assert srv.heads == []

    run(scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_large_body_streams_in_chunks(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            total = 0
            pieces = 0
            async with client.stream("GET", srv.base + "/big") as r:
                async for chunk in r.aiter_raw():
                    total += len(chunk)
                    pieces += 1
            assert total == BIG
            assert pieces > 1
            assert transport.idle_connections == 1

    run(scenario(), loop)


# -- early close and cancellation -------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_closing_a_response_early_closes_the_connection_instead_of_reusing_it(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            async with client.stream("GET", srv.base + "/big") as r:
                async for _ in r.aiter_raw():
                    break
            assert transport.open_connections == 0
            assert (await client.get(srv.base + "/cl")).content == b"hello"
            assert srv.connections_total == 2

    run(scenario(), loop)


def test_response_that_fully_arrived_is_reusable_even_if_never_read() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            for _ in range(3):
                async with client.stream("GET", srv.base + "/cl") as r:
                    await asyncio.sleep(0.02)  # the 5-byte body is in by now, unread
                    assert r.status_code == 200
            assert srv.connections_total == 1
            assert transport.idle_connections == 1

    run(scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelled_request_mid_body_leaks_no_connection(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(max_connections=2) as (client, transport):

            async def read_forever() -> None:
                async with client.stream("GET", srv.base + "/big") as r:
                    async for _ in r.aiter_raw():
                        await asyncio.sleep(0.01)

            async def wait_head() -> None:
                await client.get(srv.base + "/hang")

            for fn in (read_forever, wait_head, read_forever):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await fn()
            assert transport.open_connections == 0
            await wait_all_closed(srv)
            assert (await client.get(srv.base + "/cl")).status_code == 200

    run(scenario(), loop)


def test_cancelled_waiter_for_a_slot_leaks_no_slot() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for(max_connections=1) as (client, transport):
            async with client.stream("GET", srv.base + "/big"):
                waiter = asyncio.create_task(client.get(srv.base + "/cl"))
                await asyncio.sleep(0.05)
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
            assert transport.open_connections == 0
            assert (await client.get(srv.base + "/cl")).status_code == 200

    run(scenario())


def test_aclose_closes_every_connection() -> None:
    async def scenario() -> None:
        async with raw_server() as srv:
            async with client_for() as (client, transport):
                await asyncio.gather(*(client.get(srv.base + "/slow") for _ in range(5)))
                assert transport.open_connections == 5
            assert transport.open_connections == 0
            await wait_all_closed(srv)

    run(scenario())


# -- errors -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_is_connect_error() -> None:
    async def scenario() -> None:
        async with client_for() as (client, transport):
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://127.0.0.1:{_free_port()}/")
            assert isinstance(info.value.__cause__, ConnectionRefusedError)
            assert transport.open_connections == 0

    run(scenario())


class StubBackend:
    """A resolver backend with fixed answers (a narrow unit test of the transport's side)."""

    name = "stub"

    def __init__(self, answers: dict[str, list[tuple[int, tuple[Any, ...]]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def start(self, host: str, done: Any) -> None:
        self.asked.append(host)
        if host in self.answers:
            done(self.answers[host], None)
        else:
            done(None, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))

    def close(self) -> None:
        pass


def test_dns_failure_is_connect_error_caused_by_gaierror() -> None:
    async def scenario() -> None:
        resolver = Resolver(StubBackend({}))
        async with client_for(resolver=resolver) as (client, transport):
            with pytest.raises(httpx.ConnectError) as info:
                await client.get("http://no-such-host.invalid/")
            assert isinstance(info.value.__cause__, socket.gaierror)
            assert transport.open_connections == 0

    run(scenario())


def test_unreachable_first_address_falls_back_to_the_next() -> None:
    async def scenario() -> None:
        async with raw_server() as srv:
            refused = ("127.0.0.1", _free_port())
            working = ("127.0.0.1", srv.port)
            # The ports in the answer are ignored: each address is tried on the URL's port.
            backend = StubBackend(
                {"two.test": [(socket.AF_INET, refused), (socket.AF_INET, working)]}
            )
            async with client_for(resolver=Resolver(backend)) as (client, transport):
                r = await client.get(f"http://two.test:{srv.port}/cl")
                assert r.content == b"hello"
                assert transport.open_connections == 1

    run(scenario())


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        ("/garbage", httpx.RemoteProtocolError, "not HTTP"),
        ("/bad-length", httpx.RemoteProtocolError, "Content-Length"),
        ("/huge-head", httpx.RemoteProtocolError, "too large"),
        ("/eof", httpx.RemoteProtocolError, "without sending a response"),
        ("/cut-body", httpx.RemoteProtocolError, "end of the body"),
    ],
)
def test_malformed_or_cut_responses_raise_remote_protocol_error(
    path: str, error: type[Exception], text: str
) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            with pytest.raises(error, match=text):
                await client.get(srv.base + path)
            assert transport.open_connections == 0
            assert (await client.get(srv.base + "/cl")).status_code == 200

    run(scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_reset_before_the_response_is_a_read_error(loop: str) -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as info:
                await client.get(srv.base + "/reset")
            if isinstance(info.value, httpx.ReadError):
                assert isinstance(info.value.__cause__, ConnectionResetError)
            assert transport.open_connections == 0

    run(scenario(), loop)


def test_silent_server_raises_read_timeout() -> None:
    async def scenario() -> None:
        async with raw_server() as srv, client_for() as (client, transport):
            with pytest.raises(httpx.ReadTimeout):
                await client.get(srv.base + "/hang", timeout=httpx.Timeout(5, read=0.1))
            assert transport.open_connections == 0

    run(scenario())


# -- addresses and TLS ------------------------------------------------------------------------


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="::1 is not configured")
def test_ipv6_literal_url_works() -> None:
    async def scenario() -> None:
        async with raw_server(host="::1") as srv, client_for() as (client, _transport):
            r = await client.get(srv.base + "/cl")
            assert r.content == b"hello"
            assert f"Host: [::1]:{srv.port}".encode() in srv.heads[-1]

    run(scenario())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_with_a_trusted_certificate_works_and_reuses_connections(
    ca: trustme.CA, loop: str
) -> None:
    async def scenario() -> None:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with (
            raw_server(ssl_context=_server_context(ca)) as srv,
            client_for(ssl_context=client_ctx) as (client, _transport),
        ):
            for _ in range(3):
                assert (await client.get(srv.base + "/cl")).content == b"hello"
            assert srv.connections_total == 1

    run(scenario(), loop)


def test_tls_with_an_untrusted_certificate_is_connect_error(ca: trustme.CA) -> None:
    async def scenario() -> None:
        async with (
            raw_server(ssl_context=_server_context(ca)) as srv,
            client_for(ssl_context=ssl.create_default_context()) as (client, transport),
        ):
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(srv.base + "/cl")
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
            assert transport.open_connections == 0

    run(scenario())


def test_tls_without_verification_accepts_an_untrusted_certificate(ca: trustme.CA) -> None:
    async def scenario() -> None:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        async with (
            raw_server(ssl_context=_server_context(ca)) as srv,
            client_for(ssl_context=insecure) as (client, _transport),
        ):
            assert (await client.get(srv.base + "/cl")).status_code == 200

    run(scenario())


# -- the header parser ----------------------------------------------------------------------------


def _header_blocks(count: int, seed: int = 3) -> list[bytes]:
    """Header blocks as servers send them, and as broken or odd ones do."""
    rng = random.Random(seed)
    names = [b"Content-Length", b"X-A", b"set-cookie", b"", b"Bad Name", b"T\tab", b"a@b", b"\x0c"]
    values = [b"5", b" 5 ", b"\t", b"", b"a:b", b"x\ry", b"text/html; charset=utf-8", b"\xff"]
    ends = [b"\r\n"] * 6 + [b"\n", b"\r\r\n"]
    blocks = []
    for _ in range(count):
        lines = []
        for _ in range(rng.randrange(1, 6)):
            if rng.random() < 0.08:
                line = rng.choice([b" folded", b"\tfolded", b"no colon", b":empty name"])
            else:
                line = rng.choice(names[:3] * 4 + names) + b":" + rng.choice(values)
            lines.append(line + rng.choice(ends))
        block = b"".join(lines)
        # The head ends before the blank line, so the last line keeps at most its CR.
        blocks.append(block[:-1] if block.endswith(b"\n") else block)
    return blocks


def _outcome(parse: Callable[[bytes], Any], block: bytes) -> Any:
    try:
        return parse(block)
    except httpx.RemoteProtocolError as exc:
        return ("error", str(exc))


def test_header_fast_path_agrees_with_the_line_by_line_parser() -> None:
    blocks = _header_blocks(5000)
    fast = [_outcome(_parse_fields, block) for block in blocks]
    assert fast == [_outcome(_parse_fields_fully, block) for block in blocks]
    plain = sum(_PLAIN_FIELDS.fullmatch(block) is not None for block in blocks)
    errors = sum(isinstance(result, tuple) for result in fast)
    assert plain > 500
    assert errors > 500  # both paths and both outcomes were exercised
    assert _parse_fields(b"A: 1\r\nB:2  \r") == [(b"A", b"1"), (b"B", b"2")]
