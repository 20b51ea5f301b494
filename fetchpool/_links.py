"""Link-checking input: the links of documents and pages, as targets for the pool.

With `--extract`, every input is a document: a file, a directory (walked, see `_walk`) or an
http(s) page. `LinkSource` turns their links into targets, one per distinct link, and
`Places` fans the one result of a link out to every place where it stands.

Pages are read by the pool's own workers (a page is a target like any other, fetched with
its body kept, see `_check`); the links a worker finds in a page come back through
`LinkSource.page_done()`, which never waits: it appends them to the source's frontier, an
in-memory deque that the source hands to the pool through the pool's bounded input queue
like any other input. So a worker never waits for room that only workers can make, whatever
`--workers` is (see `_crawl` for how a crawl decides which pages are followed).

`--include`/`--exclude`/`--shard` apply in every mode (`FilteredTargets` for URL lists).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from ._local import ROOT_RELATIVE, LocalFiles
from ._models import Result, Target
from ._source import URL_ARGUMENTS, Input, TargetReader, make_target, read_document
from ._stats import InputCounts

if TYPE_CHECKING:
    from ._crawl import CrawlRules
    from ._extract import Document, DocumentType
    from ._fetch import Page
    from ._filter import LinkFilter
    from ._parsers import Parsed

__all__ = [
    "FilteredTargets",
    "LinkOptions",
    "LinkSource",
    "Places",
    "keep",
    "link_key",
]


def link_key(url: str, *, fragments: bool) -> str:
    """What makes two links one check: the URL without its `#fragment` unless fragments are
    checked (a page is fetched once for all its anchors either way, see `_check`)."""
    return url if fragments else url.partition("#")[0]


class Places:
    """Each link is checked once; its result is reported at every place it occurs.

    A place is the link as written there (`url`), its source and its line; links with the
    same key (see `link_key`; for local links, the file and anchor they resolve to) share
    one check.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[str, str, int]]] = {}
        self._first: dict[tuple[str, str, int], str] = {}
        self._done: dict[str, Result] = {}
        self._late: list[Result] = []

    def __contains__(self, key: str) -> bool:
        return key in self._waiting or key in self._done

    def add(self, key: str, url: str, source: str, line: int) -> bool:
        """Record a place of a link; True when its key is new and it must be checked."""
        done = self._done.get(key)
        if done is not None:
            # Found after its result was in: report it at this place too.
            self._late.append(self._placed(done, url, source, line))
            return False
        places = self._waiting.get(key)
        if places is None:
            self._waiting[key] = [(url, source, line)]
            self._first[(url, source, line)] = key
            return True
        places.append((url, source, line))
        return False

    def expand(self, result: Result) -> list[Result]:
        """The result of a checked link, once for every place it stands."""
        key = self._first.pop((result.url, result.source, result.line), None)
        places = self._waiting.pop(key, None) if key is not None else None
        if key is None or places is None:
            return [result]
        self._done[key] = result
        return [self._placed(result, url, source, line) for url, source, line in places]

    @staticmethod
    def _placed(result: Result, url: str, source: str, line: int) -> Result:
        """`result` at another place; a link written otherwise there (another `#fragment`,
        another relative path to the same file) shows its own text as the final URL too,
        unless a redirect was followed."""
        final_url = url if result.final_url == result.url else result.final_url
        return dataclasses.replace(result, url=url, source=source, line=line, final_url=final_url)

    def take_late(self) -> list[Result]:
        """Results for places found after their link's result was already reported."""
        late, self._late = self._late, []
        return late


def keep(url: str, link_filter: LinkFilter | None, counts: InputCounts) -> bool:
    """Whether the filter keeps `url`; a link it drops is counted as excluded or other-shard."""
    if link_filter is None:
        return True
    decision = link_filter.decide(url)
    if decision == "excluded":
        counts.excluded += 1
    elif decision == "other-shard":
        counts.other_shards += 1
    return decision == "keep"


class FilteredTargets:
    """A URL list's `TargetSource` without what `--include`/`--exclude`/`--shard` leave out.

    What it drops is counted in `counts`; its leftovers after a cancel are filtered like
    every other line. A line that is not a valid URL is never dropped: it still yields its
    FAIL.

    Args:
        source: the unfiltered targets (a `TargetReader`).
        link_filter: what to keep.
        counts: where dropped targets are counted.
    """

    def __init__(self, source: TargetReader, link_filter: LinkFilter, counts: InputCounts) -> None:
        self._source = source
        self._filter = link_filter
        self._counts = counts

    @property
    def errors(self) -> list[str]:
        """Why reading stopped early (the reader's)."""
        return self._source.errors

    def _keeps(self, target: Target) -> bool:
        return target.invalid is not None or keep(target.url, self._filter, self._counts)

    async def _targets(self) -> AsyncIterator[Target]:
        async for target in self._source:
            if self._keeps(target):
                yield target

    def __aiter__(self) -> AsyncIterator[Target]:
        return self._targets()

    def leftovers(self) -> list[Target]:
        """The source's leftovers that the filter keeps."""
        return [target for target in self._source.leftovers() if self._keeps(target)]


@dataclasses.dataclass(frozen=True, slots=True)
class LinkOptions:
    """How links are checked: `--root-dir`, `--check-fragments`, the filters, the crawl."""

    root_dir: str | None = None
    check_fragments: bool = False
    link_filter: LinkFilter | None = None
    crawl: CrawlRules | None = None


SITEMAPS = "<sitemap>"
"""The source of the `/sitemap.xml` fetched for each start origin with `--sitemap`."""

Dump = Callable[[str, str, int], None]
"""Where `--dump` sends each place instead of checking it: (URL, source, line)."""


def _is_web(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


def _page_type(page: Page) -> DocumentType | None:
    """How a fetched page is read: by its Content-Type, or its path for plain-text types."""
    media = page.content_type.split(";", 1)[0].strip().lower()
    if page.is_html:
        return "html"
    path = urlsplit(page.final_url).path.lower()
    from ._extract import document_type

    by_name = document_type(path)
    if media in ("text/markdown", "text/x-markdown") or by_name == "markdown":
        return "markdown"
    if media.startswith("text/"):
        return by_name
    return None  # an image, a PDF, ...: no links to read


def _origin_prefix(url: str) -> str:
    """`scheme://authority` of an absolute URL as written (no trailing slash)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.partition('/')[0].partition('?')[0].partition('#')[0]}"


def _join(base: str, origin: str, link: str) -> str:
    """`urljoin(base, link)`, with a fast path for the most common link of a site's pages:
    a plain root-relative path (`/docs/a.html`) needs only the base's origin before it."""
    if (
        link.startswith("/")
        and not link.startswith("//")
        and "/." not in link
        and not any(c in link for c in "\t\n\r")  # urljoin drops these, as browsers do
    ):
        return origin + link
    return urljoin(base, link)


class LinkSource:
    """The targets of a link-checking run, in input order, each distinct link once (a
    `TargetSource`).

    Iterate it (asynchronously) for the targets; the pool's workers report every page they
    read back through `page_done()`. Iteration ends when every input is read, no page is
    being read and the frontier is empty.

    Args:
        inputs: the opened inputs (files, directories, page URLs, standard input).
        places: where each link's places are recorded (None with `dump`).
        options: how links are checked.
        counts: where links that are not checked are counted.
        warn: gets each warning (a document that is not valid UTF-8).
        dump: with `--dump`, gets every place instead of it being checked.
    """

    def __init__(
        self,
        inputs: Sequence[Input],
        places: Places | None,
        options: LinkOptions,
        counts: InputCounts,
        *,
        warn: Callable[[str], None],
        dump: Dump | None = None,
    ) -> None:
        self._inputs = inputs
        self.places = places
        self._options = options
        self._counts = counts
        self.warn = warn
        self._dump = dump
        self.local = LocalFiles(options.root_dir, self._read_anchors)
        self.errors: list[str] = []  # why input ended early (an unreadable document)
        self._frontier: collections.deque[Target] = collections.deque()
        self._pages_pending = 0  # page targets handed out whose links are not in yet
        self._wake = asyncio.Event()

    # -- the pool's side -----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Target]:
        return self._targets()

    def leftovers(self) -> list[Target]:
        """Targets found but never handed to the pool (reported CANCELLED after a cancel)."""
        left = list(self._frontier)
        self._frontier.clear()
        return left

    def wants_page(self) -> bool:
        """False when no more pages will be followed (`--max-pages` reached): a page target
        is then fetched as a plain link, its body unread."""
        crawl = self._options.crawl
        return crawl is None or not crawl.full

    def page_done(self, page_target: Target, page: Page | None) -> frozenset[str] | None:
        """A page target was fetched: queue the links of its body (None when there is none).

        Called once for every target with `page` set, whatever its outcome; never waits.
        Returns the page's anchors when they were read with its links (`--check-fragments`).
        """
        self._pages_pending -= 1
        self._wake.set()
        if page is None:
            return None
        crawl = self._options.crawl
        if crawl is not None and page_target.source == URL_ARGUMENTS:
            crawl.add_origin(page.final_url)  # a start URL that redirects: the site is there
        if crawl is not None and not (
            page.is_html and crawl.follows_origin(page.final_url) and crawl.follow()
        ):
            return None  # a crawl follows HTML pages of its own origins (after redirects)
        doc_type = _page_type(page)
        if doc_type is None:
            return None
        from ._extract import on_github, parse_document

        fragments = self._options.check_fragments and doc_type == "html"
        document = parse_document(
            page.text(), doc_type, want_anchors=fragments, github=on_github(page.final_url)
        )
        self._counts.unchecked.update(document.skipped)
        base = page.final_url
        if document.base:
            base = urljoin(base, document.base)
        origin = _origin_prefix(base)
        depth = page_target.page if page_target.page is not None else 0
        page_source = page_target.url.partition("#")[0]  # the page, not a place in it
        for link in document.links:
            url = link.url if _is_web(link.url) else _join(base, origin, link.url)
            if not _is_web(url):
                self._counts.unchecked["scheme"] += 1
                continue
            target = self._web_target(url, page_source, link.line)
            if target is None:
                continue
            if crawl is not None and target.invalid is None:
                target = crawl.as_page(target, depth + 1)
            self._queue(target)
        return document.anchors

    def sitemap_done(self, sitemap: Target, body: bytes | None) -> None:
        """A sitemap was fetched: its pages start the crawl, its sitemaps are read in turn.

        Called once for every target with `sitemap` set, whatever its outcome.
        """
        self._pages_pending -= 1
        self._wake.set()
        crawl = self._options.crawl
        if body is None or crawl is None:
            return
        from ._crawl import parse_sitemap

        is_index, locations = parse_sitemap(body)
        for url, line in locations:
            if not _is_web(url):
                self._counts.unchecked["scheme"] += 1
                continue
            target = self._web_target(url, sitemap.url, line)
            if target is None or target.invalid is not None:
                if target is not None:
                    self._queue(target)
                continue
            if is_index:
                target = dataclasses.replace(target, sitemap=True)
            else:
                target = crawl.as_page(target, 0)
            self._queue(target)

    # -- reading the inputs --------------------------------------------------------------

    async def _targets(self) -> AsyncIterator[Target]:
        frontier = self._frontier
        crawl = self._options.crawl
        for url in crawl.sitemaps() if crawl is not None else ():
            self._queue(Target(url, SITEMAPS, 0, sitemap=True))
        for source in self._inputs:
            if source.urls is not None:
                for offset, url in enumerate(source.urls):
                    target = make_target(url, source.name, source.first_line + offset)
                    if target.invalid is None:
                        crawl = self._options.crawl
                        if crawl is None:
                            target = dataclasses.replace(target, page=0)
                        else:
                            target = crawl.as_page(target, 0)
                    self._start_page(target)
                    while frontier:
                        yield frontier.popleft()
            elif source.directory:
                from ._parsers import parse_tree

                # Parsed on every core, in walk order (see _parsers); the loop runs between
                # documents, so a signal is handled at once even when no link is queued.
                async for parsed in parse_tree(_walk(source.name)):
                    self._take(parsed)
                    while frontier:
                        yield frontier.popleft()
            else:
                try:
                    text = await read_document(source)
                except OSError as exc:
                    reason = (exc.strerror or str(exc)).lower()
                    self.errors.append(f"cannot read {source.name}: {reason}")
                    break
                except UnicodeDecodeError as exc:
                    self._undecodable(source.name, exc)
                else:
                    self._document(source.name, text)
            while frontier:
                yield frontier.popleft()
        while True:
            while frontier:
                yield frontier.popleft()
            if self._pages_pending <= 0:
                return
            self._wake.clear()
            await self._wake.wait()

    def _start_page(self, target: Target) -> None:
        places = self.places
        if places is not None and not places.add(
            link_key(target.url, fragments=self._options.check_fragments),
            target.url,
            target.source,
            target.line,
        ):
            return
        if target.page is not None:
            self._pages_pending += 1
        self._frontier.append(target)

    def _document(self, name: str, text: str) -> None:
        """Queue the links of one document read from an input (a file, standard input)."""
        from ._parsers import parse_text

        self._take_document(name, parse_text(name, text), is_file=name != "-")

    def _take(self, parsed: Parsed) -> None:
        """Queue the links of one document of a directory, read and parsed (see _parsers)."""
        if parsed.unreadable is not None:
            self.warn(f"cannot read {parsed.name}: {parsed.unreadable}")
        elif parsed.undecodable is not None:
            reason, start = parsed.undecodable
            self._counts.undecodable += 1
            self.warn(f"skipped {parsed.name}: {reason} (byte {start}); its links are not checked")
        elif parsed.document is not None:
            self._take_document(parsed.name, parsed.document, is_file=True)

    def _take_document(self, name: str, document: Document, *, is_file: bool) -> None:
        self._counts.documents += 1
        if document.anchors is not None:
            self.local.remember(os.path.abspath(name), document.anchors)
        self._counts.unchecked.update(document.skipped)
        for link in document.links:
            if link.url.startswith("//"):
                # Protocol-relative: a local document has no scheme to borrow; as GitHub
                # and a browser showing a https page take it, over https.
                target = self._web_target(f"https:{link.url}", name, link.line)
            elif _is_web(link.url):
                target = self._web_target(link.url, name, link.line)
            elif is_file:
                target = self._local_target(link.url, name, link.line)
            else:
                self._counts.unchecked["relative"] += 1  # standard input has no directory
                continue
            if target is not None:
                self._queue(target)

    def _undecodable(self, name: str, exc: UnicodeDecodeError) -> None:
        from ._parsers import Parsed

        self._take(Parsed(name, undecodable=(exc.reason, exc.start)))

    def _web_target(self, url: str, source: str, line: int) -> Target | None:
        # Filtered, grouped and shown as the masked URL, as every output shows it.
        target = make_target(url, source, line)
        if target.invalid is None and not keep(target.url, self._options.link_filter, self._counts):
            return None
        if self._options.check_fragments and target.invalid is None:
            fragment = target.url.partition("#")[2]
            if fragment:
                target = dataclasses.replace(target, fragment=fragment)
        return target

    def _local_target(self, link: str, source: str, line: int) -> Target | None:
        if not keep(link, self._options.link_filter, self._counts):
            return None
        local = self.local.resolve(link, source)
        if local == ROOT_RELATIVE:
            self._counts.unchecked[ROOT_RELATIVE] += 1
            return None
        assert not isinstance(local, str)
        return Target(link, source, line, local=local)

    def _queue(self, target: Target) -> None:
        """Hand a target on: dump its place, or queue it once per distinct link."""
        if self._dump is not None:
            self._dump(target.url, target.source, target.line)
            return
        places = self.places
        if places is not None:
            if target.local is not None:
                key = f"\0{target.local.path}#{target.local.fragment or ''}"
            else:
                key = link_key(target.url, fragments=self._options.check_fragments)
                if target.page is not None and key in places:
                    # A page checked as a link when it was first found beyond --max-depth,
                    # found again within it: fetched once more, to be followed this time.
                    key += "\0page"
            if not places.add(key, target.url, target.source, target.line):
                return
        if target.page is not None or target.sitemap:
            self._pages_pending += 1
        self._frontier.append(target)

    def _read_anchors(self, path: Path) -> frozenset[str] | None:
        """The anchors of a document that is linked to but was not among the inputs."""
        from ._extract import document_type
        from ._parsers import parse_file

        if document_type(path.name) == "text":
            return None
        document = parse_file(str(path)).document
        return document.anchors if document is not None else None


def _walk(top: str) -> Iterator[str]:
    """The documents under `top`, named as the user named the directory (`docs/a/b.md`)."""
    from ._walk import walk_documents

    absolute = os.path.abspath(top)
    for path in walk_documents(top):
        yield os.path.join(top, os.path.relpath(path, absolute))
