"""Find the http(s) links in a document (Markdown, HTML or plain text) and the line of each.

Markdown goes through a real CommonMark parser (`markdown-it-py`, the `extract` extra), HTML
through the standard library's `html.parser`; relative and non-http(s) links are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fetchpool._errors import UsageError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = [
    "DocumentType",
    "Link",
    "document_type",
    "extract_html",
    "extract_links",
    "extract_markdown",
    "extract_text",
    "find_bare_urls",
    "is_checkable",
]

DocumentType = Literal["markdown", "html", "text"]

_MARKDOWN_SUFFIXES = (".md", ".markdown")
_HTML_SUFFIXES = (".html", ".htm")
_URL_ATTRIBUTES = frozenset({"href", "src"})

# A bare URL runs until whitespace or a character that cannot stand unescaped in one and
# usually delimits it in prose or markup; trailing punctuation is trimmed afterwards.
_BARE_URL = re.compile(r"""\bhttps?://[^\s<>"`{}|\\^]+""", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"*"
_CLOSERS = {")": "(", "]": "[", ">": "<"}
_NEWLINES = re.compile(r"\r\n?")


@dataclass(frozen=True, slots=True)
class Link:
    """One http(s) link as written in a document, and the 1-based line it stands on."""

    url: str
    line: int


def document_type(name: str) -> DocumentType:
    """The document type of a file name, by its extension (stdin, `-`, is plain text)."""
    lowered = name.lower()
    if lowered.endswith(_MARKDOWN_SUFFIXES):
        return "markdown"
    if lowered.endswith(_HTML_SUFFIXES):
        return "html"
    return "text"


def extract_links(text: str, doc_type: DocumentType) -> list[Link]:
    """The http(s) links of `text`, read as a document of `doc_type`, in document order.

    Raises:
        UsageError: for Markdown when `markdown-it-py` is not installed.
    """
    if doc_type == "markdown":
        return extract_markdown(text)
    if doc_type == "html":
        return extract_html(text)
    return extract_text(text)


def is_checkable(url: str) -> bool:
    """True for an absolute http(s) URL with a host; relative, mailto: and the like are not."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


# -- plain text ---------------------------------------------------------------------------


def _ends_in_unbalanced_closer(url: str) -> bool:
    last = url[-1]
    return last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])


def _trim_bare_url(url: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a bare URL."""
    while url and (url[-1] in _TRAILING_PUNCTUATION or _ends_in_unbalanced_closer(url)):
        url = url[:-1]
    return url


def find_bare_urls(text: str) -> Iterator[tuple[str, int]]:
    """Each bare http(s) URL in `text` with its character offset."""
    for match in _BARE_URL.finditer(text):
        url = _trim_bare_url(match.group())
        if is_checkable(url):
            yield url, match.start()


def extract_text(text: str) -> list[Link]:
    """The bare http(s) URLs of a plain-text document."""
    lines = _NEWLINES.sub("\n", text).split("\n")
    return [
        Link(url, number)
        for number, line in enumerate(lines, start=1)
        for url, _ in find_bare_urls(line)
    ]


# -- HTML ---------------------------------------------------------------------------------


def _srcset_urls(value: str) -> Iterator[str]:
    # "a.png 1x, b.png 2x": each candidate is a URL, then an optional descriptor.
    for candidate in value.split(","):
        words = candidate.split()
        if words:
            yield words[0]


class _LinkParser(HTMLParser):
    """Collects href/src/srcset attribute values; comments never reach the tag handlers."""

    def __init__(self, first_line: int) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self._first_line = first_line

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, _ = self.getpos()
        raw = self.get_starttag_text() or ""
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRIBUTES:
                urls: Iterable[str] = (value.strip(),)
            elif name == "srcset":
                urls = _srcset_urls(value)
            else:
                continue
            for url in urls:
                if is_checkable(url):
                    # getpos() is the line of the tag's "<"; the attribute may stand lower down.
                    at = raw.find(url)
                    offset = raw.count("\n", 0, at) if at >= 0 else 0
                    self.links.append(Link(url, self._first_line + line - 1 + offset))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def extract_html(text: str, *, first_line: int = 1) -> list[Link]:
    """The http(s) `href`, `src` and `srcset` links of an HTML document (or fragment).

    Args:
        text: the HTML.
        first_line: the document line that the first line of `text` stands on.
    """
    parser = _LinkParser(first_line)
    parser.feed(_NEWLINES.sub("\n", text))
    parser.close()
    return parser.links


# -- Markdown -----------------------------------------------------------------------------

_InlineRule = Callable[[Any, bool], bool]
_parser: MarkdownIt | None = None


def _newlines_in(token: Token) -> int:
    """How many source line breaks `token` stands for, as counted while walking the tokens."""
    if token.type in ("softbreak", "hardbreak"):
        seen = 1
    elif token.type == "html_inline":
        seen = token.content.count("\n")
    else:
        seen = 0
    hidden = token.meta.get("fetchpool_newlines", 0) if token.meta else 0
    return seen + int(hidden)


def _tracking(rule: _InlineRule, name: str) -> _InlineRule:
    """Wrap an inline rule so no source line break goes unaccounted for in its tokens.

    Some constructs swallow line breaks (a code span turns them into spaces, a link title or
    an image's alt text keeps them out of the token list); the wrapper records those on the
    last token the rule pushed, so counting breaks while walking gives every token its line.
    It also marks reference-style links, which are reported at their definition instead.
    """

    def tracked(state: Any, silent: bool) -> bool:
        start, before = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        if silent:
            return True
        pushed: list[Token] = state.tokens[before:]
        if not pushed:
            return True
        missing = state.src.count("\n", start, state.pos) - sum(map(_newlines_in, pushed))
        if missing > 0:
            last = pushed[-1]
            meta = last.meta or {}
            last.meta = {**meta, "fetchpool_newlines": meta.get("fetchpool_newlines", 0) + missing}
        # An inline link or image ends with ")"; the reference forms end with "]".
        if name in ("link", "image") and state.src[state.pos - 1] == "]":
            for token in pushed:
                if token.type in ("link_open", "image"):
                    token.meta = {**(token.meta or {}), "fetchpool_reference": True}
                    break
        return True

    return tracked


def _markdown_parser() -> MarkdownIt:
    global _parser
    if _parser is None:
        try:
            from markdown_it import MarkdownIt
        except ImportError:  # pragma: no cover - depends on the environment
            raise UsageError(
                "reading Markdown needs markdown-it-py: pip install 'fetchpool[extract]'"
            ) from None

        class _AsWrittenMarkdownIt(MarkdownIt):
            # Keep link destinations as written (no percent-encoding or punycode), so a
            # report names the URL the author typed.
            def normalizeLink(self, url: str) -> str:
                return url

        # Bare URLs are found with our own pattern rather than linkify, whose fuzzy matching
        # would turn a bare "example.com" into an http:// link nobody wrote.
        parser = _AsWrittenMarkdownIt("commonmark").enable(["table", "strikethrough"])
        for rule in list(parser.inline.ruler.__rules__):
            parser.inline.ruler.at(rule.name, _tracking(rule.fn, rule.name))
        _parser = parser
    return _parser


def _inline_links(children: list[Token], first_line: int) -> Iterator[Link]:
    """The links among one inline token's children; `first_line` is 1-based."""
    line = first_line
    link_depth = 0
    for token in children:
        meta = token.meta or {}
        if token.type == "link_open":
            link_depth += 1
            href = str(token.attrGet("href") or "")
            if not meta.get("fetchpool_reference") and is_checkable(href):
                yield Link(href, line)
        elif token.type == "link_close":
            link_depth = max(0, link_depth - 1)
        elif token.type == "image":
            src = str(token.attrGet("src") or "")
            if not meta.get("fetchpool_reference") and is_checkable(src):
                yield Link(src, line)
        elif token.type == "text" and link_depth == 0:
            # Text inside a link is its label, not another link.
            for url, _ in find_bare_urls(token.content):
                yield Link(url, line)
        elif token.type == "html_inline":
            yield from extract_html(token.content, first_line=line)
        line += _newlines_in(token)


def extract_markdown(text: str) -> list[Link]:
    """The http(s) links of a Markdown document, in document order.

    Inline links and images, autolinks, bare URLs and the href/src of raw HTML are reported
    where they stand; a reference definition at its own line (its uses are not repeated).
    Code spans, fenced and indented code blocks are skipped.

    Raises:
        UsageError: when `markdown-it-py` is not installed.
    """
    parser = _markdown_parser()
    env: dict[str, Any] = {}
    tokens = parser.parse(text, env)
    links: list[Link] = []
    last_line = 1
    for token in tokens:
        if token.map is not None:
            last_line = token.map[0] + 1
        if token.type == "inline" and token.children:
            links.extend(_inline_links(token.children, last_line))
        elif token.type == "html_block":
            links.extend(extract_html(token.content, first_line=last_line))
    definitions = [*env.get("references", {}).values(), *env.get("duplicate_refs", [])]
    for definition in definitions:
        href = str(definition.get("href", ""))
        if is_checkable(href):
            links.append(Link(href, int(definition["map"][0]) + 1))
    # Stable: links on one line keep their order of appearance.
    links.sort(key=lambda link: link.line)
    return links
