"""Resilience: hostile servers and hostile input (retries, redirects and failure kinds are in
test_retry.py, test_redirects.py and test_classify.py).

Every behaviour is checked against real servers on 127.0.0.1 started by the suite.
Name resolution is the one thing faked (in-process, for `.invalid` names only):
a real failed lookup would query this machine's resolver, which is not on loopback.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any
from urllib.parse import quote

import pytest
from clihelpers import parse_jsonl, run_fetchpool, write_lines
from fetchhelpers import fetch_one
from httpserver import HTTPTestServer

from fetchpool import Kind, Outcome

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
