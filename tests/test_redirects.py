"""The redirect rules, one function each, without a server."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from fetchhelpers import fetch_one
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import Kind, Outcome
from fetchpool._redirects import (
    RedirectChain,
    RedirectError,
    redirect_location,
    redirect_method,
    redirect_url,
)


def _redirect(url: str, status: int, location: str, *cookies: str) -> httpx.Response:
    headers = [("Location", location)] + [("Set-Cookie", c) for c in cookies]
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", url))


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("GET", 303, "GET"),
        ("HEAD", 303, "HEAD"),
        ("POST", 303, "GET"),
        ("POST", 301, "GET"),
        ("POST", 302, "GET"),
        ("HEAD", 301, "HEAD"),
        ("POST", 307, "POST"),
        ("POST", 308, "POST"),
    ],
)
def test_the_method_after_a_redirect_follows_rfc_9110(
    method: str, status: int, expected: str
) -> None:
    assert redirect_method(method, status) == expected


def test_only_a_3xx_with_a_location_is_followed() -> None:
    assert redirect_location(_redirect("http://a.test/", 302, "/b")) == "/b"
    assert redirect_location(_redirect("http://a.test/", 300, "/b")) is None
    assert redirect_location(_redirect("http://a.test/", 302, "")) is None


def test_a_relative_location_resolves_against_the_url_and_drops_its_userinfo() -> None:
    base = httpx.URL("http://a.test/dir/page")
    assert redirect_url(base, "other") == httpx.URL("http://a.test/dir/other")
    assert redirect_url(base, "http://u:p@b.test/x") == httpx.URL("http://b.test/x")


@pytest.mark.parametrize("location", ["ftp://a.test/file", "http://[::1"])
def test_a_location_that_cannot_be_followed_is_a_redirect_error(location: str) -> None:
    with pytest.raises(RedirectError) as info:
        redirect_url(httpx.URL("http://a.test/"), location)
    assert info.value.kind is Kind.REDIRECT


def test_a_chain_that_leaves_its_origin_stays_off_it_even_when_it_comes_back() -> None:
    chain = RedirectChain(httpx.URL("http://a.test/1"), "GET")
    chain.follow(_redirect("http://a.test/1", 302, "/2"), "/2")
    assert chain.same_origin
    chain.follow(_redirect("http://a.test/2", 302, "http://b.test/3"), "http://b.test/3")
    assert not chain.same_origin
    chain.follow(_redirect("http://b.test/3", 302, "http://a.test/4"), "http://a.test/4")
    assert (chain.same_origin, chain.redirects, chain.url) == (
        False,
        3,
        httpx.URL("http://a.test/4"),
    )


def test_the_same_url_again_is_a_loop_unless_a_cookie_set_on_the_way_changes_the_request() -> None:
    chain = RedirectChain(httpx.URL("http://a.test/gate"), "GET")
    chain.follow(_redirect("http://a.test/gate", 302, "/gate", "pass=1; Path=/"), "/gate")
    assert chain.cookie == "pass=1"
    with pytest.raises(RedirectError, match="redirect loop after 2 redirects"):
        chain.follow(_redirect("http://a.test/gate", 302, "/gate"), "/gate")


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
