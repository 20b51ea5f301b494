"""Resilience: retries, redirects, failure kinds, hostile servers and hostile input.

Every behaviour is checked against real servers on 127.0.0.1 started by the suite.
Name resolution is the one thing faked (in-process, for `.invalid` names only):
a real failed lookup would query this machine's resolver, which is not on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from clihelpers import FETCHPOOL, cli_env, parse_jsonl, run_fetchpool, write_lines
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import Kind, Outcome, Result
from fetchpool._retry import retry_after

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def fetch_all(urls: list[str], **options: Any) -> list[Result]:
    async def collect() -> list[Result]:
        return [r async for r in fetchpool.fetch(urls, **options)]

    return run(collect())


def fetch_one(url: str, **options: Any) -> Result:
    options.setdefault("timeout", 5)
    (result,) = fetch_all([url], **options)
    return result


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


# -- retries ----------------------------------------------------------------------------------


def test_transient_status_is_retried_until_ok(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky/r1/2/503"), retries=2)
    assert result.outcome is Outcome.OK
    assert result.attempts == 3
    assert fresh_server.hits("/flaky/r1/") == 3


def test_retries_give_up_after_the_given_number(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky/r2/5/502"), retries=1)
    assert (result.status, result.attempts) == (502, 2)
    assert fresh_server.hits("/flaky/r2/") == 2


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_every_transient_status_of_the_contract_is_retried(
    fresh_server: HTTPTestServer, status: int
) -> None:
    result = fetch_one(fresh_server.url(f"/flaky/t{status}/1/{status}"), retries=1)
    assert (result.outcome, result.status, result.attempts) == (Outcome.OK, 200, 2)


def test_backoff_doubles_per_attempt_with_jitter() -> None:
    def fetcher_drawing(jitter: Callable[[float, float], float]) -> fetchpool.Fetcher:
        return fetchpool.Fetcher(httpx.AsyncClient(), fetchpool.Settings(), jitter=jitter)

    highest = [min(8.0, 0.25 * 2 ** (n - 1)) for n in range(1, 8)]
    top = fetcher_drawing(lambda lo, hi: hi)
    assert [top._backoff(n, None) for n in range(1, 8)] == highest
    bottom = fetcher_drawing(lambda lo, hi: lo)
    assert [bottom._backoff(n, None) for n in range(1, 8)] == [h / 2 for h in highest]
    fetcher = fetchpool.Fetcher(httpx.AsyncClient(), fetchpool.Settings())
    draws = {fetcher._backoff(3, None) for _ in range(20)}
    assert len(draws) > 1  # jittered, not a fixed wait
    assert all(d is not None and 0.5 <= d <= 1.0 for d in draws)
    assert fetcher._backoff(3, "7") == 7.0  # Retry-After wins over the backoff


@pytest.mark.parametrize("status", [404, 410, 401, 500])
def test_non_transient_status_is_never_retried(fresh_server: HTTPTestServer, status: int) -> None:
    result = fetch_one(fresh_server.url(f"/flaky/n{status}/5/{status}"), retries=3)
    assert result.attempts == 1
    assert fresh_server.hits(f"/flaky/n{status}/") == 1


def test_connection_errors_are_retried(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/flaky-reset/c1/1"), retries=2)
    assert result.outcome is Outcome.OK
    assert result.attempts == 2


def test_retry_after_seconds_is_honoured(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/ra/1/429?retry_after=1"), retries=1, timeout=5)
    assert result.outcome is Outcome.OK
    assert time.monotonic() - started >= 0.95


def test_retry_after_http_date_is_honoured(fresh_server: HTTPTestServer) -> None:
    when = quote(formatdate(time.time() + 2, usegmt=True))
    started = time.monotonic()
    result = fetch_one(fresh_server.url(f"/flaky/rd/1/503?retry_after={when}"), retries=1)
    assert result.outcome is Outcome.OK
    assert time.monotonic() - started >= 0.5


def test_a_retry_after_that_is_not_a_number_falls_back_to_the_backoff(
    fresh_server: HTTPTestServer,
) -> None:
    # "²" is a digit to str.isdigit() but not a number to float(): a hostile server's header.
    assert retry_after("\u00b2") is None
    result = fetch_one(fresh_server.url("/flaky/rs/1/503?retry_after=%C2%B2"), retries=1)
    assert (result.outcome, result.status, result.attempts) == (Outcome.OK, 200, 2)


def test_retry_after_longer_than_the_time_left_is_not_waited(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/rl/1/503?retry_after=60"), retries=2, timeout=3)
    assert (result.status, result.attempts) == (503, 1)
    assert time.monotonic() - started < 2


def test_the_deadline_covers_all_attempts_together(fresh_server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(fresh_server.url("/flaky/dl/99/503?retry_after=1"), retries=10, timeout=2.5)
    assert result.outcome is Outcome.FAIL
    assert time.monotonic() - started < 4
    assert 2 <= result.attempts <= 3


# -- redirects ---------------------------------------------------------------------------------


def test_redirects_are_followed_and_final_url_reported(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/redirect/3"))
    assert result.outcome is Outcome.OK
    assert result.final_url == server.url("/ok/final")


def test_relative_redirect_is_resolved(server: HTTPTestServer) -> None:
    result = fetch_one(server.url("/redirect-relative"))
    assert result.outcome is Outcome.OK
    assert result.final_url == server.url("/ok/rel")


def test_no_follow_judges_the_3xx_by_accept(server: HTTPTestServer) -> None:
    url = server.url("/redirect/1")
    assert fetch_one(url, follow_redirects=False).kind is Kind.HTTP
    accept = fetchpool.StatusSet.parse("200-299,302")
    result = fetch_one(url, follow_redirects=False, accept=accept)
    assert (result.outcome, result.status) == (Outcome.OK, 302)


def test_status_set_holds_exactly_its_ranges() -> None:
    accept = fetchpool.StatusSet.parse("200-299, 301,418-418")
    inside = [200, 250, 299, 301, 418]
    outside = [100, 199, 300, 302, 417, 419, 599, 1000, True, "200", None, 200.0]
    assert all(code in accept for code in inside)
    assert not any(code in accept for code in outside)
    assert str(accept) == "200-299,301,418"
    assert fetchpool.StatusSet(((0, 10**12),)) != accept  # built directly, still a small set
    assert 999 in fetchpool.StatusSet(((0, 10**12),))


def _seen_headers(server: HTTPTestServer, path: str) -> dict[str, str]:
    (request,) = [r for r in server.requests if r.path == path]
    return {k.lower(): v for k, v in request.headers}


def test_sensitive_headers_are_not_sent_to_another_origin(fresh_server: HTTPTestServer) -> None:
    # 127.0.0.1 and localhost are different origins on the same server.
    other = fresh_server.url("/headers/after").replace("127.0.0.1", "localhost")
    start = fresh_server.url(f"/redirect-to?url={quote(other, safe='')}")
    headers = (("Authorization", "Bearer secret"), ("Cookie", "s=1"), ("X-Trace", "t"))
    result = fetch_one(start, headers=headers, bearer=None)
    assert result.outcome is Outcome.OK
    first = _seen_headers(fresh_server, "/redirect-to")
    assert first["authorization"] == "Bearer secret"
    assert first["cookie"] == "s=1"
    after = _seen_headers(fresh_server, "/headers/after")
    assert "authorization" not in after
    assert "cookie" not in after
    assert after["x-trace"] == "t"


def test_sensitive_headers_follow_a_same_origin_redirect(fresh_server: HTTPTestServer) -> None:
    target = fresh_server.url("/headers/same")
    start = fresh_server.url(f"/redirect-to?url={quote(target, safe='')}")
    result = fetch_one(start, headers=(("Authorization", "Bearer secret"),))
    assert result.outcome is Outcome.OK
    assert _seen_headers(fresh_server, "/headers/same")["authorization"] == "Bearer secret"


# -- hostile servers ----------------------------------------------------------------------------


def test_trickle_forever_is_cut_off_at_the_deadline(server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(server.url("/trickle/h"), timeout=1)
    assert result.kind is Kind.TIMEOUT
    assert time.monotonic() - started < 3


def test_a_10_gb_body_costs_no_more_than_a_small_one(server: HTTPTestServer) -> None:
    started = time.monotonic()
    result = fetch_one(server.url("/bytes/10000000000/h"), timeout=10)
    assert result.outcome is Outcome.OK
    assert result.bytes_read < 2 * 1024 * 1024
    assert time.monotonic() - started < 5


HOSTILE_REASON = "\x1b[2J\x1b]0;pwned\x07[bold red]boom[/]\x7f"


@pytest.mark.parametrize("fmt", ["plain", "jsonl", "csv", "github", "markdown", "sarif"])
def test_hostile_reason_phrase_never_reaches_output_as_escape_or_markup(
    server: HTTPTestServer, tmp_path: Any, fmt: str
) -> None:
    url = server.url("/reason/500?text=" + quote(HOSTILE_REASON, safe=""))
    urls = write_lines(tmp_path / "urls.txt", [url])
    done = run_fetchpool(urls, "--format", fmt, "--retries", "0")
    assert done.returncode == 1
    assert b"\x1b" not in done.stdout
    assert b"\x07" not in done.stdout
    assert b"\x7f" not in done.stdout
    assert b"\x1b" not in done.stderr
    assert b"boom" in done.stdout


# -- hostile input ------------------------------------------------------------------------------


def test_hostile_input_lines_are_invalid_or_fetched_and_the_run_goes_on(
    server: HTTPTestServer, tmp_path: Any
) -> None:
    lines: list[bytes] = [
        b"http://127.0.0.1/\x00nul",
        b"http://example.test/\x1b[31mred",
        b"\xff\xfe not utf-8",
        b"x" * (70 * 1024),
        server.url("/ok/[bold]markup[/bold]").encode(),
        server.url("/ok/after").encode(),
    ]
    path = tmp_path / "hostile.txt"
    path.write_bytes(b"\n".join(lines) + b"\n" + b"\n" * 100_000)
    done = run_fetchpool(path, "--format", "jsonl")
    records = parse_jsonl(done.stdout)
    assert len(records) == 6
    by_line = {r["line"]: r for r in records}
    for line in (1, 2, 3, 4):
        assert by_line[line]["kind"] == "invalid", by_line[line]
    assert by_line[5]["outcome"] == "ok"
    assert by_line[6]["outcome"] == "ok"


def _ipv6_loopback_available() -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return True
    return False


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_ipv6_literal_is_fetched() -> None:
    with HTTPTestServer(host="::1") as v6:
        result = fetch_one(f"http://[::1]:{v6.port}/ok/v6")
    assert result.outcome is Outcome.OK


def test_internationalised_domain_name_is_resolved_as_punycode(
    no_dns_for_invalid: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    patched = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host.decode() if isinstance(host, bytes) else str(host))
        return patched(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = fetch_one("http://bücher.invalid/", retries=0)
    assert result.kind is Kind.DNS
    assert "xn--bcher-kva.invalid" in asked


def test_a_thousand_workers_against_one_server_do_not_run_out_of_files(
    fresh_server: HTTPTestServer, tmp_path: Any
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt", [fresh_server.url(f"/delay/300/{i}") for i in range(1000)]
    )
    done = run_fetchpool(urls, "--workers", "1000", "--format", "jsonl", timeout=60)
    records = parse_jsonl(done.stdout)
    assert len(records) == 1000
    failures = [r for r in records if r["outcome"] != "ok"]
    assert not failures, json.dumps(failures[:3])
    assert done.returncode == 0


def test_a_c1_control_in_an_input_line_is_invalid_and_never_echoed_raw(tmp_path: Any) -> None:
    path = tmp_path / "c1.txt"
    path.write_bytes("http://127.0.0.1:9/a\u009b31mRED\n".encode())
    for fmt in ("jsonl", "plain", "csv"):
        done = run_fetchpool(path, "--format", fmt)
        assert "\u009b".encode() not in done.stdout, fmt
        assert b"\\x9b" in done.stdout or b"\\u009b" in done.stdout, fmt  # shown as an escape
    (record,) = parse_jsonl(run_fetchpool(path, "--format", "jsonl").stdout)
    assert record["kind"] == "invalid"


def test_a_bad_redirect_location_is_a_fail_of_kind_redirect(server: HTTPTestServer) -> None:
    bad = quote("http://[::1", safe="")
    result = fetch_one(server.url(f"/redirect-to?url={bad}"))
    assert result.kind is Kind.REDIRECT
    assert (result.error or "").startswith("bad redirect Location")


def test_an_empty_reply_is_a_connection_error_and_is_retried(fresh_server: HTTPTestServer) -> None:
    result = fetch_one(fresh_server.url("/close-no-response"), retries=1)
    assert result.kind is Kind.CONNECT
    assert result.error == "server closed the connection without a response"
    assert result.attempts == 2
