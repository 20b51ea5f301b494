"""Checks of the crawl tests' generated site (`crawlsite.py`), with the standard library as
the client: the servers answer on both loopback addresses and count every request, robots.txt
and the sitemaps (index, gzip) are served, the model's lines match the HTML, and a small
reference crawler (urllib, html.parser, urllib.robotparser) does exactly what `Site.expect`
says a crawl does."""

from __future__ import annotations

import gzip
import http.client
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Literal
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.request import ProxyHandler, build_opener
from urllib.robotparser import RobotFileParser

import pytest
from crawlsite import HTML, ROBOTS, Site, SiteServer, mesh_files, slow_resource, tree_files

TIMEOUT = 5.0
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_opener = build_opener(ProxyHandler({}))  # straight to the loopback servers


@pytest.fixture
def site() -> Iterator[Site]:
    with Site(pages=60) as served:
        yield served


def request(url: str, method: str = "GET") -> tuple[int, str, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        conn.request(method, parts.path or "/")
        resp = conn.getresponse()
        return (
            resp.status,
            resp.getheader("Content-Type") or "",
            dict(resp.getheaders()),
            resp.read(),
        )
    finally:
        conn.close()


def test_both_origins_answer_on_their_own_loopback_address(site: Site) -> None:
    assert urlsplit(site.start).hostname == "127.0.0.1"
    assert urlsplit(site.other.base).hostname == "127.0.0.2"
    status, ctype, _, body = request(site.start)
    assert (status, ctype) == (200, HTML)
    assert body.startswith(b"<!doctype html>")
    assert request(site.other.url("/ext/ok-0.html"))[:2] == (200, HTML)
    assert request(site.main.url("/no/such/page.html"))[0] == 404
    # B serves its own files only: A's pages are not there.
    assert request(site.other.url("/pages/p1.html"))[0] == 404
    assert site.other.connections_total >= 2  # really served from 127.0.0.2


def test_requests_are_counted_per_url_and_method(site: Site) -> None:
    page = site.main.url("/pages/p1.html")
    request(page)
    request(page)
    request(page, "HEAD")
    request(site.other.url("/ext/missing-1.html"))
    assert site.counts()[page] == 3
    assert site.main.methods()[("GET", "/pages/p1.html")] == 2
    assert site.main.methods()[("HEAD", "/pages/p1.html")] == 1
    assert site.counts()[site.other.url("/ext/missing-1.html")] == 1
    assert len(site.counts()) == 2


def test_head_has_the_headers_of_get_and_no_body(site: Site) -> None:
    status, ctype, headers, body = request(site.main.url("/assets/manual.pdf"), "HEAD")
    assert (status, ctype, body) == (200, "application/pdf", b"")
    assert int(headers["Content-Length"]) > 0


def test_redirect_answers_301_to_the_landing_page(site: Site) -> None:
    status, _, headers, _ = request(site.main.url("/old/moved.html"))
    assert (status, headers["Location"]) == (301, "/new/dir/landing.html")


def test_assets_are_served_with_their_content_types(site: Site) -> None:
    types = {
        path: request(site.main.url(path))[1]
        for path in ("/assets/logo.png", "/assets/manual.pdf", "/assets/listing.html")
    }
    assert types == {
        "/assets/logo.png": "image/png",
        "/assets/manual.pdf": "application/pdf",
        "/assets/listing.html": "text/plain; charset=utf-8",
    }
    assert b'href="/never/plain.html"' in request(site.main.url("/assets/listing.html"))[3]


def test_robots_txt_disallows_the_private_pages(site: Site) -> None:
    status, _, _, body = request(site.main.url("/robots.txt"))
    assert (status, body.decode()) == (200, ROBOTS)
    robots = RobotFileParser()
    robots.parse(body.decode().splitlines())
    assert not robots.can_fetch("fetchpool/1.0", site.main.url("/private/index.html"))
    assert robots.can_fetch("fetchpool/1.0", site.main.url("/pages/p1.html"))


def _locs(body: bytes) -> tuple[str, list[str]]:
    root = ET.fromstring(body)
    return root.tag.removeprefix(_SITEMAP_NS), [
        e.text or "" for e in root.iter(_SITEMAP_NS + "loc")
    ]


def test_sitemap_index_points_to_a_plain_and_a_gzipped_sitemap(site: Site) -> None:
    kind, sitemaps = _locs(request(site.main.url("/sitemap.xml"))[3])
    assert (kind, sitemaps) == (
        "sitemapindex",
        [site.main.url("/sitemap-1.xml"), site.main.url("/sitemap-2.xml.gz")],
    )
    assert _locs(request(sitemaps[0])[3]) == ("urlset", [site.orphans[0]])
    status, ctype, headers, body = request(sitemaps[1])
    assert (status, ctype, "Content-Encoding" in headers) == (200, "application/gzip", False)
    assert _locs(gzip.decompress(body)) == ("urlset", [site.orphans[1]])


def test_sitemap_urlset_lists_both_orphans() -> None:
    with Site(pages=10, sitemap="urlset") as site:
        assert _locs(request(site.main.url("/sitemap.xml"))[3]) == ("urlset", site.orphans)


def test_broken_links_are_planted_on_known_pages_and_lines() -> None:
    with Site() as site:
        broken = {(page.removeprefix(site.main.base), line) for page, line, _ in site.broken}
        assert ("/pages/p25.html", 12) in broken
        assert ("/pages/p40.html", 12) in broken
        assert ("/pages/p7.html", 12) in broken  # to origin B
        assert len(broken) == 29


# -- a reference crawler against the model ------------------------------------------------


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if tag == "base" and name == "href":
                self.base = value
            elif name in ("href", "src") and value:
                self.links.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def _read(url: str) -> tuple[str, str, bytes] | None:
    try:
        with _opener.open(url, timeout=TIMEOUT) as resp:
            return resp.geturl(), resp.headers.get_content_type(), resp.read()
    except HTTPError as exc:
        exc.close()
        return None


def _sitemap_urls(url: str) -> list[str]:
    got = _read(url)
    assert got is not None
    body = gzip.decompress(got[2]) if url.endswith(".gz") else got[2]
    kind, locs = _locs(body)
    if kind == "sitemapindex":
        return [page for sitemap in locs for page in _sitemap_urls(sitemap)]
    return locs


def reference_crawl(
    site: Site, *, max_depth: int | None = None, ignore_robots: bool = False, sitemap: bool = False
) -> dict[str, list[tuple[int, str]]]:
    """A plain breadth-first crawl of origin A; final URL of each page followed -> its links."""
    robots = RobotFileParser()
    robots_txt = _read(site.main.url("/robots.txt"))
    assert robots_txt is not None
    robots.parse(robots_txt[2].decode().splitlines())
    starts = [site.start, *(_sitemap_urls(site.main.url("/sitemap.xml")) if sitemap else [])]
    queue = deque((url, 0) for url in starts)
    seen = set(starts)
    followed: dict[str, list[tuple[int, str]]] = {}
    while queue:
        url, depth = queue.popleft()
        got = _read(url)
        if got is None:
            continue
        final, ctype, body = got
        if (
            not final.startswith(site.main.base + "/")
            or ctype != "text/html"
            or (max_depth is not None and depth > max_depth)
            or not (ignore_robots or robots.can_fetch("fetchpool/1.0", final))
        ):
            continue
        parser = _LinkParser()
        parser.feed(body.decode())
        followed[final] = parser.links
        base = urljoin(final, parser.base) if parser.base else final
        for _, href in parser.links:
            target = urldefrag(urljoin(base, href)).url
            if target not in seen:
                seen.add(target)
                queue.append((target, depth + 1))
    return followed


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_depth": 0},
        {"max_depth": 3},
        {"ignore_robots": True},
        {"sitemap": True},
    ],
    ids=repr,
)
def test_model_matches_a_reference_crawl(options: dict[str, int | bool]) -> None:
    layout: Literal["index", "urlset"] = "index"
    with Site(pages=120, sitemap=layout) as site:
        followed = reference_crawl(site, **options)  # type: ignore[arg-type]
        expected = site.expect(**options)  # type: ignore[arg-type]
        counts = site.counts()
    assert sorted(followed) == sorted(expected.followed)
    # The same links on the same lines as the model says (the <base> element aside).
    for page, links in followed.items():
        model = sorted(
            (key[1], want.link.href) for key, want in expected.places.items() if key[0] == page
        )
        assert sorted(links) == model, page
    # Exactly the URLs the model expects were requested, once each.
    requested = {url: n for url, n in counts.items() if url not in expected.meta}
    assert requested == dict.fromkeys(expected.requested, 1)


def test_model_expects_a_failure_at_each_missing_fragment_only(site: Site) -> None:
    expected = site.expect(check_fragments=True)
    page = site.main.url("/frag/index.html")
    kinds = {
        want.link.href.rsplit("#", 1)[-1]: want.kind
        for (source, _), want in expected.places.items()
        if source == page and "#" in want.link.href
    }
    assert kinds == {
        "present": None,
        "named": None,
        "absent": "fragment",
        "top": None,
        "local": None,
        "not-here": "fragment",
        "there": None,
        "gone": "fragment",
    }


# -- the other generators -----------------------------------------------------------------


def test_tree_pages_link_their_children_and_their_own_note() -> None:
    with SiteServer() as server:
        server.files = tree_files(server.base, 63).get
        body = request(server.url("/tree/5.html"))[3].decode()
        assert [href for _, href in _links_of(body)] == ["10.html", "11.html", "/notes/5.txt"]
        assert [
            href for _, href in _links_of(request(server.url("/tree/40.html"))[3].decode())
        ] == ["/notes/40.txt"]
        assert request(server.url("/notes/40.txt"))[:2] == (200, "text/plain")


def test_mesh_pages_each_link_fifty_others_and_all_are_reachable() -> None:
    files = mesh_files("http://127.0.0.1:9", 500, 50)
    assert len(files) == 500
    linked_from: dict[str, int] = {}
    for resource in files.values():
        targets = {urlsplit(link.url).path for link in resource.links}
        assert len(targets) == 50
        for target in targets:
            linked_from[target] = linked_from.get(target, 0) + 1
    assert set(linked_from) == set(files)
    assert set(linked_from.values()) == {50}


def test_slow_pages_are_made_on_request_and_link_many_more() -> None:
    with SiteServer() as server:
        server.files = slow_resource(server.base, delay=0.05, fanout=20)
        status, ctype, _, body = request(server.url("/slow/3.html"))
        assert (status, ctype) == (200, HTML)
        hrefs = [href for _, href in _links_of(body.decode())]
        assert hrefs == [f"{60 + k}.html" for k in range(1, 21)]
        assert request(server.url("/slow/x.html"))[0] == 404
        resource = server.files("/slow/3.html")
        assert resource is not None
        assert resource.delay == 0.05


def _links_of(body: str) -> list[tuple[int, str]]:
    parser = _LinkParser()
    parser.feed(body)
    return parser.links
