"""Link-checking input: filter targets, extract links from documents, fetch each URL once.

With `--extract`, every input is a document; each http(s) link in it becomes
a target, and `Places` fans the one result of a URL out to every place where
that URL stands. `--include`/`--exclude`/`--shard` apply in both modes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from ._models import Result, Target
from ._source import Input, make_target, read_document

if TYPE_CHECKING:
    from ._filter import LinkFilter


class FilterCounts(Protocol):
    """Where filtered-out links are counted (the run's statistics)."""

    excluded: int
    other_shards: int


class Places:
    """Each URL is fetched once; its result is reported at every place it occurs."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[str, int]]] = {}
        self._done: dict[str, Result] = {}
        self._late: list[Result] = []

    def add(self, url: str, source: str, line: int) -> bool:
        """Record a place of `url`; True when the URL is new and must be fetched."""
        if url in self._done:
            # Found after its result was in: report it at this place too.
            self._late.append(dataclasses.replace(self._done[url], source=source, line=line))
            return False
        places = self._waiting.get(url)
        if places is None:
            self._waiting[url] = [(source, line)]
            return True
        places.append((source, line))
        return False

    def expand(self, result: Result) -> list[Result]:
        """The result of a fetched URL, once for every place it stands."""
        places = self._waiting.pop(result.url, None)
        if places is None:
            return [result]
        self._done[result.url] = result
        return [dataclasses.replace(result, source=source, line=line) for source, line in places]

    def take_late(self) -> list[Result]:
        """Results for places found after their URL's result was already reported."""
        late, self._late = self._late, []
        return late


def keep(url: str, link_filter: LinkFilter | None, counts: FilterCounts) -> bool:
    """Whether the filter keeps `url`; a link it drops is counted as excluded or other-shard."""
    if link_filter is None:
        return True
    decision = link_filter.decide(url)
    if decision == "excluded":
        counts.excluded += 1
    elif decision == "other-shard":
        counts.other_shards += 1
    return decision == "keep"


async def filter_targets(
    targets: AsyncIterable[Target], link_filter: LinkFilter, counts: FilterCounts
) -> AsyncIterator[Target]:
    """Drop (and count) targets that `--include`/`--exclude`/`--shard` leave out.

    A line that is not a valid URL is never dropped: it still yields its FAIL.
    """
    async for target in targets:
        if target.invalid is not None or keep(target.url, link_filter, counts):
            yield target


async def extract_targets(
    inputs: Sequence[Input],
    places: Places,
    *,
    link_filter: LinkFilter | None,
    counts: FilterCounts,
    errors: list[str],
) -> AsyncIterator[Target]:
    """Targets for the http(s) links of each document, each URL once, in document order.

    A document that cannot be read ends the input; why is appended to `errors`.
    """
    from ._extract import document_type, extract_links  # only link checking needs the parsers

    for source in inputs:
        try:
            text = await read_document(source)
        except OSError as exc:
            errors.append(f"cannot read {source.name}: {(exc.strerror or str(exc)).lower()}")
            return
        for link in extract_links(text, document_type(source.name)):
            # Filtered, grouped and shown as the masked URL, as every output shows it.
            target = make_target(link.url, source.name, link.line)
            if not keep(target.url, link_filter, counts):
                continue
            if places.add(target.url, source.name, link.line):
                yield target
