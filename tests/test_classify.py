"""Failure kinds end to end: each way a URL fails is a FAIL of its own kind, with a clear
error, against real servers on 127.0.0.1 (names under `.invalid` fail in-process, see the
`no_dns_for_invalid` fixture)."""

from __future__ import annotations

import subprocess
from typing import Any

from clihelpers import FETCHPOOL, cli_env, parse_jsonl, write_lines
from fetchhelpers import fetch_one
from httpserver import HTTPTestServer

from fetchpool import Kind, Outcome

# -- failure kinds ---------------------------------------------------------------------------


def test_kind_http_for_a_status_outside_accept(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/status/404/kind"))
    assert (result.kind, result.status, result.error) == (Kind.HTTP, 404, "HTTP 404 Not Found")


def test_kind_connect_for_a_closed_port(closed_port_url: str) -> None:
    result = fetch_one(closed_port_url, retries=0)
    assert (result.kind, result.error) == (Kind.CONNECT, "connection refused")


def test_kind_dns_for_a_name_that_does_not_resolve(no_dns_for_invalid: None) -> None:
    result = fetch_one("http://no-such-host.invalid/", retries=0)
    assert result.kind is Kind.DNS
    assert result.error == "DNS: name or service not known"


def test_kind_tls_for_an_untrusted_certificate(untrusted_tls_server: HTTPTestServer) -> None:
    result = fetch_one(untrusted_tls_server.url("/ok/tls"), retries=0)
    assert result.kind is Kind.TLS
    assert result.error is not None
    assert result.error.startswith("TLS: ")
    assert "certificate" in result.error


def test_insecure_skips_certificate_verification(untrusted_tls_server: HTTPTestServer) -> None:
    result = fetch_one(untrusted_tls_server.url("/ok/insecure"), verify=False)
    assert result.outcome is Outcome.OK


def test_kind_tls_says_an_expired_certificate_has_expired(
    expired_tls_server: HTTPTestServer, tls_ca_file: Any, tmp_path: Any
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [expired_tls_server.url("/ok/expired")])
    done = subprocess.run(
        [*FETCHPOOL, str(urls), "--format", "jsonl", "--retries", "0"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=20,
        env=cli_env({"SSL_CERT_FILE": str(tls_ca_file)}),
        check=False,
    )
    (record,) = parse_jsonl(done.stdout)
    assert record["kind"] == "tls"
    assert record["error"] == (
        "TLS: certificate has expired "
        "(trust a private CA with --cacert FILE, or skip verification with --insecure)"
    )


def test_kind_protocol_for_a_server_that_does_not_speak_http(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/garbage"), retries=0)
    assert result.kind is Kind.PROTOCOL
    assert result.error
    assert "Error" not in result.error  # words, not a Python repr


def test_kind_timeout_for_a_server_that_accepts_and_hangs(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/hang/kind"), timeout=0.5)
    assert (result.kind, result.error) == (Kind.TIMEOUT, "timed out after 0.5 s")


def test_kind_redirect_for_a_loop(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/redirect-loop/a"))
    assert result.kind is Kind.REDIRECT
    assert result.error == "redirect loop after 2 redirects"


def test_kind_redirect_for_too_many_hops(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/redirect/11"))
    assert result.kind is Kind.REDIRECT
    assert result.error == "too many redirects (more than 10)"
    assert fetch_one(server.url("/redirect/9")).outcome is Outcome.OK  # 10 hops are fine


def test_kind_invalid_for_a_bad_line() -> None:
    result = fetch_one("gopher://example.test/")
    assert (result.kind, result.error) == (Kind.INVALID, "invalid URL: unsupported scheme 'gopher'")


def test_kind_connect_for_a_reset_connection(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/reset/kind"), retries=0)
    assert result.kind is Kind.CONNECT
    # An RST may also surface as a plain close, depending on timing.
    assert result.error in (
        "connection reset by peer",
        "server closed the connection without a response",
    )


def test_reset_mid_headers_is_a_clean_failure(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/reset-mid-headers"), retries=0)
    assert result.outcome is Outcome.FAIL
    assert result.kind is Kind.CONNECT
