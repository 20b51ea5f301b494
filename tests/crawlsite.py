"""Generated websites for the crawl tests (`--recursive`), served by real HTTP servers.

`Site` starts two `SiteServer`s (the suite's `HTTPTestServer`, serving generated files): the
crawled origin A on 127.0.0.1 and a second origin B on 127.0.0.2 (Linux routes all of 127/8
to `lo`). Every request is counted per path and method, so a test can assert that each URL
was fetched exactly once. Each served HTML page keeps one link per line, so each link has a
known line; `Link.url` is where it resolves (against the page's final URL and `<base href>`).

Origin A (`Site.main`), start page `/`:

- `/` links to `pages/p1.html`, `/old/moved.html`, `base/page.html`, `<img src=/assets/logo.png>`,
  `assets/manual.pdf`, `/assets/listing.html`, `/private/index.html`, `frag/index.html` and
  B's `/ext/ok-0.html`.
- `/pages/p{i}.html`, i = 1..pages (default 300): a binary tree, so p_i is `floor(log2 i) + 1`
  links from `/`. p_i links to its children p_2i and p_2i+1 (written in turn relative,
  root-relative, absolute same-origin, `./` and `../pages/`), to `/`, and (i >= 3) to a
  lower-numbered page (never a shorter path). Planted, one per line (`Site.broken` lists each
  with its page URL and line): every 25th page links `missing-{i}.html` (404), every 40th
  `/gone/{i}.html` (404); pages with i % 10 == 3 link B's `/ext/ok-{(i // 10) % 4}.html` (200),
  pages with i % 30 == 7 link B's `/ext/missing-{i}.html` (404).
- `/old/moved.html` answers 301 to `/new/dir/landing.html`, whose links `next.html` and
  `../sibling.html` resolve to `/new/dir/next.html` and `/new/sibling.html` against the final
  URL (`/old/next.html` and `/sibling.html`, the wrong resolutions, are 404).
- `/base/page.html` has `<base href="/other/dir/">`: `a.html` -> `/other/dir/a.html`,
  `../b.html` -> `/other/b.html` (`/base/a.html`, `/base/b.html` would be 404). The `<base>`
  element's own href (`/other/dir/`, a 200 page without links) may or may not be checked.
- Assets, fetched and checked but never parsed: `/assets/logo.png` (image/png),
  `/assets/manual.pdf` (application/pdf), `/assets/listing.html` (an HTML document served as
  text/plain); their bodies name `/never/png.html`, `/never/pdf.html`, `/never/plain.html`.
- `robots.txt`: `User-agent: *` / `Disallow: /private/`. `/private/index.html` links
  `secret.html` and `/after-private.html`: requested only when robots are ignored.
- `/frag/index.html` (`id="local"`) links `target.html#present` (an id), `/frag/target.html#named`
  (an `<a name>`), `target.html#absent` (missing), `target.html#top` (always valid), `#local`,
  `#not-here` (missing) and B's `/ext/anchors.html#there` / `#gone` (missing).
- Sitemaps: `sitemap="index"` (default): `/sitemap.xml` is a sitemap index of
  `/sitemap-1.xml` (lists `/orphans/one.html`) and `/sitemap-2.xml.gz` (a gzip file,
  application/gzip, listing `/orphans/two.html`); `sitemap="urlset"`: `/sitemap.xml` lists both
  orphans. No link reaches an orphan; each links `child-one.html` / `child-two.html` and `/`.
- `/from-b/{k}.html` (linked only from B's pages) must never be requested.

Origin B (`Site.other`): `/ext/ok-{k}.html` (k = 0..3) and `/ext/anchors.html` (`id="there"`)
are HTML pages whose links (`/ext/never-*.html`, A's `/from-b/*`) must never be requested.

`Site.expect()` is the model of a correct crawl under given options: which URLs must be
requested (once each), which pages are followed, and the result expected at every place.

Other generators: `tree_files` (a binary tree of pages, each with its own `/notes/{i}.txt`, for
`--max-pages`), `mesh_files` (500 pages each linking 50 others, for `--workers 1`) and
`slow_resource` (endless pages that each take a while and link many more, for Ctrl-C).
`test_site.py` checks all of it, including a reference crawler that agrees with `Site.expect`.
(Not named `site.py`: the standard library's `site` module, imported at start-up, would shadow
it.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urldefrag, urljoin, urlsplit

from httpserver import HTTPTestServer, _Conn, _Request

__all__ = [
    "HTML",
    "Crawl",
    "Expected",
    "Link",
    "Resource",
    "Site",
    "SiteServer",
    "mesh_files",
    "slow_resource",
    "tree_files",
]

HTML = "text/html; charset=utf-8"
ROBOTS = "User-agent: *\nDisallow: /private/\n"
_NOT_FOUND_BODY = b"not found\n"


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a page: its line in the page's HTML, the href as written, and where it
    resolves (absolute, fragment kept). `optional`: a checker may or may not report it."""

    line: int
    href: str
    url: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Resource:
    """What the server answers for one path."""

    status: int = 200
    content_type: str = HTML
    body: bytes = b""
    location: str | None = None
    delay: float = 0.0
    links: tuple[Link, ...] = ()
    anchors: frozenset[str] = frozenset()

    @property
    def is_html(self) -> bool:
        return self.status == 200 and self.content_type.startswith("text/html")


NOT_FOUND = Resource(404, "text/plain; charset=utf-8", _NOT_FOUND_BODY)

Files = Callable[[str], "Resource | None"]
"""Path (no query) -> what to answer; None is a 404."""


class SiteServer(HTTPTestServer):
    """`HTTPTestServer`'s machinery serving generated files instead of its fixed routes.

    Args:
        files: path -> resource (a dict's `get`, or a function for endless sites).
        host: loopback address to listen on.
    """

    def __init__(self, files: Files | None = None, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.files: Files = files or (lambda _path: None)

    def counts(self) -> Counter[str]:
        """Requests per absolute URL (origin + path), any method."""
        with self._lock:
            return Counter(self.base + request.path for request in self.requests)

    def methods(self) -> Counter[tuple[str, str]]:
        """Requests per (method, path)."""
        with self._lock:
            return Counter((request.method, request.path) for request in self.requests)

    async def _dispatch(self, conn: _Conn, request: _Request) -> bool:
        resource = self.files(request.path) or NOT_FOUND
        if resource.delay:
            await asyncio.sleep(resource.delay)
        headers = [("Location", resource.location)] if resource.location else []
        await conn.send(
            resource.status, resource.body, content_type=resource.content_type, headers=headers
        )
        return False


class _Page:
    """Writes one HTML page, one link per line, remembering each link's line and target."""

    def __init__(self, url: str, title: str, *, base: str | None = None, anchor: str = "") -> None:
        self.url = url
        self.resolve_against = urljoin(url, base) if base else url
        self.lines = ["<!doctype html>", "<html>", "<head>", f"<title>{title}</title>"]
        self.links: list[Link] = []
        self.anchors: set[str] = set()
        if base:
            self.lines.append(f'<base href="{base}">')
            self.links.append(Link(len(self.lines), base, urljoin(url, base), optional=True))
        self.lines += ["</head>", "<body>"]
        if anchor:
            self.anchors.add(anchor)
        self.lines.append(f'<h1 id="{anchor}">{title}</h1>' if anchor else f"<h1>{title}</h1>")

    def link(self, href: str, text: str = "link", *, tag: str = "a") -> None:
        if tag == "img":
            self.lines.append(f'<p><img src="{href}" alt="{text}"></p>')
        else:
            self.lines.append(f'<p><a href="{href}">{text}</a></p>')
        self.links.append(Link(len(self.lines), href, urljoin(self.resolve_against, href)))

    def line(self, html: str, *anchors: str) -> None:
        self.lines.append(html)
        self.anchors.update(anchors)

    def resource(self) -> Resource:
        body = "\n".join([*self.lines, "</body>", "</html>", ""]).encode()
        return Resource(body=body, links=tuple(self.links), anchors=frozenset(self.anchors))


def _simple_page(url: str, title: str, hrefs: Iterable[str] = ("/",)) -> Resource:
    page = _Page(url, title)
    for href in hrefs:
        page.link(href)
    return page.resource()


def _urlset(urls: Iterable[str]) -> bytes:
    entries = "".join(f"  <url><loc>{url}</loc></url>\n" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{entries}</urlset>\n"
    ).encode()


def _sitemap_index(urls: Iterable[str]) -> bytes:
    entries = "".join(f"  <sitemap><loc>{url}</loc></sitemap>\n" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{entries}</sitemapindex>\n"
    ).encode()


def _child_href(main: str, j: int) -> str:
    return (
        f"p{j}.html",
        f"/pages/p{j}.html",
        f"{main}/pages/p{j}.html",
        f"./p{j}.html",
        f"../pages/p{j}.html",
    )[j % 5]


def build_site(
    main: str, other: str, *, pages: int = 300, sitemap: Literal["index", "urlset"] = "index"
) -> tuple[dict[str, Resource], dict[str, Resource]]:
    """The files of origin A (`main`, e.g. `http://127.0.0.1:1234`) and of origin B (`other`)."""
    a: dict[str, Resource] = {}
    b: dict[str, Resource] = {}

    home = _Page(main + "/", "home")
    home.link("pages/p1.html", "the pages")
    home.link("/old/moved.html", "moved")
    home.link("base/page.html", "base")
    home.link("/assets/logo.png", "logo", tag="img")
    home.link("assets/manual.pdf", "manual")
    home.link("/assets/listing.html", "listing")
    home.link("/private/index.html", "private")
    home.link("frag/index.html", "fragments")
    home.link(f"{other}/ext/ok-0.html", "elsewhere")
    a["/"] = home.resource()

    for i in range(1, pages + 1):
        page = _Page(f"{main}/pages/p{i}.html", f"page {i}")
        for j in (2 * i, 2 * i + 1):
            if j <= pages:
                page.link(_child_href(main, j), f"page {j}")
        page.link("/", "home")
        if i >= 3:
            page.link(f"../pages/p{1 + (7 * i) % (i - 1)}.html", "see also")
        if i % 25 == 0:
            page.link(f"missing-{i}.html", "broken")
        if i % 40 == 0:
            page.link(f"/gone/{i}.html", "gone")
        if i % 10 == 3:
            page.link(f"{other}/ext/ok-{(i // 10) % 4}.html", "elsewhere")
        if i % 30 == 7:
            page.link(f"{other}/ext/missing-{i}.html", "broken elsewhere")
        a[f"/pages/p{i}.html"] = page.resource()

    # A redirect: links on the page it lands on resolve against the final URL.
    a["/old/moved.html"] = Resource(301, body=b"moved\n", location="/new/dir/landing.html")
    a["/new/dir/landing.html"] = _simple_page(
        f"{main}/new/dir/landing.html", "landing", ["next.html", "../sibling.html", "/"]
    )
    a["/new/dir/next.html"] = _simple_page(f"{main}/new/dir/next.html", "next")
    a["/new/sibling.html"] = _simple_page(f"{main}/new/sibling.html", "sibling")

    # <base href>: relative links resolve against it, not against the page's own URL.
    based = _Page(f"{main}/base/page.html", "based", base="/other/dir/")
    for href in ("a.html", "../b.html", "/"):
        based.link(href)
    a["/base/page.html"] = based.resource()
    a["/other/dir/"] = Resource(body=b"<!doctype html>\n<title>dir</title>\n")
    a["/other/dir/a.html"] = _simple_page(f"{main}/other/dir/a.html", "a")
    a["/other/b.html"] = _simple_page(f"{main}/other/b.html", "b")

    # Not HTML by Content-Type: fetched and checked, never parsed for links.
    a["/assets/logo.png"] = Resource(
        content_type="image/png", body=b'\x89PNG\r\n\x1a\n<a href="/never/png.html">\n'
    )
    a["/assets/manual.pdf"] = Resource(
        content_type="application/pdf", body=b'%PDF-1.4\n<a href="/never/pdf.html">x</a>\n'
    )
    a["/assets/listing.html"] = Resource(
        content_type="text/plain; charset=utf-8",
        body=b'<!doctype html>\n<html><body>\n<a href="/never/plain.html">x</a>\n</body></html>\n',
    )

    # robots.txt keeps crawlers out of /private/ (its pages are still checked).
    a["/robots.txt"] = Resource(content_type="text/plain", body=ROBOTS.encode())
    a["/private/index.html"] = _simple_page(
        f"{main}/private/index.html", "private", ["secret.html", "/after-private.html", "/"]
    )
    a["/private/secret.html"] = _simple_page(f"{main}/private/secret.html", "secret")
    a["/after-private.html"] = _simple_page(f"{main}/after-private.html", "after private")

    # Fragments, within the origin, on the page itself and on origin B.
    frag = _Page(f"{main}/frag/index.html", "fragments", anchor="local")
    for href in (
        "target.html#present",
        "/frag/target.html#named",
        "target.html#absent",
        "target.html#top",
        "#local",
        "#not-here",
        f"{other}/ext/anchors.html#there",
        f"{other}/ext/anchors.html#gone",
        "/",
    ):
        frag.link(href)
    a["/frag/index.html"] = frag.resource()
    target = _Page(f"{main}/frag/target.html", "target")
    target.line('<h2 id="present">present</h2>', "present")
    target.line('<p><a name="named"></a>named</p>', "named")
    target.link("/")
    a["/frag/target.html"] = target.resource()

    # Sitemaps and the orphan pages only they list.
    orphans = [f"{main}/orphans/one.html", f"{main}/orphans/two.html"]
    if sitemap == "index":
        a["/sitemap.xml"] = Resource(
            content_type="application/xml",
            body=_sitemap_index([f"{main}/sitemap-1.xml", f"{main}/sitemap-2.xml.gz"]),
        )
    else:
        a["/sitemap.xml"] = Resource(content_type="application/xml", body=_urlset(orphans))
    a["/sitemap-1.xml"] = Resource(content_type="application/xml", body=_urlset(orphans[:1]))
    a["/sitemap-2.xml.gz"] = Resource(
        content_type="application/gzip", body=gzip.compress(_urlset(orphans[1:]), mtime=0)
    )
    for name in ("one", "two"):
        a[f"/orphans/{name}.html"] = _simple_page(
            f"{main}/orphans/{name}.html", f"orphan {name}", [f"child-{name}.html", "/"]
        )
        a[f"/orphans/child-{name}.html"] = _simple_page(
            f"{main}/orphans/child-{name}.html", f"child of {name}"
        )

    # Origin B: pages whose links a crawl of A must never request.
    for k in range(4):
        b[f"/ext/ok-{k}.html"] = _simple_page(
            f"{other}/ext/ok-{k}.html",
            f"ok {k}",
            [f"/ext/never-{k}.html", f"{main}/from-b/{k}.html"],
        )
    anchors = _Page(f"{other}/ext/anchors.html", "anchors", anchor="there")
    anchors.link("/ext/never-anchors.html")
    b["/ext/anchors.html"] = anchors.resource()
    b["/robots.txt"] = Resource(content_type="text/plain", body=b"User-agent: *\nAllow: /\n")
    return a, b


@dataclass(frozen=True, slots=True)
class Expected:
    """The result expected at one place: its link, and the outcome, kind and status."""

    link: Link
    outcome: str
    kind: str | None
    status: int | None
    final_url: str | None


@dataclass
class Crawl:
    """A correct crawl's footprint under some options (see `Site.expect`).

    `requested`: absolute URLs (no fragment) each requested exactly once; `optional`: at most
    once; anything else, apart from `meta` (robots.txt, sitemaps), never. `followed`: the final
    URLs of the pages whose links are checked. `places`: (page URL or `<args>`, line) -> the
    result there. `redirects`: requested URL -> final URL of the pages that redirected.
    """

    requested: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)
    meta: set[str] = field(default_factory=set)
    followed: list[str] = field(default_factory=list)
    places: dict[tuple[str, int], Expected] = field(default_factory=dict)
    optional_places: dict[tuple[str, int], Expected] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    sitemap_starts: list[str] = field(default_factory=list)


class Site:
    """Origins A (127.0.0.1) and B (127.0.0.2) serving `build_site`'s files, for one test.

    Args:
        pages: how many tree pages (`/pages/p{i}.html`) origin A has.
        sitemap: whether `/sitemap.xml` is a sitemap index (`index`) or a plain `urlset`.
    """

    def __init__(self, *, pages: int = 300, sitemap: Literal["index", "urlset"] = "index") -> None:
        self.main = SiteServer(host="127.0.0.1")
        self.other = SiteServer(host="127.0.0.2")
        self._pages = pages
        self._sitemap = sitemap
        self.files_a: dict[str, Resource] = {}
        self.files_b: dict[str, Resource] = {}

    def __enter__(self) -> Site:
        self.main.start()
        try:
            self.other.start()
        except BaseException:
            self.main.stop()
            raise
        self.files_a, self.files_b = build_site(
            self.main.base, self.other.base, pages=self._pages, sitemap=self._sitemap
        )
        self.main.files = self.files_a.get
        self.other.files = self.files_b.get
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.other.stop()
        self.main.stop()

    @property
    def start(self) -> str:
        return self.main.url("/")

    def counts(self) -> Counter[str]:
        """Requests per absolute URL on both origins."""
        return self.main.counts() + self.other.counts()

    def resource(self, url: str) -> Resource:
        """What the server answers for `url` (fragment ignored)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        files = {self.main.base: self.files_a, self.other.base: self.files_b}.get(origin, {})
        return files.get(parts.path or "/") or NOT_FOUND

    def fetch(self, url: str) -> tuple[list[str], Resource]:
        """The URLs a fetch of `url` requests (redirects followed) and the final resource."""
        hops = [urldefrag(url).url]
        resource = self.resource(hops[-1])
        while resource.location is not None:
            hops.append(urljoin(hops[-1], resource.location))
            resource = self.resource(hops[-1])
        return hops, resource

    def outcome(self, link: Link, *, check_fragments: bool) -> Expected:
        """The result a checker reports for `link`."""
        hops, resource = self.fetch(link.url)
        final = hops[-1] if len(hops) > 1 else None
        if not 200 <= resource.status < 300:
            return Expected(link, "fail", "http", resource.status, final)
        fragment = urlsplit(link.url).fragment
        if (
            check_fragments
            and fragment not in ("", "top")
            and resource.is_html
            and fragment not in resource.anchors
        ):
            return Expected(link, "fail", "fragment", None, final)
        return Expected(link, "ok", None, resource.status, final)

    @property
    def orphans(self) -> list[str]:
        return [self.main.url("/orphans/one.html"), self.main.url("/orphans/two.html")]

    @property
    def broken(self) -> list[tuple[str, int, Link]]:
        """(page URL, line, link) of every planted broken link (404) on a page of origin A."""
        found = []
        for path, resource in self.files_a.items():
            for link in resource.links:
                if not link.optional and self.fetch(link.url)[1].status == 404:
                    found.append((self.main.url(path), link.line, link))
        return found

    def expect(
        self,
        *,
        starts: list[str] | None = None,
        max_depth: int | None = None,
        ignore_robots: bool = False,
        sitemap: bool = False,
        check_fragments: bool = False,
    ) -> Crawl:
        """A breadth-first model of a correct crawl from `starts` (default: `/`)."""
        crawl = Crawl()
        crawl.meta = {
            self.main.url("/robots.txt"),
            self.other.url("/robots.txt"),
            self.main.url("/sitemap.xml"),
            self.main.url("/sitemap-1.xml"),
            self.main.url("/sitemap-2.xml.gz"),
        }
        starts = starts or [self.start]
        for position, url in enumerate(starts, start=1):
            link = Link(position, url, url)
            crawl.places["<args>", position] = self.outcome(link, check_fragments=False)
        queue = deque((url, 0) for url in starts)
        if sitemap:
            crawl.sitemap_starts = list(self.orphans)
            queue.extend((url, 0) for url in self.orphans)
        seen = {url for url, _ in queue}
        while queue:
            url, depth = queue.popleft()
            hops, resource = self.fetch(url)
            crawl.requested.update(hops)
            final = hops[-1]
            if final != url:
                crawl.redirects[url] = final
            if not (
                final.startswith(self.main.base + "/")
                and resource.is_html
                and (max_depth is None or depth <= max_depth)
                and (ignore_robots or not urlsplit(final).path.startswith("/private/"))
            ):
                continue
            crawl.followed.append(final)
            for link in resource.links:
                expected = self.outcome(link, check_fragments=check_fragments)
                if link.optional:
                    crawl.optional_places[final, link.line] = expected
                    crawl.optional.update(self.fetch(link.url)[0])
                    continue
                crawl.places[final, link.line] = expected
                target = urldefrag(link.url).url
                if target not in seen:
                    seen.add(target)
                    queue.append((target, depth + 1))
        crawl.optional -= crawl.requested
        return crawl


# -- other generated sites ----------------------------------------------------------------


def tree_files(base: str, pages: int = 63) -> dict[str, Resource]:
    """A binary tree `/tree/{i}.html` (i = 1..pages; start at 1, depth floor(log2 i)): each
    page links its children `{2i}.html`, `{2i+1}.html` and its own `/notes/{i}.txt`
    (text/plain), which nothing else links, so a page was followed iff its note was fetched."""
    files: dict[str, Resource] = {}
    for i in range(1, pages + 1):
        children = [f"{j}.html" for j in (2 * i, 2 * i + 1) if j <= pages]
        files[f"/tree/{i}.html"] = _simple_page(
            f"{base}/tree/{i}.html", f"tree {i}", [*children, f"/notes/{i}.txt"]
        )
        files[f"/notes/{i}.txt"] = Resource(content_type="text/plain", body=b"note\n")
    return files


def mesh_files(base: str, pages: int = 500, links: int = 50) -> dict[str, Resource]:
    """`/mesh/{i}.html` (i = 0..pages-1; start at 0), each linking the `links` pages after it
    (modulo `pages`): every page is reachable, and each is linked from `links` pages."""
    return {
        f"/mesh/{i}.html": _simple_page(
            f"{base}/mesh/{i}.html",
            f"mesh {i}",
            [f"{(i + k) % pages}.html" for k in range(1, links + 1)],
        )
        for i in range(pages)
    }


def slow_resource(
    base: str, *, delay: float = 0.2, fanout: int = 20, limit: int = 1_000_000
) -> Files:
    """An endless site: `/slow/{i}.html` (i < limit; start at 0) answers after `delay` seconds
    and links `/slow/{fanout*i + k}.html` for k = 1..fanout. Pages are made on request."""
    lock = threading.Lock()
    made: dict[str, Resource] = {}

    def files(path: str) -> Resource | None:
        name = path.removeprefix("/slow/").removesuffix(".html")
        if not path.startswith("/slow/") or not name.isdigit() or int(name) >= limit:
            return None
        i = int(name)
        with lock:
            if path not in made:
                page = _simple_page(
                    f"{base}{path}",
                    f"slow {i}",
                    [f"{fanout * i + k}.html" for k in range(1, fanout + 1)],
                )
                made[path] = dataclasses.replace(page, delay=delay)
            return made[path]

    return files
