"""Shared fixtures: local HTTP and HTTPS test servers on 127.0.0.1, a port nobody listens on,
and a network namespace of the test's own with real DNS inside (`netns`)."""

from __future__ import annotations

import datetime
import resource
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from frontends import ForwardProxy, H2Front
from httpserver import HTTPTestServer, closed_port
from netns import NetNS, require_netns


def _raise_open_file_limit() -> None:
    # The server and a thousand client sockets share this process (and its children inherit
    # the limit), which overflows the common soft limit of 1024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


_raise_open_file_limit()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach their own servers directly, whatever proxy the machine names."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def server() -> Iterator[HTTPTestServer]:
    """One plain-HTTP server for the whole session; its stats accumulate (see reset_stats)."""
    with HTTPTestServer() as srv:
        yield srv


@pytest.fixture
def fresh_server() -> Iterator[HTTPTestServer]:
    """A plain-HTTP server of this test's own, for exact counts and connection peaks."""
    with HTTPTestServer() as srv:
        yield srv


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{closed_port()}/"


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The certificate authority that signs `tls_server`'s certificate."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PEM file of the CA a client must trust to verify `tls_server` (and `expired_tls_server`)."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    # Offer only HTTP/1.1 so an h2-capable client does not try to speak h2 to this server.
    context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.fixture(scope="session")
def tls_server(tls_ca: trustme.CA) -> Iterator[HTTPTestServer]:
    """An HTTPS server whose certificate (127.0.0.1, localhost) verifies with `tls_ca_file`."""
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    with HTTPTestServer(ssl_context=_server_context(cert)) as srv:
        yield srv


@pytest.fixture(scope="session")
def untrusted_tls_server() -> Iterator[HTTPTestServer]:
    """An HTTPS server signed by a CA nobody trusts: verification fails, even with tls_ca_file."""
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    with HTTPTestServer(ssl_context=_server_context(cert)) as srv:
        yield srv


@pytest.fixture(scope="session")
def expired_tls_server(tls_ca: trustme.CA) -> Iterator[HTTPTestServer]:
    """An HTTPS server whose certificate is signed by `tls_ca` but expired: verification fails."""
    now = datetime.datetime.now(datetime.UTC)
    cert = tls_ca.issue_cert(
        "127.0.0.1",
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    with HTTPTestServer(ssl_context=_server_context(cert)) as srv:
        yield srv


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A network namespace of this test's own: only `lo`, resolv.conf `nameserver 127.0.0.1`
    with `timeout:2 attempts:1` (see `set_resolver`), a hosts file with localhost (see
    `set_hosts`). `netns.start_dns()` serves 127.0.0.1:53 inside, `netns.start_http()` an
    HTTPTestServer, `netns.run([...])` runs a command inside; all of it ends with the test.

    Skipped without root or `ip`, except under CI (the CI variable set), where it fails."""
    require_netns()
    with NetNS() as ns:
        yield ns


@pytest.fixture(scope="session")
def h2_server(tls_ca: trustme.CA, server: HTTPTestServer) -> Iterator[H2Front]:
    """An HTTP/2 server over TLS (certificate from `tls_ca`) serving the routes of `server`."""
    front = H2Front(tls_ca, server.port)
    yield front
    front.close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """A plain-HTTP forward proxy on 127.0.0.1 of this test's own; `targets` is what it carried."""
    forward_proxy = ForwardProxy()
    yield forward_proxy
    forward_proxy.close()


@pytest.fixture
def no_dns_for_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.invalid` names fail to resolve in-process, without asking any DNS server.

    The system resolver backend (getaddrinfo on threads) is selected so the patch is the one
    place names are looked up; the c-ares backend is tested against a DNS server of the
    suite's own (test_dns.py).
    """
    monkeypatch.setenv("FETCHPOOL_RESOLVER", "system")
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
