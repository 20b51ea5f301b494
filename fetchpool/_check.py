"""What a worker does with a link-checking target: a local file, a page, an anchor, a URL.

- A link to a local file is checked on the file system (`_local`), never fetched.
- A page (a page input of `--extract`, a page of a crawl) is fetched with its body kept
  (up to 10 MiB); its links go back to the `LinkSource`, which queues them without waiting.
- A link with a `#fragment` (with `--check-fragments`) is fetched with its body kept, and
  the fragment is looked up among the page's anchors. A page is read once for all its
  anchors: concurrent links to one page share one fetch, and the anchors of the last
  pages read are kept, so `a.html#x` and `a.html#y` cost one request.
- Anything else is an ordinary fetch.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ._crawl import ROBOTS_CAP, SITEMAP_CAP, Robots, origin_of
from ._fetch import Fetcher, Page
from ._local import ALWAYS_THERE
from ._models import Kind, Outcome, Result, Target
from ._source import URL_ARGUMENTS

if TYPE_CHECKING:
    from ._links import LinkSource

__all__ = ["LinkChecker"]

PAGES_KEPT = 1024
"""How many pages' anchors are kept for later links to the same page."""

_Anchors = tuple[Result, "frozenset[str] | None"]


def page_anchors(page: Page) -> frozenset[str] | None:
    """The anchors of a fetched page; None when it is not HTML (nothing can be checked)."""
    if not page.is_html:
        return None
    from ._extract import on_github, parse_document

    return parse_document(
        page.text(), "html", want_anchors=True, github=on_github(page.final_url)
    ).anchors


def judge_fragment(result: Result, fragment: str, anchors: frozenset[str] | None) -> Result:
    """`result` as a FAIL of kind `fragment` when the page it fetched lacks the anchor."""
    if not result.ok or anchors is None or fragment in ALWAYS_THERE:
        return result
    if fragment in anchors or unquote(fragment) in anchors:
        return result
    return dataclasses.replace(
        result,
        outcome=Outcome.FAIL,
        kind=Kind.FRAGMENT,
        error=f"no anchor #{fragment} on the page",
    )


class LinkChecker:
    """Checks one link-checking target with a pool's fetcher; one per run.

    Args:
        source: the run's link source: it resolves local links and takes the links of
            every page read.
        robots: the robots.txt rules of a crawl's origins (None: nothing to obey).
        fragments: `--check-fragments`: pages' anchors are kept for links to them.
    """

    def __init__(
        self, source: LinkSource, *, robots: Robots | None = None, fragments: bool = False
    ) -> None:
        self._source = source
        self._robots = robots
        self._fragments = fragments
        self._pages: OrderedDict[str, asyncio.Future[_Anchors]] = OrderedDict()

    async def __call__(self, fetcher: Fetcher, target: Target) -> Result:
        """The one result of `target` (raises only on cancellation)."""
        if target.local is not None:
            return self._source.local.check(target)
        if target.invalid is not None:
            return await fetcher.fetch(target)
        if target.sitemap:
            return await self._sitemap(fetcher, target)
        if target.page is not None:
            return await self._page(fetcher, target)
        if target.fragment is not None:
            result, anchors = await self._anchors(fetcher, target)
            return judge_fragment(result, target.fragment, anchors)
        if self._pages and (read := self._pages.get(target.url.partition("#")[0])) is not None:
            # The page is (being) read for its links or anchors: one request for both.
            result, _ = await read
            return dataclasses.replace(
                result, url=target.url, source=target.source, line=target.line
            )
        return await fetcher.fetch(target)

    async def _sitemap(self, fetcher: Fetcher, target: Target) -> Result:
        page = Page(SITEMAP_CAP)
        body = None
        try:
            result = await fetcher.fetch(target, page)
            if result.ok and page.final_url:
                body = page.body
        finally:
            self._source.sitemap_done(target, body)
        return result

    async def _page(self, fetcher: Fetcher, target: Target) -> Result:
        # Registered before the first wait, so links to this page that come while it is read
        # (another #fragment of it, the plain URL) wait for this one request.
        key = target.url.partition("#")[0]
        future: asyncio.Future[_Anchors] | None = None
        if self._fragments and key not in self._pages:
            future = asyncio.get_running_loop().create_future()
            self._keep(key, future)
        page = Page()
        read = follow = False
        anchors = None
        try:
            try:
                if self._source.wants_page():
                    follow = await self._robots_allow(fetcher, target)
                result = await fetcher.fetch(target, page if follow or self._fragments else None)
                read = result.ok and bool(page.final_url)
            finally:
                anchors = self._source.page_done(target, page if read and follow else None)
            if anchors is None and read and self._fragments:
                anchors = page_anchors(page)  # not followed, but its anchors are linked to
        except BaseException as exc:
            self._failed(key, future, exc)
            raise
        if future is not None:
            future.set_result((result, anchors))
        if target.fragment is not None:
            return judge_fragment(result, target.fragment, anchors)
        return result

    async def _robots_allow(self, fetcher: Fetcher, target: Target) -> bool:
        """Whether robots.txt lets the crawl follow this page (URL arguments always are)."""
        robots = self._robots
        origin = origin_of(target.url)
        if robots is None or origin is None or target.source == URL_ARGUMENTS:
            return True
        future = robots.known(origin)
        if future is None:
            future = robots.start(origin)
            page = Page(ROBOTS_CAP)
            try:
                result = await fetcher.fetch(
                    Target(robots.url(origin)), page, follow_redirects=True
                )
            except BaseException:
                robots.forget(origin)
                raise
            future.set_result(robots.parse(origin, result, page.body))
        rules = await future
        return robots.allows(rules, target.url)

    async def _anchors(self, fetcher: Fetcher, target: Target) -> _Anchors:
        key = target.url.partition("#")[0]
        future = self._pages.get(key)
        if future is not None:
            self._pages.move_to_end(key)
            result, anchors = await future
            placed = dataclasses.replace(
                result, url=target.url, source=target.source, line=target.line
            )
            return placed, anchors
        future = asyncio.get_running_loop().create_future()
        self._keep(key, future)
        page = Page()
        try:
            result = await fetcher.fetch(target, page)
            anchors = page_anchors(page) if result.ok and page.final_url else None
        except BaseException as exc:
            self._failed(key, future, exc)
            raise
        future.set_result((result, anchors))
        return result, anchors

    def _failed(
        self, key: str, future: asyncio.Future[_Anchors] | None, exc: BaseException
    ) -> None:
        """A page read ended in an exception: whoever waits on it gets it too (a bug becomes
        their FAIL as it is the reader's; a cancellation cancels them), never a hang."""
        if future is None or future.done():
            return
        self._pages.pop(key, None)
        if isinstance(exc, Exception):
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting, and that is fine
        else:
            future.cancel()

    def _keep(self, key: str, future: asyncio.Future[_Anchors]) -> None:
        self._pages[key] = future
        while len(self._pages) > PAGES_KEPT:
            oldest = next(iter(self._pages))
            if not self._pages[oldest].done():
                break  # still being fetched: others may be waiting on it
            del self._pages[oldest]
