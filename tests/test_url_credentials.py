"""Credentials in a URL (`https://user:pass@host/`): sent as Basic auth to that origin only,
and the password never shown: every output, the cache and --save names read `***`."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import quote

import pytest
from clihelpers import parse_jsonl, run_fetchpool, write_lines
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import parse_line

PASSWORD = "s3cr3t-pw"


def _with_userinfo(url: str, userinfo: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest}"


def test_a_password_in_a_url_is_shown_as_stars_and_kept_apart() -> None:
    target = parse_line(b"  https://alice:s3cr%40t@example.org/x?y=1  ", source="f", line=3)
    assert target is not None
    assert target.url == "https://alice:***@example.org/x?y=1"
    assert target.invalid is None
    assert target.credentials is not None
    assert (target.credentials.user, target.credentials.password) == ("alice", "s3cr@t")
    assert "s3cr" not in repr(target)
    assert "s3cr" not in repr(target.credentials)


def test_a_user_without_a_password_is_kept_as_written() -> None:
    target = parse_line(b"https://bob@example.org/")
    assert target is not None
    assert target.url == "https://bob@example.org/"
    assert target.credentials is not None
    assert (target.credentials.user, target.credentials.password) == ("bob", "")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("ftp://u:pw@example.org/", "ftp://u:***@example.org/"),
        ("http://u:pw@example.org:99999/", "http://u:***@example.org:99999/"),
        ("http://u:p w@example.org/", "http://u:***@example.org/"),
    ],
)
def test_a_password_in_an_invalid_line_is_masked_too(line: str, shown: str) -> None:
    target = parse_line(line.encode())
    assert target is not None
    assert target.invalid is not None
    assert target.url == shown
    assert "pw" not in (target.invalid or "")


def test_url_credentials_are_sent_as_basic_auth_to_that_origin_only(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    elsewhere = fresh_server.url("/auth/elsewhere").replace("127.0.0.1", "localhost")
    urls = [
        _with_userinfo(fresh_server.url("/basic-auth/al%40ce/p%3Aw/1"), "al%40ce:p%3Aw"),
        _with_userinfo(fresh_server.url("/basic-auth/bob//2"), "bob"),
        _with_userinfo(
            fresh_server.url(f"/redirect-to?url={quote(elsewhere, safe='')}"), "carol:pw"
        ),
    ]
    done = run_fetchpool(write_lines(tmp_path / "urls.txt", urls), "--format", "jsonl")
    records = parse_jsonl(done.stdout)
    assert [(r["outcome"], r["status"]) for r in records] == [("ok", 200)] * 3, records
    carol = "Basic " + base64.b64encode(b"carol:pw").decode()
    (redirect,) = [r for r in fresh_server.requests if r.path == "/redirect-to"]
    assert redirect.header("Authorization") == carol
    (other,) = [r for r in fresh_server.requests if r.path == "/auth/elsewhere"]
    assert other.header("Authorization") is None
    assert all("@" not in r.target and r.header("Host") for r in fresh_server.requests)


def test_user_option_wins_over_url_credentials_as_in_curl(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    url = _with_userinfo(fresh_server.url("/auth/user-wins"), "dave:wrong")
    path = write_lines(tmp_path / "urls.txt", [url])
    assert run_fetchpool(path, "--user", "dave:right").returncode == 0
    assert run_fetchpool(path).returncode == 0
    sent = [r.header("Authorization") for r in fresh_server.requests]
    basic = ["Basic " + base64.b64encode(pair).decode() for pair in (b"dave:right", b"dave:wrong")]
    assert sent == basic


def test_credentials_in_a_redirect_location_are_neither_sent_nor_shown(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    target = fresh_server.url("/auth/located")
    location = _with_userinfo(target, "eve:l0cation-pw")
    url = fresh_server.url(f"/redirect-to?url={quote(location, safe='')}")
    done = run_fetchpool(write_lines(tmp_path / "urls.txt", [url]), "--format", "jsonl")
    (record,) = parse_jsonl(done.stdout)
    assert (record["outcome"], record["final_url"]) == ("ok", target)
    (request,) = [r for r in fresh_server.requests if r.path == "/auth/located"]
    assert request.header("Authorization") is None


@pytest.mark.parametrize("fmt", ["plain", "jsonl", "csv", "table", "github", "markdown", "sarif"])
def test_the_password_appears_in_no_output_no_cache_and_no_saved_name(
    tmp_path: Path, server: HTTPTestServer, fmt: str
) -> None:
    urls = [
        _with_userinfo(server.url(f"/auth/{fmt}"), f"u:{PASSWORD}"),
        _with_userinfo(server.url(f"/status/404/{fmt}"), f"u:{PASSWORD}"),
        _with_userinfo(server.url(f"/redirect/1/{fmt}"), f"u:{PASSWORD}"),
        f"ftp://u:{PASSWORD}@example.org/",
    ]
    doc = tmp_path / "links.md"
    doc.write_text("".join(f"* <{url}>\n" for url in urls))
    cache, saved = tmp_path / "cache.jsonl", tmp_path / "saved"
    args: list[str | Path] = ["--format", fmt, "--cache", cache, "--save", saved]
    done = run_fetchpool(write_lines(tmp_path / "urls.txt", urls), *args)
    extracted = run_fetchpool("--extract", doc, *args)
    for run in (done, extracted):
        assert run.returncode == 1, run.stderr
        assert PASSWORD.encode() not in run.stdout + run.stderr
        assert b"u:***@" in run.stdout.replace(b"\\*", b"*")  # Markdown escapes "*"
    assert PASSWORD not in cache.read_text()
    assert "***" in cache.read_text()
    assert sorted(p.name for p in saved.iterdir())  # something was saved
    assert not [p for p in saved.rglob("*") if PASSWORD in p.name]


def test_user_option_with_bytes_that_are_not_utf8_is_sent_as_given(
    server: HTTPTestServer,
) -> None:
    # A command-line byte that is not UTF-8 reaches Python as a surrogate: --user sends the
    # original byte (as URL credentials do) instead of failing to build its header.
    async def fetch() -> list[fetchpool.Result]:
        return [r async for r in fetchpool.fetch([server.url("/auth")], user="u:p\udcff")]

    (result,) = asyncio.run(fetch())
    assert result.ok, result
    sent = [r.header("authorization") for r in server.requests if r.path == "/auth"][-1]
    assert sent == "Basic " + base64.b64encode(b"u:p\xff").decode()
