"""Checks of the test suite's own HTTP server, with the standard library as the client."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
from httpserver import (
    ENCODED_ROUTES,
    HTTPTestServer,
    ServerConnection,
    ServerRequest,
    closed_port,
    gzip_zeros,
    sample_body,
    wait_until,
)

TIMEOUT = 5.0


def connect(srv: HTTPTestServer, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)


def get(
    srv: HTTPTestServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str], bytes]:
    conn = connect(srv)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.reason, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def raw_exchange(srv: HTTPTestServer, path: str, timeout: float = TIMEOUT) -> bytes:
    """Send a GET on a bare socket and return every byte until the server closes."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_ok_route_answers_200_with_ok_body(server: HTTPTestServer) -> None:
    assert get(server, "/ok/a")[::3] == (200, b"ok\n")
    assert server.url("/ok/a") == f"http://127.0.0.1:{server.port}/ok/a"


def test_unknown_path_is_404(server: HTTPTestServer) -> None:
    assert get(server, "/no/such/route")[0] == 404


def test_keep_alive_serves_several_requests_on_one_connection(fresh_server: HTTPTestServer) -> None:
    conn = connect(fresh_server)
    try:
        for i in range(5):
            conn.request("GET", f"/ok/{i}")
            resp = conn.getresponse()
            assert resp.read() == b"ok\n"
    finally:
        conn.close()
    assert fresh_server.hits("/ok/") == 5
    assert fresh_server.max_open_connections == 1
    assert fresh_server.connections_total == 1


def test_head_has_headers_but_no_body(server: HTTPTestServer) -> None:
    conn = connect(server)
    try:
        conn.request("HEAD", "/bytes/12345")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "12345"
        assert resp.read() == b""
        # The connection is still usable, so no stray body bytes were sent.
        conn.request("GET", "/ok/after-head")
        assert conn.getresponse().read() == b"ok\n"
    finally:
        conn.close()


def test_status_route_uses_standard_reason(server: HTTPTestServer) -> None:
    status, reason, _, _ = get(server, "/status/503/x")
    assert (status, reason) == (503, "Service Unavailable")
    assert get(server, "/status/204")[3] == b""


def test_reason_route_sends_raw_hostile_reason(server: HTTPTestServer) -> None:
    text = "\x1b[31m[bold red]boom[/]"
    status, reason, _, _ = get(server, "/reason/418?text=" + quote(text))
    assert (status, reason) == (418, text)


def test_counters_and_recorded_requests(fresh_server: HTTPTestServer) -> None:
    get(fresh_server, "/ok/one", headers={"X-Test": "yes"})
    get(fresh_server, "/ok/two")
    get(fresh_server, "/status/500")
    assert fresh_server.hits("/ok/") == 2
    assert fresh_server.hits("/") == 3
    first = fresh_server.requests[0]
    assert (first.method, first.path, first.header("x-test")) == ("GET", "/ok/one", "yes")
    fresh_server.reset_stats()
    assert fresh_server.hits("/") == 0
    assert fresh_server.requests == []


def test_a_tests_own_route_answers_its_exact_path_with_the_bytes_it_writes() -> None:
    async def teapot(srv: HTTPTestServer, conn: ServerConnection, req: ServerRequest) -> bool:
        conn.writer.write(b"HTTP/1.1 418 Tea\r\nContent-Length: 0\r\n\r\n")
        return True

    with HTTPTestServer(routes={"/ok/own": teapot}) as srv:
        assert raw_exchange(srv, "/ok/own?q=1") == b"HTTP/1.1 418 Tea\r\nContent-Length: 0\r\n\r\n"
        assert get(srv, "/ok/other")[0] == 200  # every other path: the built-in routes


def test_heads_and_bodies_are_kept_byte_for_byte(fresh_server: HTTPTestServer) -> None:
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /ok/b HTTP/1.1\r\nhOsT: x\r\nContent-Length: 3\r\n\r\nxyz")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert fresh_server.heads == [b"POST /ok/b HTTP/1.1\r\nhOsT: x\r\nContent-Length: 3\r\n\r\n"]
    assert fresh_server.bodies == [b"xyz"]


def test_headers_route_echoes_method_and_headers(server: HTTPTestServer) -> None:
    body = get(server, "/headers", method="POST", headers={"X-One": "1"})[3]
    echoed = json.loads(body)
    assert echoed["method"] == "POST"
    assert ["X-One", "1"] in echoed["headers"]
    assert json.loads(get(server, "/cookie", headers={"Cookie": "a=b"})[3]) == {"cookie": "a=b"}


def test_delay_route_waits(server: HTTPTestServer) -> None:
    started = time.monotonic()
    assert get(server, "/delay/200/x")[0] == 200
    assert time.monotonic() - started >= 0.19


def test_huge_body_can_be_abandoned_without_harming_the_server(
    fresh_server: HTTPTestServer,
) -> None:
    conn = connect(fresh_server)
    conn.request("GET", "/bytes/10000000000")
    resp = conn.getresponse()
    assert resp.getheader("Content-Length") == "10000000000"
    assert len(resp.read(1_000_000)) == 1_000_000
    conn.close()
    assert wait_until(lambda: fresh_server.open_connections == 0)
    assert get(fresh_server, "/ok/still-alive")[3] == b"ok\n"


def test_chunked_and_nolength_bodies_have_the_requested_size(server: HTTPTestServer) -> None:
    status, _, headers, body = get(server, "/chunked/200000")
    assert (status, len(body), headers.get("Transfer-Encoding")) == (200, 200000, "chunked")
    status, _, headers, body = get(server, "/nolength/150000")
    assert (status, len(body), "Content-Length" in headers) == (200, 150000, False)


def _inflate(data: bytes, wbits: int) -> bytes:
    """Every member of a zlib/gzip/raw stream, with the standard library (no fetchpool code)."""
    out = b""
    while data:
        decompressor = zlib.decompressobj(wbits)
        out += decompressor.decompress(data) + decompressor.flush()
        assert decompressor.eof, "truncated"
        data = decompressor.unused_data.lstrip(b"\0")
    return out


def test_sample_body_is_deterministic_and_compressible() -> None:
    body = sample_body(100_000)
    assert len(body) == 100_000
    assert body == sample_body(100_000)
    assert body.startswith(b"00000000 ")
    assert 20_000 < len(zlib.compress(body)) < 80_000


@pytest.mark.parametrize(
    ("name", "wbits", "layers"),
    [
        ("gzip", 31, 1),
        ("x-gzip", 31, 1),
        ("deflate", 15, 1),
        ("deflate-raw", -15, 1),
        ("gzip-multi", 31, 1),
        ("gzip-padded", 31, 1),
        ("gzip-gzip", 31, 2),
    ],
)
def test_encoded_routes_send_a_decodable_body_even_to_an_identity_request(
    server: HTTPTestServer, name: str, wbits: int, layers: int
) -> None:
    status, _, headers, body = get(
        server, f"/encoded/{name}/50000", headers={"Accept-Encoding": "identity"}
    )
    assert (status, headers["Content-Encoding"]) == (200, ENCODED_ROUTES[name])
    assert int(headers["Content-Length"]) == len(body) < 50_000
    for _ in range(layers):
        body = _inflate(body, wbits)
    assert body == sample_body(50_000)


def test_gzip_multi_sends_three_members(server: HTTPTestServer) -> None:
    data = get(server, "/encoded/gzip-multi/50000")[3]
    members = 0
    while data:
        decompressor = zlib.decompressobj(31)
        decompressor.decompress(data)
        assert decompressor.eof
        members += 1
        data = decompressor.unused_data
    assert members == 3


def test_deflate_then_gzip_is_undone_in_reverse_order(server: HTTPTestServer) -> None:
    _, _, headers, body = get(server, "/encoded/deflate-gzip/5000")
    assert headers["Content-Encoding"] == "deflate, gzip"
    assert _inflate(_inflate(body, 31), 15) == sample_body(5000)


def test_broken_encoded_routes_fail_to_decode(server: HTTPTestServer) -> None:
    truncated = get(server, "/encoded/gzip-truncated/50000")[3]
    with pytest.raises(AssertionError, match="truncated"):
        _inflate(truncated, 31)
    with pytest.raises(zlib.error, match="incorrect data check"):
        _inflate(get(server, "/encoded/gzip-corrupt/50000")[3], 31)
    with pytest.raises(zlib.error, match="incorrect header check"):
        _inflate(get(server, "/encoded/gzip-trailing/50000")[3], 31)


@pytest.mark.parametrize("name", ["br", "zstd", "identity"])
def test_label_only_encodings_send_the_plain_body(server: HTTPTestServer, name: str) -> None:
    _, _, headers, body = get(server, f"/encoded/{name}/1000")
    assert (headers["Content-Encoding"], body) == (name, sample_body(1000))


def test_unknown_encoded_route_is_404(server: HTTPTestServer) -> None:
    assert get(server, "/encoded/lzma/10")[0] == 404


@pytest.mark.parametrize("query", ["", "?chunked=1"])
def test_gzip_bomb_inflates_a_thousandfold_to_zeros(server: HTTPTestServer, query: str) -> None:
    size = 64 * 1024 * 1024 + 123
    status, _, headers, body = get(
        server, f"/gzip-bomb/{size}/x{query}", headers={"Accept-Encoding": "identity"}
    )
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert headers.get("Transfer-Encoding") == ("chunked" if query else None)
    assert body == gzip_zeros(size)
    assert len(body) < size // 1000
    decompressor = zlib.decompressobj(31)
    inflated = 0
    while not decompressor.eof:  # in bounded steps: the test itself never holds 64 MiB
        piece = decompressor.decompress(body, 1 << 20)
        assert piece or body, "truncated"
        assert piece.count(0) == len(piece)
        inflated += len(piece)
        body = decompressor.unconsumed_tail
    assert inflated == size


def test_trickle_sends_a_byte_at_a_time(server: HTTPTestServer) -> None:
    conn = connect(server, timeout=2)
    try:
        conn.request("GET", "/trickle")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "1000000"
        assert resp.read(3) == b"..."
    finally:
        conn.close()


def test_hang_never_answers(server: HTTPTestServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=0.5) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_reset_route_resets_the_connection(server: HTTPTestServer) -> None:
    with pytest.raises(ConnectionResetError):
        get(server, "/reset")
    with pytest.raises(ConnectionResetError):
        raw_exchange(server, "/reset-mid-headers")


def test_close_no_response_and_garbage(server: HTTPTestServer) -> None:
    assert raw_exchange(server, "/close-no-response") == b""
    with pytest.raises(http.client.RemoteDisconnected):
        get(server, "/close-no-response")
    assert raw_exchange(server, "/garbage").startswith(b"\x00\x01 not http")


def test_redirect_routes(server: HTTPTestServer) -> None:
    assert get(server, "/redirect/2")[2]["Location"] == "/redirect/1"
    assert get(server, "/redirect/0")[2]["Location"] == "/ok/final"
    assert get(server, "/redirect-loop/a")[2]["Location"] == "/redirect-loop/b"
    status, _, headers, _ = get(
        server, "/redirect-to?url=" + quote("http://x/y?z=1") + "&status=307"
    )
    assert (status, headers["Location"]) == (307, "http://x/y?z=1")
    status, _, headers, _ = get(server, "/redirect-relative")
    assert (status, headers["Location"]) == (301, "../ok/rel")


def test_basic_auth_route_wants_the_credentials_of_its_path(server: HTTPTestServer) -> None:
    assert get(server, "/basic-auth/al%40ce/p%3Aw")[0] == 401
    assert "WWW-Authenticate" in get(server, "/basic-auth/alice/pw")[2]
    token = base64.b64encode(b"al@ce:p:w").decode()
    assert (
        get(server, "/basic-auth/al%40ce/p%3Aw", headers={"Authorization": f"Basic {token}"})[0]
        == 200
    )


def test_cookie_routes(server: HTTPTestServer) -> None:
    conn = connect(server)
    try:
        conn.request("GET", "/set-cookie?c=a%3D1%3B%20Path%3D%2F&c=b%3D2&to=%2Fneed-cookie%2Fa")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 302
        assert resp.getheader("Location") == "/need-cookie/a"
        assert resp.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]
    finally:
        conn.close()
    assert get(server, "/set-cookie?c=x%3D1")[0] == 200
    assert get(server, "/need-cookie/a")[0] == 403
    assert get(server, "/need-cookie/a", headers={"Cookie": "b=2; a=1"})[0] == 200
    status, _, headers, _ = get(server, "/cookie-gate/g/x?q=1")
    assert (status, headers["Location"], headers["Set-Cookie"]) == (
        302,
        "/cookie-gate/g/x?q=1",
        "g=1; Path=/",
    )
    assert get(server, "/cookie-gate/g/x", headers={"Cookie": "g=1"})[0] == 200


def test_flaky_fails_n_times_then_succeeds(server: HTTPTestServer) -> None:
    first = get(server, "/flaky/k1/2/503?retry_after=1")
    assert (first[0], first[2]["Retry-After"]) == (503, "1")
    assert get(server, "/flaky/k1/2/503?retry_after=1")[0] == 503
    assert get(server, "/flaky/k1/2/503?retry_after=1")[0] == 200
    with pytest.raises(ConnectionResetError):
        get(server, "/flaky-reset/k2/1")
    assert get(server, "/flaky-reset/k2/1")[0] == 200


def test_serves_300_concurrent_connections(fresh_server: HTTPTestServer) -> None:
    count = 300
    barrier = threading.Barrier(count, timeout=TIMEOUT)

    def one(i: int) -> int:
        conn = connect(fresh_server)
        try:
            conn.connect()
            barrier.wait()  # all connections are open before any request is sent
            conn.request("GET", f"/delay/100/{i}")
            return conn.getresponse().status
        finally:
            conn.close()

    with ThreadPoolExecutor(count) as pool:
        statuses = list(pool.map(one, range(count)))
    assert statuses == [200] * count
    assert fresh_server.max_open_connections == count


def test_tls_server_verifies_with_its_ca(tls_server: HTTPTestServer, tls_ca_file: Path) -> None:
    assert tls_server.base.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(tls_ca_file))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", tls_server.port, timeout=TIMEOUT, context=context
    )
    try:
        conn.request("GET", "/ok/tls")
        assert conn.getresponse().read() == b"ok\n"
    finally:
        conn.close()


@pytest.mark.parametrize("fixture", ["untrusted_tls_server", "expired_tls_server"])
def test_bad_tls_servers_fail_verification(
    fixture: str, tls_ca_file: Path, request: pytest.FixtureRequest
) -> None:
    srv: HTTPTestServer = request.getfixturevalue(fixture)
    context = ssl.create_default_context(cafile=str(tls_ca_file))
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=TIMEOUT, context=context)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.request("GET", "/ok/tls")
    finally:
        conn.close()


def test_closed_port_refuses_connections() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=TIMEOUT).close()


def test_stop_ends_open_connections_and_the_thread() -> None:
    srv = HTTPTestServer()
    srv.start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: srv.hits("/hang") == 1)
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 3
        assert sock.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT).close()


def tls_client_context(tls_ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_ca_file))


def test_tls_body_abandoned_by_the_client_stops_streaming(
    tls_ca: trustme.CA, tls_ca_file: Path
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    with HTTPTestServer(ssl_context=context) as srv:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", srv.port, timeout=TIMEOUT, context=tls_client_context(tls_ca_file)
        )
        conn.request("GET", "/bytes/10000000000")
        resp = conn.getresponse()
        assert len(resp.read(500_000)) == 500_000
        resp.close()
        conn.close()
        assert wait_until(lambda: srv.open_connections == 0)
        assert srv.errors == []


def test_stop_closes_a_tls_client_stuck_before_the_handshake(tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    srv = HTTPTestServer(ssl_context=context)
    srv.start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        assert wait_until(lambda: srv.open_connections == 1)
        srv.stop()
        assert sock.recv(1) == b""
