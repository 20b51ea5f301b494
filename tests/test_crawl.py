"""Crawling a site (`--recursive`): one test per promise of the contract's "Crawling a site".

Each test crawls a generated site (`crawlsite.py`: origin A on 127.0.0.1, origin B on
127.0.0.2) with the real `fetchpool` command and checks two things: what the servers saw (each
URL requested exactly once, pages that must not be followed never had their links requested)
and the jsonl results (one per place: the page URL as source and the line in its HTML).

Where the contract is silent the tests accept either reading: a link's `url` may be the href
as written or the absolute URL it resolves to; a page reached through a redirect may be named
as source by the URL linked or by its final URL; the order of results is free.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from clihelpers import (
    parse_jsonl,
    parse_summary,
    run_fetchpool,
    spawn_fetchpool,
    wait_exit,
)
from crawlsite import (
    HTML,
    Crawl,
    Resource,
    Site,
    SiteServer,
    mesh_files,
    slow_resource,
    tree_files,
)
from httpserver import wait_until

# As in test_signals.py: the contract's one second plus 0.5 s for scheduling noise on CI.
GONE_WITHIN = 1.5
CRAWL_TIMEOUT = 60.0

Record = dict[str, Any]


@pytest.fixture
def site() -> Iterator[Site]:
    """The generated site of this test's own (fresh request counts)."""
    with Site() as served:
        yield served


@pytest.fixture
def tree() -> Iterator[SiteServer]:
    """A binary tree of 63 pages, `/tree/1.html` the root, each with its own note."""
    with SiteServer() as server:
        server.files = tree_files(server.base).get
        yield server


def crawl(
    *args: str, status: int | tuple[int, ...], timeout: float = CRAWL_TIMEOUT
) -> list[Record]:
    """Run `fetchpool --format jsonl *args` to the end; its exit status must be `status`."""
    done = run_fetchpool("--format", "jsonl", *args, timeout=timeout)
    wanted = status if isinstance(status, tuple) else (status,)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode in wanted, f"exit {done.returncode}, stderr: {stderr}"
    assert "Traceback" not in stderr, stderr
    return parse_jsonl(done.stdout)


def assert_requested(site: Site, expected: Crawl) -> None:
    """Every URL of `expected.requested` was requested exactly once (any method), optional
    ones at most once, and nothing else (robots.txt and sitemaps aside)."""
    counts = site.counts()
    missing = sorted(expected.requested - counts.keys())
    twice = sorted(u for u, n in counts.items() if n > 1 and u not in expected.meta)
    allowed = expected.requested | expected.optional | expected.meta
    stray = sorted(u for u in counts if u not in allowed)
    assert (missing, twice, stray) == ([], [], []), "missing / requested twice / never wanted"


def pages_requested(server: SiteServer) -> Counter[str]:
    """Requests per URL of a one-origin site, its robots.txt aside (a crawl reads it)."""
    return Counter({u: n for u, n in server.counts().items() if not u.endswith("/robots.txt")})


def by_place(records: list[Record], expected: Crawl) -> dict[tuple[str, int], list[Record]]:
    """Results grouped by place; a redirected page's source is taken as its final URL."""
    places: dict[tuple[str, int], list[Record]] = {}
    for record in records:
        source = str(expected.redirects.get(record["source"], record["source"]))
        places.setdefault((source, int(record["line"])), []).append(record)
    return places


def assert_places(records: list[Record], expected: Crawl) -> None:
    """One result per expected place, with the expected URL, outcome, kind and status."""
    places = by_place(records, expected)
    problems = []
    for key, want in expected.places.items():
        got = places.pop(key, [])
        if len(got) != 1:
            problems.append((key, f"{len(got)} results"))
            continue
        (record,) = got
        if record["url"] not in (want.link.href, want.link.url):
            problems.append((key, f"url {record['url']!r}, want {want.link.url!r}"))
        if (record["outcome"], record["kind"]) != (want.outcome, want.kind):
            problems.append((key, f"{record['outcome']}/{record['kind']}, want {want}"))
        if want.status is not None and record["status"] != want.status:
            problems.append((key, f"status {record['status']}, want {want.status}"))
    for key in expected.optional_places:
        if len(places.pop(key, [])) > 1:
            problems.append((key, "an optional place reported more than once"))
    # Pages started from a sitemap have a result whose source the contract leaves open, and
    # so has the fetch of a sitemap itself (fetchpool reports it, so a broken one shows).
    rest = [
        r
        for rs in places.values()
        for r in rs
        if r["url"] not in expected.sitemap_starts and r["url"] not in expected.meta
    ]
    assert (problems, rest) == ([], []), "wrong places / results at no expected place"


# -- the site as a whole ------------------------------------------------------------------


def test_every_page_reached_from_the_start_url_on_its_origin_is_followed(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    expected = site.expect()
    assert_requested(site, expected)
    assert_places(records, expected)
    # Not vacuous: the whole tree and every special page of origin A was followed.
    assert site.main.url("/pages/p300.html") in expected.followed
    assert len(expected.followed) > 300


def test_links_to_other_origins_are_checked_but_never_followed(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    expected = site.expect()
    other = site.other.counts()
    linked = {u for u in expected.requested if u.startswith(site.other.base + "/")}
    assert len(linked) >= 10  # B's OK pages, B's broken links and the anchors page
    # Each is checked with one request; nothing else of B is requested (robots.txt aside).
    assert {u: n for u, n in other.items() if u not in expected.meta} == dict.fromkeys(linked, 1)
    # B's pages link B's /ext/never-* and A's /from-b/*: following them would request those.
    assert [u for u in site.counts() if "/never-" in u or "/from-b/" in u] == []
    broken = site.other.url("/ext/missing-7.html")
    outcomes = [(r["outcome"], r["status"]) for r in records if r["url"] == broken]
    assert outcomes == [("fail", 404)]
    fine = site.other.url("/ext/ok-0.html")
    assert {(r["outcome"], r["status"]) for r in records if r["url"] == fine} == {("ok", 200)}


def test_the_same_host_on_another_port_is_another_origin(tree: SiteServer) -> None:
    # Origin is scheme, host and port: a tree on 127.0.0.1 but another port is checked only.
    with SiteServer() as start:
        link = tree.url("/tree/1.html")
        start.files = {
            "/": Resource(body=f'<!doctype html>\n<a href="{link}">x</a>\n'.encode())
        }.get
        records = crawl("--recursive", start.url("/"), status=0)
    assert pages_requested(tree) == {link: 1}
    assert [(r["url"], r["source"], r["line"]) for r in records if r["url"] == link] == [
        (link, start.url("/"), 2)
    ]


def test_each_start_urls_origin_is_crawled(tree: SiteServer) -> None:
    with SiteServer(host="127.0.0.2") as second:
        second.files = tree_files(second.base).get
        starts = [tree.url("/tree/1.html"), second.url("/tree/1.html")]
        crawl("--recursive", "--max-depth", "1", *starts, status=0)
        for server in (tree, second):
            notes = sorted(u.rsplit("/", 1)[1] for u in pages_requested(server) if "/notes/" in u)
            assert notes == ["1.txt", "2.txt", "3.txt"], server.base


def test_each_url_is_fetched_once_and_reported_at_every_place(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    expected = site.expect()
    counts = site.counts()
    assert all(counts[url] == 1 for url in expected.requested), counts.most_common(5)
    # `/` is the start URL and is linked from every page: one request, a result at each place.
    home = [r for r in records if r["url"] in (site.start, "/")]
    places = {(r["source"], r["line"]) for r in home}
    wanted = {key for key, want in expected.places.items() if want.link.url == site.start}
    assert len(home) == len(places) == len(wanted) > 300
    assert {r["outcome"] for r in home} == {"ok"}
    assert_places(records, expected)


def test_broken_links_are_reported_at_their_page_and_line(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    failed = {(r["source"], r["line"]): r for r in records if r["outcome"] != "ok"}
    planted = {(page, line): link for page, line, link in site.broken}
    assert len(planted) >= 25
    assert set(failed) == set(planted)
    for place, link in planted.items():
        record = failed[place]
        assert record["url"] in (link.href, link.url), (place, record)
        assert (record["outcome"], record["status"], record["kind"]) == ("fail", 404, "http")


# -- how far a crawl goes -----------------------------------------------------------------


def test_max_depth_zero_follows_only_the_start_pages(site: Site) -> None:
    records = crawl("--recursive", "--max-depth", "0", site.start, status=0)
    expected = site.expect(max_depth=0)
    assert expected.followed == [site.start]
    assert_requested(site, expected)
    assert_places(records, expected)
    # The start page's links were checked, and not one link of theirs.
    assert site.counts()[site.main.url("/pages/p1.html")] == 1
    assert site.counts()[site.main.url("/pages/p2.html")] == 0


def test_max_depth_n(site: Site) -> None:
    records = crawl("--recursive", "--max-depth", "3", site.start, status=1)
    expected = site.expect(max_depth=3)
    assert_requested(site, expected)
    assert_places(records, expected)
    # p_i is floor(log2 i) + 1 links from `/`: p4-p7 (depth 3) are followed, so p8-p15
    # (depth 4) are checked, but not followed: p16 (depth 5) is never requested.
    counts = site.counts()
    assert [counts[site.main.url(f"/pages/p{i}.html")] for i in (7, 8, 15, 16)] == [1, 1, 1, 0]


def test_max_pages_stops_following_but_still_checks(tree: SiteServer) -> None:
    records = crawl("--recursive", "--max-pages", "10", tree.url("/tree/1.html"), status=0)
    counts = pages_requested(tree)
    # Each page has a note that only it links: a page was followed iff its note was fetched.
    followed = {int(u.rsplit("/", 1)[1][:-4]) for u in counts if "/notes/" in u}
    assert len(followed) == 10, sorted(followed)
    assert 1 in followed
    checked = {int(u.rsplit("/", 1)[1][:-5]) for u in counts if "/tree/" in u}
    children = {j for i in followed for j in (2 * i, 2 * i + 1) if j <= 63}
    # Every link of a followed page was checked, and nothing else was requested.
    assert checked == {1} | children
    assert followed <= checked
    assert set(counts.values()) == {1}
    assert {r["outcome"] for r in records} == {"ok"}
    links = sum(1 + sum(j <= 63 for j in (2 * i, 2 * i + 1)) for i in followed)
    assert len(records) == 1 + links


@pytest.mark.parametrize("layout", ["index", "urlset"])
def test_sitemap_adds_start_pages_including_index_and_gzip(
    layout: Literal["index", "urlset"],
) -> None:
    with Site(sitemap=layout) as site:
        records = crawl("--recursive", "--sitemap", site.start, status=1)
        expected = site.expect(sitemap=True)
        assert_requested(site, expected)
        assert_places(records, expected)
        counts = site.counts()
    read = ["/sitemap.xml", *(["/sitemap-1.xml", "/sitemap-2.xml.gz"] if layout == "index" else [])]
    assert all(counts[site.main.url(path)] >= 1 for path in read), counts
    # The orphans, listed only in the sitemaps, were fetched and followed.
    for name in ("one", "two"):
        assert counts[site.main.url(f"/orphans/{name}.html")] == 1
        assert counts[site.main.url(f"/orphans/child-{name}.html")] == 1
    results = Counter(r["url"] for r in records)
    assert all(results[url] >= 1 for url in site.orphans)


def test_without_sitemap_pages_only_in_the_sitemap_are_not_fetched(site: Site) -> None:
    crawl("--recursive", site.start, status=1)
    counts = site.counts()
    assert [counts[url] for url in site.orphans] == [0, 0]


def test_robots_txt_is_obeyed_for_following(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    counts = site.counts()
    private = site.main.url("/private/index.html")
    assert counts[private] == 1  # checked: links are always checked
    assert counts[site.main.url("/private/secret.html")] == 0  # but not followed
    assert counts[site.main.url("/after-private.html")] == 0
    assert counts[site.main.url("/robots.txt")] >= 1
    assert [r["outcome"] for r in records if r["url"] in (private, "/private/index.html")] == ["ok"]


def test_ignore_robots_follows_disallowed_pages(site: Site) -> None:
    records = crawl("--recursive", "--ignore-robots", site.start, status=1)
    expected = site.expect(ignore_robots=True)
    assert_requested(site, expected)
    assert_places(records, expected)
    counts = site.counts()
    assert counts[site.main.url("/private/secret.html")] == 1
    assert counts[site.main.url("/after-private.html")] == 1


# -- what is followed, and how links resolve ----------------------------------------------


def test_only_html_pages_are_followed_by_content_type(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    counts = site.counts()
    assets = [site.main.url(p) for p in ("/assets/logo.png", "/assets/manual.pdf")]
    plain = site.main.url("/assets/listing.html")
    assert [counts[url] for url in [*assets, plain]] == [1, 1, 1]  # checked
    assert [u for u in counts if "/never/" in u] == []  # not parsed for links
    assert {r["outcome"] for r in records if r["source"] == site.start} == {"ok"}


def test_links_resolve_against_the_final_url_after_redirects(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    counts = site.counts()
    moved, landing = site.main.url("/old/moved.html"), site.main.url("/new/dir/landing.html")
    assert (counts[moved], counts[landing]) == (1, 1)
    # landing.html's `next.html` and `../sibling.html`, against the final URL.
    assert counts[site.main.url("/new/dir/next.html")] == 1
    assert counts[site.main.url("/new/sibling.html")] == 1
    # Against the URL linked (/old/moved.html) they would have been these.
    assert (counts[site.main.url("/old/next.html")], counts[site.main.url("/sibling.html")]) == (
        0,
        0,
    )
    [record] = [r for r in records if r["url"] in (moved, "/old/moved.html")]
    assert (record["outcome"], record["final_url"]) == ("ok", landing)
    from_landing = [r for r in records if r["source"] in (moved, landing)]
    assert len(from_landing) == 3
    assert {r["outcome"] for r in from_landing} == {"ok"}


def test_links_resolve_against_base_href(site: Site) -> None:
    records = crawl("--recursive", site.start, status=1)
    counts = site.counts()
    assert counts[site.main.url("/other/dir/a.html")] == 1
    assert counts[site.main.url("/other/b.html")] == 1
    assert counts[site.main.url("/base/a.html")] == counts[site.main.url("/b.html")] == 0
    page = site.main.url("/base/page.html")
    from_page = [r for r in records if r["source"] == page]
    assert {r["outcome"] for r in from_page} == {"ok"}
    assert len(from_page) >= 3  # a.html, ../b.html, / (and perhaps the <base> href itself)


def test_check_fragments_across_pages(site: Site) -> None:
    records = crawl("--recursive", "--check-fragments", site.start, status=1)
    expected = site.expect(check_fragments=True)
    assert_requested(site, expected)
    assert_places(records, expected)
    page = site.main.url("/frag/index.html")
    verdicts = {
        r["url"].rsplit("#", 1)[-1]: (r["outcome"], r["kind"])
        for r in records
        if r["source"] == page and "#" in r["url"]
    }
    assert verdicts == {
        "present": ("ok", None),
        "named": ("ok", None),
        "absent": ("fail", "fragment"),
        "top": ("ok", None),
        "local": ("ok", None),
        "not-here": ("fail", "fragment"),
        "there": ("ok", None),
        "gone": ("fail", "fragment"),
    }
    # The target pages were each read once, for all of their fragments.
    counts = site.counts()
    assert counts[site.main.url("/frag/target.html")] == 1
    assert counts[site.other.url("/ext/anchors.html")] == 1


# -- the pool ----------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_a_crawl_with_one_worker_of_a_500_page_site_completes() -> None:
    # Every page finds 50 more: a worker that waited for room in a bounded queue that only
    # workers empty would deadlock here at once.
    with SiteServer() as server:
        server.files = mesh_files(server.base, 500, 50).get
        start = server.url("/mesh/0.html")
        records = crawl("--recursive", "--workers", "1", start, status=0, timeout=120)
        counts = pages_requested(server)
    assert len(counts) == 500
    assert set(counts.values()) == {1}
    assert len(records) == 1 + 500 * 50
    assert {r["outcome"] for r in records} == {"ok"}


# -- ending a crawl ----------------------------------------------------------------------


def _assert_every_url_read_has_one_result(server: SiteServer, records: list[Record]) -> None:
    places = Counter((r["source"], r["line"]) for r in records)
    assert max(places.values()) == 1, places.most_common(3)
    reported = {r["url"] for r in records}
    requested = set(pages_requested(server))
    # A page that was requested was read; its result is there (by absolute or written URL).
    unreported = {u for u in requested if u not in reported and u.rsplit("/", 1)[1] not in reported}
    assert unreported == set()
    assert {r["outcome"] for r in records} <= {"ok", "cancelled"}


def test_ctrl_c_mid_crawl_exits_within_a_second_with_cancelled_rows() -> None:
    with SiteServer() as server:
        server.files = slow_resource(server.base, delay=0.2, fanout=20)
        proc = spawn_fetchpool(
            "--recursive", "--workers", "4", "--format", "jsonl", server.url("/slow/0.html")
        )
        try:
            going = wait_until(
                lambda: proc.poll() is not None or len(pages_requested(server)) >= 12, 15
            )
            if proc.poll() is not None:
                out, err = wait_exit(proc, 5)
                raise AssertionError(f"exit {proc.returncode} before Ctrl-C, stderr: {err!r}")
            assert going, "the crawl never got going"
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = wait_exit(proc, 10)
            gone_after = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        assert gone_after < GONE_WITHIN, f"still running {gone_after:.2f} s after SIGINT"
        assert proc.returncode == 130, err
        assert b"Traceback" not in err, err
        records = parse_jsonl(out)
        _assert_every_url_read_has_one_result(server, records)
    cancelled = [r for r in records if r["outcome"] == "cancelled"]
    assert len(cancelled) >= 4, "at least the pages in flight were cancelled"
    assert all(r["kind"] == "cancelled" and r["error"] for r in cancelled)
    assert parse_summary(err).cancelled == len(cancelled)


def test_max_time_cancels_the_rest_of_the_crawl() -> None:
    with SiteServer() as server:
        server.files = slow_resource(server.base, delay=0.2, fanout=20)
        start = server.url("/slow/0.html")
        done = run_fetchpool(
            "--recursive", "--max-time", "1.5", "-w", "2", "-f", "jsonl", start, timeout=20
        )
        assert done.returncode == 1, f"exit {done.returncode}, stderr: {done.stderr.decode()}"
        assert b"Traceback" not in done.stderr
        records = parse_jsonl(done.stdout)
        _assert_every_url_read_has_one_result(server, records)
    ok = [r for r in records if r["outcome"] == "ok"]
    cancelled = [r for r in records if r["outcome"] == "cancelled"]
    assert ok, "some pages were crawled before the deadline"
    assert cancelled, "the rest of the crawl was cancelled"
    assert all("run deadline reached" in r["error"] for r in cancelled)
    assert all(r["kind"] == "cancelled" for r in cancelled)


# -- invocation ---------------------------------------------------------------------------


def test_short_option_r(tree: SiteServer) -> None:
    records = crawl("-r", "--max-depth", "1", tree.url("/tree/1.html"), status=0)
    counts = pages_requested(tree)
    # Depth 1 pages (2 and 3) were followed: their notes and children were requested.
    assert {u.rsplit("/", 2)[1] + "/" + u.rsplit("/", 1)[1] for u in counts} == {
        "tree/1.html",
        "tree/2.html",
        "tree/3.html",
        "tree/4.html",
        "tree/5.html",
        "tree/6.html",
        "tree/7.html",
        "notes/1.txt",
        "notes/2.txt",
        "notes/3.txt",
    }
    assert len(records) == 1 + 3 * 3


def test_url_argument_is_a_start_page(tree: SiteServer) -> None:
    first, second = tree.url("/tree/1.html"), tree.url("/tree/5.html")
    records = crawl("--recursive", "--max-depth", "0", first, second, status=0)
    starts = sorted((r["line"], r["url"]) for r in records if r["source"] == "<args>")
    assert starts == [(1, first), (2, second)]
    counts = pages_requested(tree)
    # Both were followed (depth 0): their notes and children were checked, nothing further.
    assert {u.rsplit("/", 2)[1] + "/" + u.rsplit("/", 1)[1] for u in counts} == {
        "tree/1.html",
        "tree/2.html",
        "tree/3.html",
        "notes/1.txt",
        "tree/5.html",
        "tree/10.html",
        "tree/11.html",
        "notes/5.txt",
    }
    assert {r["source"] for r in records} == {"<args>", first, second}


def test_a_robots_txt_that_cannot_be_read_follows_no_page_of_its_origin_with_one_warning(
    tree: SiteServer,
) -> None:
    # RFC 9309: a robots.txt answering 5xx means "complete disallow" until it can be read.
    files = tree_files(tree.base)
    files["/robots.txt"] = Resource(status=503, content_type="text/plain", body=b"down\n")
    tree.files = files.get
    done = run_fetchpool("--format", "jsonl", "--recursive", tree.url("/tree/1.html"))
    assert done.returncode == 0, done.stderr
    counts = pages_requested(tree)
    # The start page (a URL argument) is followed; its links are checked, not followed.
    assert sorted(u.rsplit("/", 2)[-2] + "/" + u.rsplit("/", 1)[1] for u in counts) == [
        "notes/1.txt",
        "tree/1.html",
        "tree/2.html",
        "tree/3.html",
    ]
    warnings = [line for line in done.stderr.decode().splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "robots.txt" in warnings[0]
    assert "HTTP 503" in warnings[0]
    assert "--ignore-robots" in warnings[0]


def _html(*hrefs: str) -> bytes:
    lines = ["<!doctype html>", "<html><body>", *(f'<a href="{h}">x</a>' for h in hrefs)]
    return ("\n".join([*lines, "</body></html>"]) + "\n").encode()


def test_a_page_found_too_deep_first_is_followed_once_found_within_max_depth() -> None:
    # Pages are read concurrently: /b is found 3 links away (via the fast /c, /d) before the
    # slow /a, 1 link away, finds it at depth 2. --max-depth 2 must follow /b, so /e is checked.
    files = {
        "/": Resource(body=_html("/a.html", "/c.html")),
        "/a.html": Resource(body=_html("/b.html"), delay=1.0),
        "/c.html": Resource(body=_html("/d.html")),
        "/d.html": Resource(body=_html("/b.html")),
        "/b.html": Resource(body=_html("/e.html")),
        "/e.html": Resource(body=_html()),
    }
    with SiteServer(files.get) as server:
        records = crawl("--recursive", "--max-depth", "2", server.url("/"), status=0)
        counts = pages_requested(server)
    assert counts[server.url("/e.html")] == 1
    places = sorted((r["url"].rsplit("/", 1)[-1], r["source"].rsplit("/", 1)[-1]) for r in records)
    # Every place once: /b at /a and at /d, /e at /b; nothing reported twice.
    assert places == sorted(
        [
            ("", "<args>"),
            ("a.html", ""),
            ("c.html", ""),
            ("d.html", "c.html"),
            ("b.html", "a.html"),
            ("b.html", "d.html"),
            ("e.html", "b.html"),
        ]
    )


def test_a_start_url_that_redirects_to_another_origin_crawls_that_origin() -> None:
    # http → https, example.org → www.example.org: the site is where the start URL lands.
    with SiteServer() as server:
        other = f"http://localhost:{server.port}"
        files = {
            "/": Resource(status=301, location=f"{other}/home.html"),
            "/home.html": Resource(body=_html("/next.html")),
            "/next.html": Resource(body=_html("/last.html")),
            "/last.html": Resource(body=_html()),
        }
        server.files = files.get
        records = crawl("--recursive", server.url("/"), status=0)
    assert {r["url"] for r in records} >= {f"{other}/next.html", f"{other}/last.html"}


def test_a_root_relative_link_with_a_newline_in_it_resolves_as_a_browser_does() -> None:
    files = {
        "/": Resource(body=b'<a href="/docs/\npage.html">x</a>\n'),
        "/docs/page.html": Resource(),
    }
    with SiteServer(files.get) as server:
        records = crawl("--recursive", server.url("/"), status=0)
    assert server.url("/docs/page.html") in {r["url"] for r in records}


def test_a_page_in_an_encoding_fetchpool_cannot_undo_is_checked_not_failed() -> None:
    files = {"/": Resource(body=_html("/br.html")), "/br.html": Resource(body=b"\x8b\x03\x80")}
    with SiteServer(files.get) as server:
        original = server._dispatch

        async def with_brotli(conn: Any, request: Any) -> bool:
            if request.path == "/br.html":
                await conn.send(
                    200, b"\x8b\x03\x80", content_type=HTML, headers=[("Content-Encoding", "br")]
                )
                return False
            return await original(conn, request)

        server._dispatch = with_brotli  # type: ignore[method-assign]
        records = crawl("--recursive", server.url("/"), status=0)
    assert {r["outcome"] for r in records} == {"ok"}


def test_robots_rules_match_as_rfc_9309_says_longest_rule_and_wildcards() -> None:
    # Disallow: / with Allow: /public/ follows /public/ (the longest rule wins); a `*`
    # pattern disallows the sorted listing. The first-match standard-library parser did
    # neither.
    robots = b"User-agent: *\nDisallow: /\nAllow: /public/\nDisallow: /*?sort=\n"
    files = {
        "/": Resource(body=_html("/public/a.html", "/public/list.html?sort=1", "/private.html")),
        "/robots.txt": Resource(content_type="text/plain", body=robots),
        "/public/a.html": Resource(body=_html("/public/leaf.html")),
        "/public/leaf.html": Resource(body=_html()),
        "/public/list.html": Resource(body=_html("/public/sorted-only.html")),
        "/private.html": Resource(body=_html("/never.html")),
    }
    with SiteServer(files.get) as server:
        crawl("--recursive", server.url("/"), status=(0, 1))
        counts = pages_requested(server)
    assert counts[server.url("/public/leaf.html")] == 1  # /public/a.html was followed
    assert counts[server.url("/private.html")] == 1  # checked
    assert counts[server.url("/never.html")] == 0  # not followed
    assert counts[server.url("/public/sorted-only.html")] == 0  # ?sort= not followed


def test_robots_txt_is_read_through_its_redirects_even_with_no_follow() -> None:
    # RFC 9309 §2.3.1.2: a crawler follows robots.txt's redirects; --no-follow is about links.
    files = {
        "/": Resource(body=_html("/private/a.html", "/open.html")),
        "/robots.txt": Resource(status=301, location="/real-robots.txt"),
        "/real-robots.txt": Resource(
            content_type="text/plain", body=b"User-agent: *\nDisallow: /private/\n"
        ),
        "/private/a.html": Resource(body=_html("/private/never.html")),
        "/open.html": Resource(body=_html("/leaf.html")),
        "/leaf.html": Resource(body=_html()),
    }
    with SiteServer(files.get) as server:
        done = run_fetchpool("--format", "jsonl", "--recursive", "--no-follow", server.url("/"))
        counts = pages_requested(server)
    assert done.returncode == 0, done.stderr
    assert b"warning" not in done.stderr
    assert counts[server.url("/real-robots.txt")] == 1
    assert counts[server.url("/leaf.html")] == 1  # /open.html followed
    assert counts[server.url("/private/never.html")] == 0  # /private/ disallowed
