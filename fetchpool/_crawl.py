"""Crawling a site (`--recursive`): which pages are followed, and how far.

A crawl is link checking whose pages feed more pages. Every link is checked; a link is also
followed (fetched as a page, its links read) when it is on a start page's origin (scheme,
host, port), within `--max-depth` of a start page, among the first `--max-pages` pages and
allowed by the origin's `robots.txt`; and, once fetched, only when its response is HTML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.parse import urlsplit

from ._models import Target

__all__ = ["DEFAULT_MAX_PAGES", "CrawlRules", "origin_of"]

DEFAULT_MAX_PAGES = 100_000


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port made explicit; None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


class CrawlRules:
    """Decides which links of a crawl are followed as pages.

    Args:
        start: the start URLs; their origins are the ones followed.
        max_depth: links more than this many steps from every start page are not followed
            (None: no limit).
        max_pages: after this many pages were followed, no more are.
    """

    def __init__(
        self,
        start: Iterable[str],
        *,
        max_depth: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.origins = {origin for url in start if (origin := origin_of(url)) is not None}
        self.max_depth = max_depth
        self.max_pages = max_pages
        self.followed = 0
        self._seen: set[str] = set()

    def as_page(self, target: Target, depth: int) -> Target:
        """`target` as a page to follow at `depth`, or as it is when it is not followed."""
        if self.max_depth is not None and depth > self.max_depth:
            return target
        if self.followed >= self.max_pages or origin_of(target.url) not in self.origins:
            return target
        key = target.url.partition("#")[0]
        if key in self._seen:
            return target
        self._seen.add(key)
        self.followed += 1
        return dataclasses.replace(target, page=depth)
