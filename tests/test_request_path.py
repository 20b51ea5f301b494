"""One request path for every mode: fetchpool's own transport, `--http2` and proxies follow the
same rules for credentials, cookies, headers and redirects, and proxies follow the environment."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from frontends import ForwardProxy, H2Front
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import Result


def fetch_all(urls: list[str], **options: Any) -> list[Result]:
    async def run() -> list[Result]:
        return [r async for r in fetchpool.fetch(urls, timeout=5, retries=0, **options)]

    return asyncio.run(run())


@dataclass
class Way:
    """One way to reach the routes of the test server, and the options that take it."""

    name: str
    base: str  # an origin that serves the routes
    options: dict[str, Any]
    http_version: str
    proxy: ForwardProxy | None = None

    @property
    def other(self) -> str:
        """Another origin (another host name) that serves the same routes."""
        return self.base.replace("127.0.0.1", "localhost")

    def url(self, path: str, userinfo: str = "") -> str:
        base = self.base.replace("://", f"://{userinfo}@") if userinfo else self.base
        return f"{base}{path}/{self.name}"


@pytest.fixture(params=["own-transport", "http2", "proxy"])
def way(request: pytest.FixtureRequest, server: HTTPTestServer) -> Way:
    if request.param == "http2":
        front: H2Front = request.getfixturevalue("h2_server")
        return Way("http2", front.base, {"http2": True, "verify": False}, "HTTP/2")
    if request.param == "proxy":
        proxy: ForwardProxy = request.getfixturevalue("proxy")
        return Way("proxy", server.base, {"proxy": proxy.url}, "HTTP/1.1", proxy)
    return Way("own-transport", server.base, {}, "HTTP/1.1")


def requests_to(server: HTTPTestServer, path: str) -> list[dict[str, str]]:
    return [
        {k.lower(): v for k, v in r.headers} for r in server.requests if r.target.startswith(path)
    ]


def redirect_to(way: Way, location: str, userinfo: str = "") -> str:
    return way.url(f"/redirect-to?url={quote(location, safe='')}&x=", userinfo)


def test_url_credentials_go_to_their_origin_only(way: Way, server: HTTPTestServer) -> None:
    elsewhere = f"{way.other}/auth/credentials-elsewhere-{way.name}"
    urls = [
        way.url("/basic-auth/al%40ce/p%3Aw", "al%40ce:p%3Aw"),
        redirect_to(way, elsewhere, "u:pw"),
    ]
    results = fetch_all(urls, **way.options)
    assert [(r.outcome.label, r.status, r.http_version) for r in results] == [
        ("OK", 200, way.http_version)
    ] * 2
    assert results[0].url.startswith(way.base.replace("://", "://al%40ce:***@"))
    (sent,) = requests_to(server, f"/redirect-to?url={quote(elsewhere, safe='')}")
    assert sent["authorization"] == "Basic " + base64.b64encode(b"u:pw").decode()
    (leaked,) = requests_to(server, f"/auth/credentials-elsewhere-{way.name}")
    assert "authorization" not in leaked


def test_cookies_of_a_chain_go_with_its_later_hops_and_no_further(
    way: Way, server: HTTPTestServer
) -> None:
    urls = [
        way.url(f"/set-cookie?c=a%3D1&to=%2Fneed-cookie%2Fa%2F{way.name}&x="),
        way.url("/cookie-gate/g"),
        way.url("/cookie/after-the-chain"),
    ]
    results = fetch_all(urls, workers=1, **way.options)
    assert [(r.outcome.label, r.status) for r in results] == [("OK", 200)] * 3
    (after,) = requests_to(server, f"/cookie/after-the-chain/{way.name}")
    assert "cookie" not in after


def test_headers_and_run_credentials_keep_to_the_input_origin(
    way: Way, server: HTTPTestServer
) -> None:
    elsewhere = f"{way.other}/headers/elsewhere-{way.name}"
    options = {
        "headers": (("X-Extra", "1"), ("Cookie", "a=1")),
        "user": "al:pw",
        **way.options,
    }
    results = fetch_all([way.url("/headers/direct"), redirect_to(way, elsewhere)], **options)
    assert [r.outcome.label for r in results] == ["OK", "OK"]
    (direct,) = requests_to(server, f"/headers/direct/{way.name}")
    (other,) = requests_to(server, f"/headers/elsewhere-{way.name}")
    common = {"user-agent", "accept", "accept-encoding", "x-extra", "host"}
    assert set(direct) == common | {"authorization", "cookie"}
    assert (direct["cookie"], direct["user-agent"]) == ("a=1", fetchpool.Settings().user_agent)
    assert set(other) == common
    if way.proxy is not None:
        assert len(way.proxy.targets) == 3


def test_no_proxy_from_the_environment_bypasses_the_proxy(
    monkeypatch: pytest.MonkeyPatch, server: HTTPTestServer, proxy: ForwardProxy
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    proxied = server.url("/ok/env-proxied")
    direct = server.url("/ok/env-direct").replace("127.0.0.1", "localhost")
    for http2 in (False, True):
        results = fetch_all([proxied, direct], workers=1, http2=http2)
        assert [r.outcome.label for r in results] == ["OK", "OK"]
    assert proxy.targets == [proxied, proxied]


def test_the_proxy_option_takes_every_request_whatever_no_proxy_says(
    monkeypatch: pytest.MonkeyPatch, server: HTTPTestServer, proxy: ForwardProxy
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    url = server.url("/ok/option-proxied")
    assert fetch_all([url], proxy=proxy.url)[0].ok
    assert proxy.targets == [url]


def test_any_httpx_client_can_carry_the_requests(server: HTTPTestServer) -> None:
    async def run() -> list[Result]:
        async with httpx.AsyncClient() as client:
            urls = [server.url("/set-cookie?c=k%3D1&to=%2Fneed-cookie%2Fk%2Fclient"),
                    server.url("/cookie/client-after")]  # fmt: skip
            return [r async for r in fetchpool.fetch(urls, workers=1, client=client)]

    assert [(r.outcome.label, r.status) for r in asyncio.run(run())] == [("OK", 200)] * 2
    (after,) = requests_to(server, "/cookie/client-after")
    assert "cookie" not in after
    assert len([k for k in after if k == "host"]) == 1


def test_a_client_from_make_client_is_used_through_its_transport(server: HTTPTestServer) -> None:
    async def run() -> tuple[list[Result], int]:
        settings = fetchpool.Settings(workers=1, timeout=5)
        async with fetchpool.make_client(settings) as client:
            urls = [server.url("/set-cookie?c=z%3D1")]
            results = [r async for r in fetchpool.fetch(urls, settings=settings, client=client)]
            return results, len(client.cookies)

    results, cookies_in_the_client = asyncio.run(run())
    assert [r.ok for r in results] == [True]
    assert cookies_in_the_client == 0  # client.send() would have filled its jar
