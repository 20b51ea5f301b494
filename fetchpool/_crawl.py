"""Crawling a site (`--recursive`): which pages are followed, robots.txt, sitemaps.

A crawl is link checking whose pages feed more pages. Every link is checked; a link is also
followed (fetched as a page, its links read) when it is on a start page's origin (scheme,
host, port), within `--max-depth` of a start page, among the first `--max-pages` pages and
allowed by the origin's `robots.txt`; and, once fetched, only when its response is HTML.

The recursive-submit deadlock of worker pools (every worker blocked handing new pages to
the full queue it alone drains) cannot happen here, by design rather than by a large queue:
the workers that read pages never submit to the pool's bounded queue. They hand the links
they find to the `LinkSource`'s frontier, a deque that never blocks (`LinkSource.page_done`);
the pool's single reader task moves targets from the frontier into the bounded queue,
waiting for room as it does for any input. This is the second of the two textbook answers
(a submit that cannot block a worker), chosen over two pools because a crawl's pages and its
links are the same URLs: one pool, one `--per-host` limit, one deadline and one
cancellation cover both, and each URL is fetched once whether it is a page or a link.
Memory stays bounded by the site, not by the links: the frontier and the visited set hold
each distinct URL once (`Places` for the places of a link still being checked; a page that
is queued holds one `Target`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import xml.parsers.expat
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import httpx

from ._config import DEFAULT_MAX_PAGES
from ._models import Result, Target
from ._redirects import origin as rfc6454_origin

if TYPE_CHECKING:
    from protego import Protego

__all__ = [
    "DEFAULT_MAX_PAGES",
    "CrawlRules",
    "Robots",
    "origin_of",
    "parse_sitemap",
]

ROBOTS_CAP = 512 * 1024  # RFC 9309: a crawler must read at least 500 KiB of robots.txt
SITEMAP_CAP = 50 * 1024 * 1024  # the sitemaps.org limit for one (uncompressed) sitemap

Origin = tuple[str, str, int | None]
"""RFC 6454: scheme, host, port (None for the scheme's default), as `_redirects.origin`."""


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL as httpx reads it (host lower-case, an IDN host and its
    punycode alike, the scheme's default port as None); None for anything else."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    scheme, host, port = rfc6454_origin(parsed)
    # httpx keeps a port written out even when it is the scheme's own: one origin either way.
    return scheme, host, None if port == (443 if scheme == "https" else 80) else port


def origin_url(origin: Origin) -> str:
    """`https://host[:port]` for an origin, the port left out when it is the default."""
    scheme, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port is None else f"{scheme}://{shown}:{port}"


class CrawlRules:
    """Decides which links of a crawl are followed as pages.

    Args:
        start: the start URLs; their origins are the ones followed.
        max_depth: links more than this many steps from every start page are not followed
            (None: no limit).
        max_pages: after this many pages were followed, no more are.
        robots: obey each origin's robots.txt for following (`--ignore-robots` turns it off).
        sitemap: also start from each start origin's `/sitemap.xml`.
    """

    def __init__(
        self,
        start: Iterable[str],
        *,
        max_depth: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        robots: bool = True,
        sitemap: bool = False,
    ) -> None:
        self.origins = {origin for url in start if (origin := origin_of(url)) is not None}
        # "scheme://host[:port]/" of each origin as most links spell it: a URL that starts
        # with one is on that origin without parsing it (the common case, checked per link).
        self._prefixes = tuple(f"{origin_url(origin)}/" for origin in self.origins)
        self.max_depth = max_depth
        self.max_pages = max_pages
        self.robots = robots
        self.sitemap = sitemap
        self.followed = 0
        self._seen: set[str] = set()  # pages queued to be followed
        # Seen only beyond --max-depth so far: pages run concurrently, so a deep page may
        # link one before a shallower page does (then it is followed after all).
        self._too_deep: set[str] = set()

    def follows_origin(self, url: str) -> bool:
        """True for a URL on one of the start pages' origins."""
        return url.startswith(self._prefixes) or origin_of(url) in self.origins

    @property
    def full(self) -> bool:
        """True once `max_pages` pages were followed: no other page will be."""
        return self.followed >= self.max_pages

    def as_page(self, target: Target, depth: int) -> Target:
        """`target` as a page to follow at `depth`, or as it is when it is not followed."""
        if self.followed >= self.max_pages or not self.follows_origin(target.url):
            return target
        key = target.url.partition("#")[0]
        if key in self._seen:
            return target
        if self.max_depth is not None and depth > self.max_depth:
            self._too_deep.add(key)
            return target
        self._seen.add(key)
        self._too_deep.discard(key)
        return dataclasses.replace(target, page=depth)

    def add_origin(self, url: str) -> None:
        """Follow this URL's origin too: where a start URL redirected (http to https, the
        bare domain to www), the site is."""
        origin = origin_of(url)
        if origin is not None and origin not in self.origins:
            self.origins.add(origin)
            self._prefixes = (*self._prefixes, f"{origin_url(origin)}/")

    def follow(self) -> bool:
        """Count one more page whose links are read; False once `max_pages` were.

        Called when a page's body is in (an image or a robots-disallowed page is not
        followed, so it does not count); pages that were already queued when the limit was
        reached are then checked, not followed.
        """
        if self.followed >= self.max_pages:
            return False
        self.followed += 1
        return True

    def sitemaps(self) -> list[str]:
        """The `/sitemap.xml` URL of each start origin (with `--sitemap`), in a stable order."""
        if not self.sitemap:
            return []
        return sorted(f"{origin_url(origin)}/sitemap.xml" for origin in self.origins)


class Robots:
    """The robots.txt rules of each origin, fetched once (concurrent asks share the fetch).

    Matched as RFC 9309 says (the longest matching rule wins, `Allow` on a tie, `*` and `$`
    in paths) by `protego`, Scrapy's parser: the standard library's `urllib.robotparser`
    takes the first matching rule and knows no wildcards, so `Disallow: /` then
    `Allow: /docs/` would follow nothing. Read as RFC 9309 says too: a 4xx answer (no
    robots.txt) allows everything; a 5xx or no
    answer at all disallows every page of that origin (they are still checked, not
    followed), with one warning.

    Args:
        user_agent: the User-Agent whose rules apply.
        warn: gets the warning for an origin whose robots.txt could not be read.
    """

    def __init__(self, user_agent: str, warn: Callable[[str], None]) -> None:
        self._agent = user_agent
        self._warn = warn
        self._rules: dict[Origin, asyncio.Future[Protego]] = {}

    def url(self, origin: Origin) -> str:
        """The robots.txt URL of an origin."""
        return f"{origin_url(origin)}/robots.txt"

    def known(self, origin: Origin) -> asyncio.Future[Protego] | None:
        """The rules of an origin, if they are being read or were read."""
        return self._rules.get(origin)

    def start(self, origin: Origin) -> asyncio.Future[Protego]:
        """Register that this origin's rules are being read (the caller sets the future)."""
        future: asyncio.Future[Protego] = asyncio.get_running_loop().create_future()
        self._rules[origin] = future
        return future

    def forget(self, origin: Origin) -> None:
        """The read was cancelled: whoever waits on it is cancelled too; ask again later."""
        future = self._rules.pop(origin, None)
        if future is not None and not future.done():
            future.cancel()

    def parse(self, origin: Origin, result: Result, body: bytes) -> Protego:
        """The rules of an origin from the result of fetching its robots.txt."""
        from protego import Protego

        status = result.status
        if status is not None and 200 <= status < 300:
            return Protego.parse(body.decode("utf-8", "replace"))
        if status is not None and 300 <= status < 500:
            # 4xx: no robots.txt. 3xx: more redirects than are followed (they are followed
            # whatever --no-follow says), which RFC 9309 lets a crawler take as unavailable.
            return Protego.parse("")  # no rules: everything allowed
        why = f"HTTP {status}" if status is not None else (result.error or "no answer")
        self._warn(
            f"cannot read {self.url(origin)} ({why}): following none of its pages, as "
            "RFC 9309 asks (links are still checked); --ignore-robots crawls them anyway"
        )
        return Protego.parse("User-agent: *\nDisallow: /\n")

    def allows(self, rules: Protego, url: str) -> bool:
        """Whether `rules` let this crawler follow `url`."""
        return bool(rules.can_fetch(url, self._agent))


def _inflate(body: bytes) -> bytes:
    """A sitemap as served: gzip (`sitemap.xml.gz`, as a file, not a Content-Encoding) is
    inflated, up to the sitemap size limit."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(body, SITEMAP_CAP)
    except zlib.error:
        try:
            return gzip.decompress(body)[:SITEMAP_CAP]
        except (OSError, EOFError):
            return b""


def parse_sitemap(body: bytes) -> tuple[bool, list[tuple[str, int]]]:
    """The `<loc>` URLs of a sitemap with their lines; True when it is a sitemap index
    (its URLs are sitemaps), False for a URL set (its URLs are pages).

    A document that is not a sitemap, or not well-formed XML, yields what was read up to
    the error. Entities are not expanded (no external or nested entity can inflate it).
    """
    parser = xml.parsers.expat.ParserCreate()
    is_index = False
    locations: list[tuple[str, int]] = []
    text: list[str] = []
    in_loc = False
    line = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal is_index, in_loc, line
        local = name.rpartition(":")[2].rpartition("}")[2]
        if local == "sitemapindex":
            is_index = True
        elif local == "loc":
            in_loc, line = True, parser.CurrentLineNumber
            text.clear()

    def end(name: str) -> None:
        nonlocal in_loc
        if in_loc and name.rpartition(":")[2].rpartition("}")[2] == "loc":
            in_loc = False
            url = "".join(text).strip()
            if url:
                locations.append((url, line))

    def data(chunk: str) -> None:
        if in_loc:
            text.append(chunk)

    def no_entities(*args: object) -> None:
        raise xml.parsers.expat.ExpatError("entity declarations are not read in sitemaps")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.EntityDeclHandler = no_entities
    with contextlib.suppress(xml.parsers.expat.ExpatError):
        parser.Parse(_inflate(body), True)
    return is_index, locations
