"""Cookies that a response sets during one URL's redirect chain go with the later hops of that
chain, by the usual domain, path, secure and expiry rules, and never to another URL of the run."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import Result


def fetch_all(urls: list[str], **options: Any) -> list[Result]:
    async def run() -> list[Result]:
        return [r async for r in fetchpool.fetch(urls, timeout=5, retries=0, **options)]

    return asyncio.run(run())


def set_cookie(server: HTTPTestServer, *cookies: str, to: str) -> str:
    """A URL that sets `cookies` and redirects to `to`."""
    query = "&".join(f"c={quote(c, safe='')}" for c in cookies)
    return server.url(f"/set-cookie?{query}&to={quote(to, safe='')}")


def outcomes(results: list[Result]) -> list[tuple[str, int | None]]:
    return [(r.outcome.label, r.status) for r in results]


def cookie_sent(server: HTTPTestServer, path: str) -> str | None:
    (request,) = [r for r in server.requests if r.path == path]
    return request.header("Cookie")


def test_a_cookie_set_by_a_redirect_goes_with_the_next_hop(server: HTTPTestServer) -> None:
    results = fetch_all([set_cookie(server, "a=1", to="/need-cookie/a/next-hop")])
    assert outcomes(results) == [("OK", 200)]
    assert cookie_sent(server, "/need-cookie/a/next-hop") == "a=1"


def test_a_redirect_loop_that_ends_once_the_cookie_is_sent_back_is_ok(
    server: HTTPTestServer,
) -> None:
    results = fetch_all([server.url("/cookie-gate/g/loop")])
    assert outcomes(results) == [("OK", 200)]
    assert results[0].final_url == server.url("/cookie-gate/g/loop")
    assert server.hits("/cookie-gate/g/loop") == 2


def test_a_loop_that_sets_the_same_cookie_again_is_still_a_loop(server: HTTPTestServer) -> None:
    loop = set_cookie(server, "same=1", to="/redirect-loop/a")
    (result,) = fetch_all([loop])
    assert (result.kind, result.error) == (
        fetchpool.Kind.REDIRECT,
        "redirect loop after 3 redirects",
    )


@pytest.mark.parametrize(
    ("cookie", "path", "sent"),
    [
        ("s=1; Secure", "/need-cookie/s/http", False),  # http is not secure
        ("p=1; Path=/need-cookie/p", "/need-cookie/p/in-path", True),
        ("q=1; Path=/elsewhere", "/need-cookie/q/out-of-path", False),
        ("e=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/need-cookie/e/expired", False),
        ("m=1; Max-Age=0", "/need-cookie/m/max-age", False),
        ("d=1; Domain=example.org", "/need-cookie/d/other-domain", False),
    ],
)
def test_the_usual_cookie_rules_decide_what_is_sent(
    server: HTTPTestServer, cookie: str, path: str, sent: bool
) -> None:
    (result,) = fetch_all([set_cookie(server, cookie, to=path)])
    assert outcomes([result]) == [("OK", 200) if sent else ("FAIL", 403)]


def test_a_secure_cookie_goes_over_https(tls_server: HTTPTestServer) -> None:
    url = set_cookie(tls_server, "s=1; Secure", to="/need-cookie/s/https")
    assert outcomes(fetch_all([url], verify=False)) == [("OK", 200)]


def test_a_cookie_of_one_host_does_not_go_to_another(server: HTTPTestServer) -> None:
    other = server.url("/need-cookie/h/other-host").replace("127.0.0.1", "localhost")
    assert outcomes(fetch_all([set_cookie(server, "h=1", to=other)])) == [("FAIL", 403)]


def test_chain_cookies_join_the_cookies_given_to_the_run(server: HTTPTestServer) -> None:
    url = set_cookie(server, "j=2", to="/cookie/joined")
    results = fetch_all([url], cookies=(("u", "1"),))
    assert outcomes(results) == [("OK", 200)]
    assert cookie_sent(server, "/cookie/joined") == "u=1; j=2"


def test_a_cookie_never_goes_to_the_next_url_of_the_run(fresh_server: HTTPTestServer) -> None:
    urls = [
        set_cookie(fresh_server, "leak=1", to="/ok/first"),
        fresh_server.url("/set-cookie?c=leak2%3D1"),
        fresh_server.url("/cookie/second"),
    ]
    results = fetch_all(urls, workers=1)
    assert outcomes(results) == [("OK", 200)] * 3
    assert cookie_sent(fresh_server, "/cookie/second") is None
