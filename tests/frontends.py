"""Servers that stand in front of an `HTTPTestServer`, so its routes can be reached other ways:
a plain-HTTP forward proxy (absolute-form requests, no CONNECT) and an HTTP/2 server over TLS.

Both pass each request on as it came (method, target, headers, body) and each answer back as
it came (status, headers, body), without the hop-by-hop headers, and record what they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme

__all__ = ["ForwardProxy", "H2Front"]

_TIMEOUT = 5.0
# Headers of one connection, not of the message; Content-Length is set again for the body.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

Headers = list[tuple[str, str]]


def forward(
    host: str, port: int, method: str, target: str, headers: Headers, body: bytes
) -> tuple[int, str, Headers, bytes]:
    """Send one request to host:port as given; return status, reason, headers and body."""
    conn = http.client.HTTPConnection(host, port, timeout=_TIMEOUT)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                conn.putheader(name, value)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        data = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return response.status, response.reason, kept, data
    finally:
        conn.close()


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1: takes absolute-form requests (`GET http://h:p/x`)
    on keep-alive connections and passes them on; `targets` lists the requests it carried."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, name="ForwardProxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(_TIMEOUT)
        try:
            with conn, conn.makefile("rb") as reader:
                while self._exchange(conn, reader):
                    pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _exchange(self, conn: socket.socket, reader: Any) -> bool:
        """Carry one request and its response; False when the client has gone."""
        request_line = reader.readline()
        if not request_line.strip():
            return False
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        headers: Headers = []
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = reader.read(length) if length else b""
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        with self._lock:
            self.targets.append(target)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        status, reason, kept, data = forward(
            parts.hostname, parts.port or 80, method, path, headers, body
        )
        head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in kept)]
        head.append(f"Content-Length: {len(data)}")
        conn.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + data)
        return True

    def close(self) -> None:
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class H2Front:
    """An HTTP/2 server over TLS (hypercorn; h2 and http/1.1 offered by ALPN) on 127.0.0.1,
    whose certificate from `ca` names 127.0.0.1 and localhost, in front of the plain-HTTP
    server at `upstream_port`. `versions` lists the HTTP version of each request it served."""

    def __init__(self, ca: trustme.CA, upstream_port: int) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        self.versions: list[str] = []
        self._upstream_port = upstream_port
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._dir = tempfile.TemporaryDirectory(prefix="fetchpool-h2-")
        key_file, cert_file = Path(self._dir.name, "key.pem"), Path(self._dir.name, "cert.pem")
        cert.private_key_pem.write_to_path(str(key_file))
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.base = f"https://127.0.0.1:{self.port}"
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile, config.keyfile = str(cert_file), str(key_file)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = config.errorlog = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        serving = serve(self._app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(serving,), name="H2Front", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("the HTTP/2 server did not start")

    def url(self, path: str) -> str:
        return self.base + path

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.versions.append(scope["http_version"])
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        status, _, kept, data = await asyncio.to_thread(
            forward, "127.0.0.1", self._upstream_port, scope["method"], target, headers, body
        )
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in kept]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": data})

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(_TIMEOUT)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
        self._dir.cleanup()
