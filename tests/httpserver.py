"""A real HTTP/1.1 server for the test suite, written on raw asyncio streams so it can misbehave.

It runs its own event loop in a daemon thread on 127.0.0.1 and serves the routes listed in
`HTTPTestServer`'s docstring: well-behaved ones, slow and endless bodies, resets, garbage and
redirect chains, while counting requests and the peak number of open connections. A test that
needs exact bytes on the wire gives routes of its own (`routes=`, see `Route`), and reads each
request head and body as it came (`heads`, `bodies`): the one raw-socket server of the suite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import json
import random
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, unquote_to_bytes, urlsplit

from loopthread import STOP_TIMEOUT, LoopThreadServer

__all__ = [
    "ENCODED_ROUTES",
    "HTTPTestServer",
    "RecordedRequest",
    "Route",
    "ServerConnection",
    "ServerRequest",
    "closed_port",
    "encode_body",
    "gzip_zeros",
    "sample_body",
]

CHUNK_SIZE = 64 * 1024
_CHUNK = bytes(CHUNK_SIZE)
_HEAD_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server parsed it; `path` has no query string, `target` is raw."""

    method: str
    path: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


class _Reset(Exception):
    """Raised inside a route to abort the connection with a TCP RST."""


class _Close(Exception):
    """Raised inside a route to close the connection cleanly without (more) response bytes."""


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    version: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def segments(self) -> list[str]:
        return [unquote(s) for s in self.path.split("/")[1:]]

    def query_one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def wants_close(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" not in connection
        return "close" in connection


class _Conn:
    """One accepted connection: the streams plus how to end it abruptly."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head_only = False
        self.served = 0  # requests read on this connection so far

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            # Linger 0 makes close() send RST instead of FIN: the client sees a reset.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def send_head(
        self,
        status: int,
        headers: list[tuple[str, str]],
        *,
        reason: bytes | None = None,
        close: bool = False,
    ) -> None:
        if reason is None:
            reason = _reason(status).encode("latin-1")
        lines = [b"HTTP/1.1 %d " % status + reason]
        all_headers = [("Date", formatdate(usegmt=True)), ("Server", "fetchpool-test"), *headers]
        if close:
            all_headers.append(("Connection", "close"))
        lines += [f"{k}: {v}".encode() for k, v in all_headers]
        self.writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await self.writer.drain()

    async def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "text/plain; charset=utf-8",
        headers: list[tuple[str, str]] | None = None,
        reason: bytes | None = None,
        close: bool = False,
    ) -> None:
        """A complete response with Content-Length (no body on HEAD, 1xx, 204, 304)."""
        extra = list(headers or [])
        bodiless = status < 200 or status in (204, 304)
        if not bodiless:
            extra += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        await self.send_head(status, extra, reason=reason, close=close)
        if body and not bodiless and not self.head_only:
            self.writer.write(body)
            await self.writer.drain()

    async def wait_for_eof(self) -> None:
        """Wait until the client closes its side, discarding anything it sends."""
        while await self.reader.read(CHUNK_SIZE):
            pass


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _NotFound(f"bad {what}: {text!r}") from None


class _NotFound(Exception):
    pass


Route = Callable[["HTTPTestServer", _Conn, _Request], Awaitable[bool]]
"""`async def route(server, conn, request) -> bool`: answer on `conn.writer` (raw bytes, or
`conn.send()`); True closes the connection after."""
ServerConnection = _Conn
ServerRequest = _Request
"""A route answers one request and returns True when the connection must close afterwards."""


class HTTPTestServer(LoopThreadServer):
    """An HTTP/1.1 server on 127.0.0.1 (port 0) in a background thread, with misbehaving routes.

    Routes (`<x>` is any tag that makes a URL unique; it is ignored):

    - `/` small HTML; `/ok/<x>` 200 `ok\\n`; unknown paths 404.
    - `/status/<code>[/<x>]` that status, standard reason; `/reason/<code>?text=<pct>` that
      status with the raw, percent-decoded reason phrase bytes.
    - `/delay/<ms>[/<x>]` 200 after ms milliseconds.
    - `/bytes/<n>[/<x>]` n bytes with Content-Length, `/chunked/<n>` chunked, `/nolength/<n>`
      delimited by close; generated on the fly in 64 KiB chunks, stopped when the client goes.
    - `/trickle` Content-Length 1000000, then one byte every 0.1 s until the client goes.
    - `/hang` never answers; `/reset` RST after the request; `/reset-mid-headers` half a status
      line then RST; `/close-no-response` clean close, no byte; `/garbage` non-HTTP bytes.
    - `/redirect/<n>` 302 chain ending at `/ok/final`; `/redirect-loop/a` <-> `/redirect-loop/b`;
      `/redirect-to?url=<pct>&status=<code>`; `/redirect-relative` 301 to `../ok/rel`.
    - `/headers` JSON `{"method", "headers": [[name, value], ...]}`; `/cookie`, `/auth` JSON echo
      of the Cookie / Authorization header.
    - `/basic-auth/<user>/<password>[/<x>]` 200 with Basic credentials user:password (segments
      percent-decoded), else 401 with `WWW-Authenticate`.
    - `/set-cookie?c=<Set-Cookie value>&c=...[&to=<pct>]` one Set-Cookie header per `c`; a 302
      to `to` when given, else 200. `/need-cookie/<name>[/<x>]` 200 when the request carries
      cookie `name`, else 403. `/cookie-gate/<name>[/<x>]` 200 with cookie `name`, else a 302
      to itself that sets it: a redirect loop that ends only when the cookie is sent back.
    - `/flaky/<key>/<n>/<code>[?retry_after=<v>]` first n requests for key answer code (with a
      Retry-After header when given), then 200; `/flaky-reset/<key>/<n>` first n are reset.
    - `/encoded/<name>/<n>[/<x>]` `sample_body(n)` encoded as `encode_body` does for `name`
      (gzip, deflate raw and zlib-wrapped, multi-member, stacked, truncated, corrupt, or a
      `br`/`zstd` label on plain bytes), whatever the request's Accept-Encoding says.
    - `/gzip-bomb/<n>[/<x>]` gzip of n zero bytes (`gzip_zeros`: about 1 KB per MiB), also sent
      whatever the client accepts; `?chunked=1` sends it chunked instead of with a length.

    - `/doc/<name>` a document the test put in `documents[name]` as `(content_type, body)`
      (a page whose links `--extract` reads, or whose anchors `--check-fragments` looks up).

    Statistics (thread-safe to read): `requests`, `heads` and `bodies` (each request's head
    and Content-Length body, byte for byte), `hits(prefix)`, `open_connections`,
    `max_open_connections`, `connections_total` (accepted), `errors` (exceptions raised by
    routes); `reset_stats()` clears them.

    Args:
        host: address to listen on (`::1` too).
        ssl_context: server-side TLS context; the server then speaks HTTPS.
        routes: routes of the test's own, by exact path (no query), before the ones above.
    """

    NAME = "test server"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.ssl_context = ssl_context
        self.port = 0
        self._own_routes = dict(routes or {})
        self.requests: list[RecordedRequest] = []
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.max_open_connections = 0
        self.open_connections = 0
        self.connections_total = 0
        self.errors: list[Exception] = []
        self.documents: dict[str, tuple[str, bytes]] = {}
        self._hits: Counter[str] = Counter()
        self._flaky: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], _Conn] = {}

    # -- public API -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path_prefix: str) -> int:
        """How many requests were seen whose path (without query) starts with `path_prefix`."""
        with self._lock:
            return sum(n for p, n in self._hits.items() if p.startswith(path_prefix))

    def reset_stats(self) -> None:
        """Forget requests, hits, flaky-route state and connections_total; peak := open now."""
        with self._lock:
            self.connections_total = 0
            self.requests.clear()
            self.heads.clear()
            self.bodies.clear()
            self._hits.clear()
            self._flaky.clear()
            self.max_open_connections = self.open_connections

    # -- the loop thread --------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # Clients that vanish mid-handshake or mid-body are the point of this server; do not
        # let asyncio print tracebacks for them.
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._on_connection,
                    self.host,
                    0,
                    backlog=4096,
                    limit=_HEAD_LIMIT,
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - re-raised by start() in the caller thread
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self._conns.values():
            conn.writer.transport.abort()
        tasks = list(self._conns)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT)
        asyncio.get_running_loop().stop()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _Conn(reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = conn
        with self._lock:
            self.connections_total += 1
            self.open_connections += 1
            self.max_open_connections = max(self.max_open_connections, self.open_connections)
        try:
            if self.ssl_context is not None:
                # TLS is started here rather than by the listener so that a client stuck in the
                # handshake is a connection this server tracks, counts and closes on stop().
                await writer.start_tls(self.ssl_context, ssl_handshake_timeout=STOP_TIMEOUT)
            await self._serve(conn)
        except _Reset:
            conn.reset()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.transport.abort()
        except Exception as exc:  # noqa: BLE001 - recorded in self.errors for tests
            # A bug in a route (or a request it cannot parse): keep it for a test to inspect.
            self.errors.append(exc)
            writer.transport.abort()
        finally:
            with self._lock:
                self.open_connections -= 1
            del self._conns[task]
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def _serve(self, conn: _Conn) -> None:
        while True:
            request = await self._read_request(conn)
            if request is None:
                return
            conn.served += 1
            with self._lock:
                self.requests.append(
                    RecordedRequest(request.method, request.path, request.target, request.headers)
                )
                self._hits[request.path] += 1
            conn.head_only = request.method == "HEAD"
            try:
                must_close = await self._dispatch(conn, request)
            except _Close:
                return
            if must_close or request.wants_close:
                return

    async def _read_request(self, conn: _Conn) -> _Request | None:
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed between requests
        except asyncio.LimitOverrunError:
            await conn.send(431, b"request head too large\n", close=True)
            return None
        with self._lock:
            self.heads.append(head)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await conn.send(400, b"bad request line\n", close=True)
            return None
        method, target, version = parts
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                await conn.send(400, b"bad header line\n", close=True)
                return None
            headers.append((name.strip(), value.strip()))
        split = urlsplit(target)
        request = _Request(
            method=method.upper(),
            target=target,
            path=split.path or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            version=version,
            headers=headers,
        )
        await self._read_body(conn, request)
        return request

    async def _read_body(self, conn: _Conn, request: _Request) -> None:
        """Read the request's body; a Content-Length one is kept in `bodies` (else b"")."""
        if "chunked" in (request.header("transfer-encoding") or "").lower():
            while True:
                size_line = await conn.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while await conn.reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    with self._lock:
                        self.bodies.append(b"")  # not kept: one entry per head all the same
                    return
                await conn.reader.readexactly(size + 2)
        length = request.header("content-length")
        body = bytearray()
        if length and length.isdigit():
            remaining = int(length)
            while remaining:
                got = await conn.reader.read(min(remaining, CHUNK_SIZE))
                if not got:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(got)
                body += got
        with self._lock:
            self.bodies.append(bytes(body))

    async def _dispatch(self, conn: _Conn, request: _Request) -> bool:
        own = self._own_routes.get(request.path)
        if own is not None:
            return await own(self, conn, request)
        segments = request.segments
        route = _ROUTES.get(segments[0]) if segments else None
        try:
            if route is None:
                raise _NotFound(request.path)
            return await route(self, conn, request)
        except _NotFound as exc:
            await conn.send(404, f"not found: {exc}\n".encode())
            return False

    def _flaky_count(self, key: str) -> int:
        """Count one more request for a flaky key; returns how many came before it."""
        with self._lock:
            seen = self._flaky[key]
            self._flaky[key] += 1
            return seen


# -- routes -------------------------------------------------------------------------------
# Each is `async def route(server, conn, request) -> bool` (True: close the connection after).


async def _root(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    if req.path != "/":
        raise _NotFound(req.path)
    body = b"<!doctype html>\n<html><head><title>test</title></head><body>hello</body></html>\n"
    await conn.send(200, body, content_type="text/html; charset=utf-8")
    return False


async def _doc(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    name = req.path.partition("/doc/")[2]
    if name not in server.documents:
        raise _NotFound(req.path)
    content_type, body = server.documents[name]
    await conn.send(200, body, content_type=content_type)
    return False


async def _ok(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    await conn.send(200, b"ok\n")
    return False


async def _status(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    code = _int(_segment(req, 1), "status")
    await conn.send(code, f"{code} {_reason(code)}\n".encode())
    return False


async def _raw_reason(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    code = _int(_segment(req, 1), "status")
    reason = unquote_to_bytes(_raw_query_value(req.target, "text") or "")
    await conn.send(code, b"custom reason\n", reason=reason)
    return False


async def _delay(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    await asyncio.sleep(_int(_segment(req, 1), "milliseconds") / 1000)
    await conn.send(200, b"ok\n")
    return False


async def _write_body(conn: _Conn, total: int, *, chunked: bool) -> None:
    """Stream `total` zero bytes without ever holding more than one chunk."""
    remaining = total
    while remaining > 0:
        piece = _CHUNK if remaining >= CHUNK_SIZE else _CHUNK[:remaining]
        if chunked:
            conn.writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            conn.writer.write(piece)
        remaining -= len(piece)
        # drain() raises once the client has gone, which ends the stream. Over TLS it can return
        # without yielding when the socket is already dead (the SSL layer drops the bytes), so
        # yield explicitly to let the loop deliver connection_lost.
        await conn.writer.drain()
        await asyncio.sleep(0)
    if chunked:
        conn.writer.write(b"0\r\n\r\n")
        await conn.writer.drain()


async def _bytes(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    total = _int(_segment(req, 1), "length")
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))]
    await conn.send_head(200, headers)
    if not conn.head_only:
        await _write_body(conn, total, chunked=False)
    return False


async def _chunked(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    total = _int(_segment(req, 1), "length")
    headers = [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]
    await conn.send_head(200, headers)
    if not conn.head_only:
        await _write_body(conn, total, chunked=True)
    return False


async def _nolength(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    total = _int(_segment(req, 1), "length")
    await conn.send_head(200, [("Content-Type", "application/octet-stream")], close=True)
    if not conn.head_only:
        await _write_body(conn, total, chunked=False)
    return True


async def _trickle(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", "1000000")]
    await conn.send_head(200, headers)
    if conn.head_only:
        return False
    eof = asyncio.ensure_future(conn.wait_for_eof())
    try:
        while not eof.done():
            conn.writer.write(b".")
            await conn.writer.drain()
            await asyncio.wait([eof], timeout=0.1)
    finally:
        eof.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await eof
    return True


async def _hang(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    await conn.wait_for_eof()
    return True


async def _reset(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    if req.segments[0] == "reset-mid-headers":
        conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await conn.writer.drain()
        # Give the bytes a moment to reach the client before the RST discards the send buffer.
        await asyncio.sleep(0.05)
    raise _Reset


async def _close_no_response(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    raise _Close


async def _garbage(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    conn.writer.write(b"\x00\x01 not http at all\r\n\r\n")
    await conn.writer.drain()
    return True


async def _redirect(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    remaining = _int(_segment(req, 1), "hop count")
    location = f"/redirect/{remaining - 1}" if remaining > 0 else "/ok/final"
    await conn.send(302, b"redirect\n", headers=[("Location", location)])
    return False


async def _redirect_loop(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    other = "b" if _segment(req, 1) == "a" else "a"
    await conn.send(302, b"redirect\n", headers=[("Location", f"/redirect-loop/{other}")])
    return False


async def _redirect_to(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    location = req.query_one("url")
    if location is None:
        raise _NotFound("redirect-to needs ?url=")
    code = _int(req.query_one("status", "302") or "302", "status")
    await conn.send(code, b"redirect\n", headers=[("Location", location)])
    return False


async def _redirect_relative(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    await conn.send(301, b"redirect\n", headers=[("Location", "../ok/rel")])
    return False


def _json(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


async def _headers(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    body = _json({"method": req.method, "headers": [list(h) for h in req.headers]})
    await conn.send(200, body, content_type="application/json")
    return False


async def _cookie(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    body = _json({"cookie": req.header("cookie")})
    await conn.send(200, body, content_type="application/json")
    return False


async def _auth(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    body = _json({"authorization": req.header("authorization")})
    await conn.send(200, body, content_type="application/json")
    return False


async def _basic_auth(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    expected = f"{_segment(req, 1)}:{_segment(req, 2)}".encode()
    if req.header("authorization") == "Basic " + base64.b64encode(expected).decode():
        await conn.send(200, b"authenticated\n")
    else:
        await conn.send(401, b"who are you?\n", headers=[("WWW-Authenticate", 'Basic realm="t"')])
    return False


def _cookie_names(req: _Request) -> set[str]:
    pairs = (req.header("cookie") or "").split(";")
    return {name.strip() for name, sep, _ in (p.partition("=") for p in pairs) if sep}


async def _set_cookie(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    headers = [("Set-Cookie", value) for value in req.query.get("c", [])]
    location = req.query_one("to")
    if location is None:
        await conn.send(200, b"cookies set\n", headers=headers)
    else:
        await conn.send(302, b"redirect\n", headers=[*headers, ("Location", location)])
    return False


async def _need_cookie(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    if _segment(req, 1) in _cookie_names(req):
        await conn.send(200, b"cookie seen\n")
    else:
        await conn.send(403, b"no cookie\n")
    return False


async def _cookie_gate(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    name = _segment(req, 1)
    if name in _cookie_names(req):
        await conn.send(200, b"through the gate\n")
    else:
        headers = [("Set-Cookie", f"{name}=1; Path=/"), ("Location", req.target)]
        await conn.send(302, b"come back with the cookie\n", headers=headers)
    return False


async def _flaky(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    key = _segment(req, 1)
    failures = _int(_segment(req, 2), "failure count")
    code = _int(_segment(req, 3), "status")
    if server._flaky_count(f"status:{key}") >= failures:
        await conn.send(200, b"ok\n")
        return False
    retry_after = req.query_one("retry_after")
    headers = [("Retry-After", retry_after)] if retry_after is not None else []
    await conn.send(code, f"{code} {_reason(code)}\n".encode(), headers=headers)
    return False


async def _flaky_reset(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    key = _segment(req, 1)
    failures = _int(_segment(req, 2), "failure count")
    if server._flaky_count(f"reset:{key}") >= failures:
        await conn.send(200, b"ok\n")
        return False
    raise _Reset


# -- compressed bodies -------------------------------------------------------------------------

ENCODED_ROUTES: dict[str, str] = {
    "identity": "identity",
    "gzip": "gzip",
    "x-gzip": "x-gzip",
    "deflate": "deflate",  # zlib-wrapped, as RFC 9110 says
    "deflate-raw": "deflate",  # a bare deflate stream, as some servers send
    "gzip-multi": "gzip",  # three gzip members one after the other
    "gzip-gzip": "gzip, gzip",
    "deflate-gzip": "deflate, gzip",  # deflated first, then gzipped
    "gzip-padded": "gzip",  # zero bytes after the member, which gzip(1) ignores
    "gzip-truncated": "gzip",  # the first half of a gzip stream
    "gzip-corrupt": "gzip",  # one byte flipped: the CRC check fails
    "gzip-trailing": "gzip",  # bytes after the member that are not another member
    "br": "br",  # labels only: the body is the plain bytes
    "zstd": "zstd",
}
"""Route name of `/encoded/<name>/<n>` -> the Content-Encoding header it sends."""


def sample_body(size: int) -> bytes:
    """`size` bytes of numbered lines with random hex: compressible, but not trivially."""
    rand = random.Random(size)
    lines = (b"%08d %016x fetchpool\n" % (i, rand.getrandbits(64)) for i in range(size // 36 + 1))
    return b"".join(lines)[:size]


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def encode_body(name: str, body: bytes) -> bytes:
    """`body` as the `/encoded/<name>/...` route sends it (see `ENCODED_ROUTES`)."""
    if name in ("identity", "br", "zstd"):
        return body
    if name in ("gzip", "x-gzip"):
        return _gzip(body)
    if name == "deflate":
        return zlib.compress(body)
    if name == "deflate-raw":
        return _raw_deflate(body)
    if name == "gzip-multi":
        third = len(body) // 3
        return b"".join(
            _gzip(part) for part in (body[:third], body[third : 2 * third], body[2 * third :])
        )
    if name == "gzip-gzip":
        return _gzip(_gzip(body))
    if name == "deflate-gzip":
        return _gzip(zlib.compress(body))
    if name == "gzip-padded":
        return _gzip(body) + bytes(100)
    if name == "gzip-truncated":
        whole = _gzip(body)
        return whole[: len(whole) // 2]
    if name == "gzip-corrupt":
        corrupt = bytearray(_gzip(body))
        corrupt[len(corrupt) // 2] ^= 0xFF
        return bytes(corrupt)
    if name == "gzip-trailing":
        return _gzip(body) + b"not gzip"
    raise _NotFound(f"no such encoding route: {name}")


_bombs: dict[int, bytes] = {}
_bombs_lock = threading.Lock()
_MIB = bytes(1 << 20)


def gzip_zeros(size: int) -> bytes:
    """gzip of `size` zero bytes, compressed a MiB at a time (never held inflated), cached."""
    with _bombs_lock:
        cached = _bombs.get(size)
        if cached is None:
            compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            parts = []
            whole, rest = divmod(size, len(_MIB))
            parts += [compressor.compress(_MIB) for _ in range(whole)]
            parts += [compressor.compress(_MIB[:rest]), compressor.flush()]
            cached = _bombs[size] = b"".join(parts)
    return cached


async def _encoded(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    name = _segment(req, 1)
    if name not in ENCODED_ROUTES:
        raise _NotFound(f"no such encoding route: {name}")
    body = encode_body(name, sample_body(_int(_segment(req, 2), "length")))
    headers = [("Content-Encoding", ENCODED_ROUTES[name])]
    await conn.send(200, body, content_type="application/octet-stream", headers=headers)
    return False


async def _gzip_bomb(server: HTTPTestServer, conn: _Conn, req: _Request) -> bool:
    size = _int(_segment(req, 1), "length")
    # Compressing a GiB takes a second or two: off the loop, so other routes keep answering.
    body = await asyncio.to_thread(gzip_zeros, size)
    chunked = req.query_one("chunked") == "1"
    headers = [("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip")]
    headers.append(
        ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(body)))
    )
    await conn.send_head(200, headers)
    if conn.head_only:
        return False
    view = memoryview(body)
    for start in range(0, len(body), CHUNK_SIZE):
        piece = view[start : start + CHUNK_SIZE]
        conn.writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece)
        await conn.writer.drain()
    if chunked:
        conn.writer.write(b"0\r\n\r\n")
        await conn.writer.drain()
    return False


def _segment(req: _Request, index: int) -> str:
    segments = req.segments
    if index >= len(segments):
        raise _NotFound(req.path)
    return segments[index]


def _raw_query_value(target: str, name: str) -> str | None:
    """A query value still percent-encoded, so arbitrary (non-UTF-8) bytes survive."""
    for pair in urlsplit(target).query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value.replace("+", " ")
    return None


_ROUTES: dict[str, Route] = {
    "": _root,
    "ok": _ok,
    "doc": _doc,
    "status": _status,
    "reason": _raw_reason,
    "delay": _delay,
    "bytes": _bytes,
    "chunked": _chunked,
    "nolength": _nolength,
    "trickle": _trickle,
    "hang": _hang,
    "reset": _reset,
    "reset-mid-headers": _reset,
    "close-no-response": _close_no_response,
    "garbage": _garbage,
    "redirect": _redirect,
    "redirect-loop": _redirect_loop,
    "redirect-to": _redirect_to,
    "redirect-relative": _redirect_relative,
    "headers": _headers,
    "cookie": _cookie,
    "auth": _auth,
    "basic-auth": _basic_auth,
    "set-cookie": _set_cookie,
    "need-cookie": _need_cookie,
    "cookie-gate": _cookie_gate,
    "flaky": _flaky,
    "flaky-reset": _flaky_reset,
    "encoded": _encoded,
    "gzip-bomb": _gzip_bomb,
}


def closed_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` with nothing listening (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` every 10 ms until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
