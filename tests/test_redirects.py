"""The redirect rules, one function each, without a server."""

from __future__ import annotations

import httpx
import pytest

from fetchpool._models import Kind
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
