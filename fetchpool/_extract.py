"""Find the links of a document (Markdown, HTML or plain text), the line of each, and its anchors.

Markdown goes through a real CommonMark parser (`markdown-it-py`, with the GFM table,
strikethrough and footnote syntax of `mdit-py-plugins`), HTML through the standard library's
`html.parser`; plain text is scanned for bare http(s) URLs.

`parse_document` gives every link a link checker can check, in document order: absolute
http(s) URLs and local references (relative paths, root-relative paths, bare fragments), as
written; links that are not checked are counted by reason in `Document.skipped`:

* ``"scheme"``: any scheme but http and https (``mailto:``, ``tel:``, ``javascript:``,
  ``data:``, ``ftp:``, ...).
* ``"template"``: a template placeholder in the URL (``{{``, ``{%``, ``${``, ``<%``).
* ``"preconnect"``: the origins of ``<link rel="preconnect">`` and ``rel="dns-prefetch"``.

A network-path reference (``//host/x``) is a link, given as written: against a page URL it
resolves to that page's scheme; for a local document the caller decides (https is what a
browser would use for a page served over https).

Markdown destinations are given as written (no percent-encoding, no punycode), except that
whitespace inside an angle-bracket destination (``[x](<https://h/a b>)``, legal CommonMark)
is given as ``%20`` (``%09`` for a tab): it is the URL a browser requests for that link, and a
URL with a raw space in it is not a valid URL to fetch.
"""

from __future__ import annotations

import collections
import gc
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fetchpool._errors import UsageError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = [
    "Document",
    "DocumentType",
    "Link",
    "document_type",
    "extract_html",
    "extract_links",
    "extract_markdown",
    "extract_text",
    "find_bare_urls",
    "github_slug",
    "is_checkable",
    "parse_document",
]

DocumentType = Literal["markdown", "html", "text"]

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx", ".mkd", ".mdown", ".qmd", ".rmd")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
_URL_ATTRIBUTES = frozenset({"href", "src"})
_PRECONNECT_RELS = frozenset({"preconnect", "dns-prefetch"})

# A bare URL runs until whitespace or a character that cannot stand unescaped in one and
# usually delimits it in prose or markup; trailing punctuation is trimmed afterwards.
_BARE_URL = re.compile(r"""\bhttps?://[^\s<>"`{}|\\^]+""", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"*"
_CLOSERS = {")": "(", "]": "[", ">": "<"}
_NEWLINES = re.compile(r"\r\n?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_TEMPLATE_MARKERS = ("{{", "{%", "${", "<%")
_GITHUB_PREFIX = "user-content-"


@dataclass(frozen=True, slots=True)
class Link:
    """One link as written in a document, and the 1-based line where the URL itself stands."""

    url: str
    line: int


@dataclass(slots=True)
class Document:
    """What `parse_document` finds in one document.

    Attributes:
        links: in document order, absolute http(s) links and local references (relative
            paths such as ``guide.md``, ``../img/a.png``, ``sub/`` or ``guide.md#intro``,
            root-relative ``/docs/x``, bare fragments ``#intro``); for plain text, bare
            http(s) URLs only.
        skipped: links that are not checked, counted by reason (``scheme``, ``template``,
            ``preconnect``).
        anchors: the fragment names the document defines, when asked for; else None.
        base: the first HTML ``<base href>``, as written; None when there is none.
    """

    links: list[Link] = field(default_factory=list)
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    anchors: frozenset[str] | None = None
    base: str | None = None


def document_type(name: str) -> DocumentType:
    """The document type of a file name, by its extension (stdin, `-`, is plain text)."""
    lowered = name.lower()
    if lowered.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    if lowered.endswith(HTML_SUFFIXES):
        return "html"
    return "text"


def is_checkable(url: str) -> bool:
    """True for an absolute http(s) URL with a host; relative, mailto: and the like are not."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def github_slug(text: str) -> str:
    """GitHub's heading anchor for a heading whose text content is `text` (before repeats).

    Lower-cased; letters, marks, decimal digits and letter-numbers (Roman numerals) of any
    script are kept, as are ``-`` and connector punctuation such as ``_``; each space
    becomes ``-`` (so ``a - b`` is ``a---b``); everything else is dropped: punctuation,
    symbols (emoji among them; the marks that dress an emoji, such as U+FE0F, stay, as on
    GitHub), other numbers (``²``), format characters and other separators. Nothing is
    trimmed: a heading whose text starts with an emoji has a slug that starts with ``-``.
    """
    out: list[str] = []
    for char in text.lower():
        if char == " ":
            out.append("-")
        elif char.isascii():
            if char.isalnum() or char in "-_":
                out.append(char)
        else:
            category = unicodedata.category(char)
            if (
                category[0] in "LM"
                or category in ("Nd", "Nl", "Pc")
                or (category == "So" and _alphabetic_symbol(char))
            ):
                out.append(char)
    return "".join(out)


def _alphabetic_symbol(char: str) -> bool:
    """The symbols that Unicode also counts as letters (circled and squared Latin letters)."""
    code = ord(char)
    return 0x24B6 <= code <= 0x24E9 or 0x1F130 <= code <= 0x1F189


class _Slugger:
    """GitHub's de-duplication: a repeat gets ``-1``, ``-2``, ... skipping any slug taken."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._repeats: dict[str, int] = {}

    def slug(self, text: str) -> str:
        base = github_slug(text)
        slug = base
        while slug in self._taken:
            count = self._repeats.get(base, 0) + 1
            self._repeats[base] = count
            slug = f"{base}-{count}"
        self._taken.add(slug)
        return slug


def on_github(url: str) -> bool:
    """True for a github.com page, whose anchors are `user-content-NAME` for `#NAME` (see
    `parse_document`'s `github`)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "github.com" or host.endswith(".github.com")


def parse_document(
    text: str,
    doc_type: DocumentType,
    *,
    want_anchors: bool = False,
    github: bool = False,
    mdx: bool | None = None,
) -> Document:
    """The links of `text` read as a document of `doc_type`, and its anchors when asked.

    Args:
        text: the decoded document.
        doc_type: how to read it (see `document_type`).
        want_anchors: also collect the fragment names the document defines: HTML ``id``
            attributes and ``<a name>``; for Markdown also each heading's GitHub slug, and
            explicit ``{#id}`` heading attributes. A plain-text document has none.
        github: the document is a github.com page: an ``id``/``name`` of
            ``user-content-NAME`` also counts as ``NAME``.
        mdx: a Markdown document is MDX (``.mdx``): indented lines are JSX nesting, not
            code, and the text of ``{expressions}`` is JavaScript, not prose. None (the
            default) decides by the text: MDX when it has an ESM ``import``/``export``
            block outside fenced code; pass ``name.endswith(".mdx")`` to decide by the
            file name. Whatever it is, ESM blocks are left out of every Markdown
            document, and an attribute value that starts with ``{`` is never a URL (it is
            counted as a template).

    Raises:
        UsageError: for Markdown when `markdown-it-py` is not installed.
    """
    sink = _Sink(want_anchors=want_anchors, github=github)
    # Parsing makes many small, long-lived objects (tokens) and no garbage cycles: the
    # collections their numbers trigger cost up to a third of the time and free nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        if doc_type == "markdown":
            _parse_markdown(text, sink, mdx=mdx)
        elif doc_type == "html":
            _parse_html(text, sink)
        else:
            _parse_text(text, sink)
    finally:
        if enabled:
            gc.enable()
    return Document(
        sink.links,
        sink.skipped,
        frozenset(sink.anchors) if sink.anchors is not None else None,
        sink.base,
    )


def extract_links(text: str, doc_type: DocumentType) -> list[Link]:
    """The absolute http(s) links of `text`, read as a document of `doc_type`, in order.

    Raises:
        UsageError: for Markdown when `markdown-it-py` is not installed.
    """
    return _checkable(parse_document(text, doc_type).links)


def _checkable(links: list[Link]) -> list[Link]:
    return [link for link in links if is_checkable(link.url)]


class _Sink:
    """Where a parse puts what it finds: links, skip counts, anchors and the base URL."""

    __slots__ = ("anchors", "base", "github", "links", "skipped")

    def __init__(self, *, want_anchors: bool, github: bool) -> None:
        self.links: list[Link] = []
        self.skipped: collections.Counter[str] = collections.Counter()
        self.anchors: set[str] | None = set() if want_anchors else None
        self.base: str | None = None
        self.github = github

    def add(self, url: str, line: int) -> None:
        """Record a link as written: a checkable one, or a skipped one by its reason."""
        url = url.strip()
        if not url:
            return
        if url[0] == "{" or any(marker in url for marker in _TEMPLATE_MARKERS):
            # A value that starts with "{" is a JSX expression or a placeholder ("{url}").
            self.skipped["template"] += 1
            return
        scheme = _SCHEME.match(url)
        if scheme is not None and scheme.group().lower() not in ("http:", "https:"):
            self.skipped["scheme"] += 1
            return
        self.links.append(Link(url, line))

    def anchor(self, name: str) -> None:
        """Record an anchor (a no-op unless anchors were asked for)."""
        if self.anchors is None or not name:
            return
        self.anchors.add(name)
        if self.github and name.startswith(_GITHUB_PREFIX):
            self.anchors.add(name[len(_GITHUB_PREFIX) :])


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


def _scan_bare_urls(text: str, line: int, sink: _Sink) -> None:
    """Add the bare http(s) URLs of one line of prose; one cut short by a template is skipped."""
    for match in _BARE_URL.finditer(text):
        end = match.end()
        if text[end : end + 2] in _TEMPLATE_MARKERS or text[end - 1 : end + 1] == "${":
            sink.skipped["template"] += 1
            continue
        url = _trim_bare_url(match.group())
        if is_checkable(url):
            sink.links.append(Link(url, line))


def _parse_text(text: str, sink: _Sink) -> None:
    for number, line in enumerate(_NEWLINES.sub("\n", text).split("\n"), start=1):
        if "://" in line:
            _scan_bare_urls(line, number, sink)


def extract_text(text: str) -> list[Link]:
    """The bare http(s) URLs of a plain-text document."""
    return parse_document(text, "text").links


# -- HTML ---------------------------------------------------------------------------------


def _srcset_urls(value: str) -> Iterator[str]:
    # "a.png 1x, b.png 2x": each candidate is a URL, then an optional descriptor.
    for candidate in value.split(","):
        words = candidate.split()
        if words:
            yield words[0]


class _HTMLCollector(HTMLParser):
    """Collects href/src/srcset links, anchors and `<base href>`; comments never reach it.

    One instance is reused for the many HTML snippets of a Markdown document (`start`).
    """

    def __init__(self, sink: _Sink) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = sink
        self.first_line = 1

    def start(self, first_line: int) -> None:
        """Get ready for a new snippet whose first line is document line `first_line`."""
        self.reset()
        self.first_line = first_line

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        sink = self.sink
        urls: list[str] = []
        rel = ""
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRIBUTES:
                urls.append(value)
            elif name == "srcset":
                urls.extend(_srcset_urls(value))
            elif name == "id" or (name == "name" and tag == "a"):
                sink.anchor(value)
            elif name == "rel":
                rel = value
        if not urls:
            return
        if tag == "base":
            if sink.base is None:
                sink.base = urls[0].strip()
            return
        if tag == "link" and _PRECONNECT_RELS.intersection(rel.lower().split()):
            sink.skipped["preconnect"] += len(urls)
            return
        line = self.first_line + self.getpos()[0] - 1
        raw = self.get_starttag_text() or ""
        for url in urls:
            stripped = url.strip()
            offset = 0
            if "\n" in raw:
                # getpos() is the line of the tag's "<"; the URL may stand lower down.
                at = raw.find(stripped)
                offset = raw.count("\n", 0, at) if at >= 0 else 0
            sink.add(stripped, line + offset)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _parse_html(text: str, sink: _Sink) -> None:
    parser = _HTMLCollector(sink)
    parser.feed(_NEWLINES.sub("\n", text))
    parser.close()


def extract_html(text: str, *, first_line: int = 1) -> list[Link]:
    """The http(s) `href`, `src` and `srcset` links of an HTML document (or fragment).

    Args:
        text: the HTML.
        first_line: the document line that the first line of `text` stands on.
    """
    sink = _Sink(want_anchors=False, github=False)
    parser = _HTMLCollector(sink)
    parser.start(first_line)
    parser.feed(_NEWLINES.sub("\n", text))
    parser.close()
    return _checkable(sink.links)


# -- Markdown -----------------------------------------------------------------------------

_InlineRule = Callable[[Any, bool], bool]
_parser: MarkdownIt | None = None
_mdx_parser: MarkdownIt | None = None

# Documents longer than this are parsed a stretch at a time (see `_stretches`).
_STRETCH = 256 * 1024
_HEADING_ID = re.compile(r"\s*\{[^{}]*?#([^\s{}#.]+)[^{}]*\}\s*$")
_MDX_ESM = re.compile(
    r"^(?:import\s+(?:[\w$*{}, \t]+\s+from\s+)?['\"]"
    r"|export\s+(?:default\b|const\b|let\b|var\b|function\b|async\b|class\b|\{|\*))",
    re.MULTILINE,
)
# Inline markup that could make a link or cut or change a bare URL's text (see
# `_Walker._without_tokens`); line breaks, even hard ones, are harmless.
_INLINE_MARKUP = re.compile(r"[\[<`\\&*_~]")
_MDX_EXPRESSION = re.compile(r"\{[^{}]*\}")
_FENCE = re.compile(r" *(`{3,}|~{3,})(.*)")
_RAW_HTML_OPEN = re.compile(r" {0,3}<(script|pre|style|textarea|!--)", re.IGNORECASE)
_REFERENCE_LABEL = re.compile(r"^[ \t>]*\[([^\]\n]+)\]:", re.MULTILINE)
_WHITESPACE = re.compile(r"[ \t]")


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
    """Wrap an inline rule so no source line break goes unaccounted for in its tokens, and a
    link's URL gets the line it stands on.

    Only the rules that can swallow line breaks are wrapped (a code span turns them into
    spaces; a link title or an image's alt text keeps them out of the token list): every
    other rule either stops at a line break or turns it into a break token. The wrapper
    records the swallowed breaks on the last token the rule pushed, so counting breaks
    while walking gives every token its line. A link or image whose text runs over lines
    records how many breaks come before its URL. Reference-style links are marked: they
    are reported at their definition instead.
    """

    def tracked(state: Any, silent: bool) -> bool:
        if silent:
            return rule(state, silent)
        start, before = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        pushed: list[Token] = state.tokens[before:]
        if not pushed:
            return True
        src: str = state.src
        newlines = src.count("\n", start, state.pos)
        missing = newlines - sum(map(_newlines_in, pushed))
        if missing > 0:
            last = pushed[-1]
            meta = last.meta or {}
            last.meta = {**meta, "fetchpool_newlines": meta.get("fetchpool_newlines", 0) + missing}
        if name == "backticks":
            return True
        for token in pushed:
            if token.type in ("link_open", "image"):
                break
        else:
            return True
        # An inline link or image ends with ")"; the reference forms end with "]".
        if src[state.pos - 1] == "]":
            token.meta = {**(token.meta or {}), "fetchpool_reference": True}
        elif newlines:
            # "[text over\nlines](url)": the URL stands below the "[" of the link.
            href = str(token.attrGet("href" if token.type == "link_open" else "src") or "")
            at = src.find(href, start, state.pos) if href else -1
            if at < 0:
                at = src.rfind("](", start, state.pos)
            url_newlines = src.count("\n", start, at)
            token.meta = {**(token.meta or {}), "fetchpool_url_newlines": url_newlines}
        return True

    return tracked


def _markdown_parser(mdx: bool = False) -> MarkdownIt:
    global _parser, _mdx_parser
    cached = _mdx_parser if mdx else _parser
    if cached is not None:
        return cached
    try:
        from markdown_it import MarkdownIt
        from mdit_py_plugins.attrs import attrs_block_plugin
        from mdit_py_plugins.footnote import footnote_plugin
    except ImportError:  # pragma: no cover - depends on the environment
        raise UsageError(
            "reading Markdown needs markdown-it-py and mdit-py-plugins: "
            "pip install 'fetchpool[extract]'"
        ) from None

    class _AsWrittenMarkdownIt(MarkdownIt):
        # Keep link destinations as written (no percent-encoding or punycode), so a
        # report names the URL the author typed; and let every scheme through, so that
        # javascript: and data: links are counted as skipped rather than read as text.
        def normalizeLink(self, url: str) -> str:
            return url

        def validateLink(self, url: str) -> bool:
            return True

    # Bare URLs are found with our own pattern rather than linkify, whose fuzzy matching
    # would turn a bare "example.com" into an http:// link nobody wrote. Reference
    # definitions come as tokens where they stand ("inline_definitions").
    parser = _AsWrittenMarkdownIt("commonmark", {"inline_definitions": True})
    parser.enable(["table", "strikethrough"])
    # GFM footnotes: a definition stays where it is written; GFM has no ^[inline] notes.
    parser.use(footnote_plugin, inline=False, move_to_end=False)
    parser.use(attrs_block_plugin)  # {#id} on the line before a block
    # Inline content is parsed one block at a time while walking (see `_Walker.walk`),
    # so only one block's inline tokens are alive at once.
    parser.disable("inline")
    parser.disable("text_join")
    if mdx:
        parser.disable("code")  # MDX has no indented code: indentation is JSX nesting
    for rule in list(parser.inline.ruler.__rules__):
        if rule.name in ("backticks", "link", "image"):
            parser.inline.ruler.at(rule.name, _tracking(rule.fn, rule.name))
    if mdx:
        _mdx_parser = parser
    else:
        _parser = parser
    return parser


def _encode_whitespace(url: str) -> str:
    """A destination with spaces (legal in angle brackets) as a browser requests it."""
    if " " not in url and "\t" not in url:
        return url
    return _WHITESPACE.sub(lambda match: "%20" if match.group() == " " else "%09", url)


class _Walker:
    """Walks the tokens of a Markdown document, a stretch at a time, into a `_Sink`."""

    def __init__(self, sink: _Sink, parser: MarkdownIt, *, mdx: bool) -> None:
        self.sink = sink
        self.parser = parser
        self.mdx = mdx
        self.html = _HTMLCollector(sink)
        self.slugger = _Slugger() if sink.anchors is not None else None
        self.env: dict[str, Any] = {}
        self._line_starts: list[int] | None = None  # of the stretch being walked

    def walk(self, text: str, first_line: int) -> None:
        """Parse `text`, which starts at document line `first_line`, and record its links."""
        tokens = self.parser.parse(text, self.env)
        self._line_starts = None
        sink = self.sink
        start = len(sink.links)
        line = first_line
        in_heading = False
        for token in tokens:
            if token.map is not None:
                line = first_line + token.map[0]
            kind = token.type
            if kind == "inline":
                heading = in_heading and self.slugger is not None
                in_heading = False
                if heading or not self._without_tokens(token.content, line):
                    children: list[Token] = []
                    self.parser.inline.parse(token.content, self.parser, self.env, children)
                    self._inline(children, line)
                    if heading:
                        self._heading(children)
            elif kind == "html_block":
                self.html.start(line)
                self.html.feed(token.content)
                self.html.close()
            elif kind == "definition":
                assert token.meta is not None
                self._definition(str(token.meta["url"]), token, text, first_line)
            elif kind.endswith("_open"):
                in_heading = kind == "heading_open"
                if token.attrs and "id" in token.attrs:  # {#id} on the line before a block
                    sink.anchor(str(token.attrs["id"]))
        # Stable: links on one line keep their order of appearance; definitions, found at
        # the end of their block, join the links around them.
        tail = sink.links[start:]
        tail.sort(key=lambda link: link.line)
        sink.links[start:] = tail

    def _definition(self, href: str, token: Token, text: str, first_line: int) -> None:
        """A reference definition, reported at the line where its URL stands."""
        assert token.map is not None
        first, last = token.map
        line = first_line + first
        if last - first > 1:
            # "[x]:" then the URL on a line below: count the breaks before the destination.
            if self._line_starts is None:
                self._line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
            block = text[
                self._line_starts[first] : self._line_starts[min(last, len(self._line_starts) - 1)]
            ]
            colon = block.find("]:")
            if colon >= 0:
                rest = block[colon + 2 :]
                skipped = len(rest) - len(rest.lstrip(" \t\n>"))
                line += block.count("\n", 0, colon + 2 + skipped)
        self.sink.add(_encode_whitespace(href), line)

    def _inline(self, children: list[Token], first_line: int) -> None:
        """The links among one inline token's children; `first_line` is 1-based."""
        sink = self.sink
        line = first_line
        link_depth = 0
        text: list[str] = []
        for token in children:
            kind = token.type
            if kind == "text" or kind == "text_special":
                if link_depth == 0:  # text inside a link is its label, not another link
                    text.append(token.content)
                continue
            if text:
                self._prose("".join(text), line)
                text = []
            meta = token.meta
            if kind == "link_open":
                link_depth += 1
                if not (meta and meta.get("fetchpool_reference")):
                    at = line + (meta.get("fetchpool_url_newlines", 0) if meta else 0)
                    sink.add(_encode_whitespace(str(token.attrGet("href") or "")), at)
            elif kind == "link_close":
                link_depth = max(0, link_depth - 1)
            elif kind == "image":
                if not (meta and meta.get("fetchpool_reference")):
                    at = line + (meta.get("fetchpool_url_newlines", 0) if meta else 0)
                    sink.add(_encode_whitespace(str(token.attrGet("src") or "")), at)
            elif kind == "html_inline" and token.content[1] not in "/!?":
                # (closing tags, comments and declarations have no links)
                self.html.start(line)
                self.html.feed(token.content)
                self.html.close()
            line += _newlines_in(token)
        if text:
            self._prose("".join(text), line)

    def _without_tokens(self, content: str, first_line: int) -> bool:
        """Take the links of inline content that needs no inline tokens; False if it does.

        Most prose has no link syntax ("[": links, images, references, footnotes), no "<"
        (autolinks, HTML) and no bare URL, so no links. A bare URL with no markup around
        that could make a link or cut or change its text (code, escapes, entities,
        emphasis) is what a scan of each line finds.
        """
        if "[" in content or "<" in content:
            return False
        if "://" not in content:
            return True
        if _INLINE_MARKUP.search(content) is not None:
            return False
        for number, text in enumerate(content.split("\n"), start=first_line):
            self._prose(text, number)
        return True

    def _prose(self, text: str, line: int) -> None:
        if "://" not in text:
            return
        if self.mdx and "{" in text:
            # MDX: {expressions} are JavaScript, innermost first; their strings are code.
            while (stripped := _MDX_EXPRESSION.sub(" ", text)) != text:
                text = stripped
        _scan_bare_urls(text, line, self.sink)

    def _heading(self, children: list[Token]) -> None:
        """Record a heading's GitHub slug (its text content: code, link labels, emphasis)."""
        assert self.slugger is not None
        parts = [
            token.content
            for token in children
            if token.type in ("text", "text_special", "code_inline")
        ]
        content = "".join(parts)
        # GitHub's slug, numbered among GitHub's slugs of the other headings.
        self.sink.anchor(self.slugger.slug(content))
        attribute = _HEADING_ID.search(content)
        if attribute is not None:
            # "# Title {#id}": GitHub shows the braces (slug "title-id", above); kramdown,
            # Pandoc, Hugo and MkDocs give the heading the id, and some the title's slug.
            self.sink.anchor(attribute.group(1))
            self.sink.anchor(github_slug(content[: attribute.start()]))


def _blank_esm(text: str) -> tuple[str, bool]:
    """Blank MDX's ESM blocks (a top-level `import ... from '...'` or `export const ...` up
    to the next blank line), keeping the line count; fenced code is left alone. Also say
    whether there were any.

    The patterns are strict enough that Markdown prose does not match them, so this runs for
    every Markdown document: an `.mdx` file is Markdown plus JSX and ESM.
    """
    if _MDX_ESM.search(text) is None:
        return text, False
    lines = text.split("\n")
    fence: str | None = None
    in_esm = found = False
    for number, line in enumerate(lines):
        if in_esm:
            if line.strip():
                lines[number] = ""
            else:
                in_esm = False
            continue
        marker = _FENCE.match(line)
        if fence is not None:
            if marker is not None and marker[1].startswith(fence) and not marker[2].strip():
                fence = None
        elif marker is not None:
            fence = marker[1]
        elif _MDX_ESM.match(line):
            lines[number] = ""
            in_esm = found = True
    return ("\n".join(lines), True) if found else (text, False)


def _stretches(text: str) -> Iterator[tuple[str, int]]:
    """Cut a long document into stretches that parse as they would in place, with the
    0-based line each starts on.

    A cut goes before a line that starts, after a blank line, with a letter or digit in
    its first column: whatever was open there (a list, a quote, indented code, a table, an
    HTML block that ends at a blank line) has ended, and a new top-level block starts.
    Cuts are never made inside a fenced code block or a comment, `<pre>`, `<script>`,
    `<style>` or `<textarea>` block. Parsing a stretch at a time keeps memory to one
    stretch's tokens.
    """
    if len(text) <= _STRETCH:
        yield text, 0
        return
    lines = text.split("\n")
    begin = 0  # index of the stretch's first line
    size = 0
    fence: str | None = None
    raw_end: str | None = None
    previous_blank = False
    for number, line in enumerate(lines):
        if fence is not None:
            closing = _FENCE.match(line)
            if closing is not None and closing[1].startswith(fence) and not closing[2].strip():
                fence = None
        elif raw_end is not None:
            if raw_end in line.lower():
                raw_end = None
        else:
            if size >= _STRETCH and previous_blank and line[:1].isalnum():
                yield "\n".join(lines[begin:number]), begin
                begin, size = number, 0
            opening = _FENCE.match(line)
            if opening is not None and not (opening[1][0] == "`" and "`" in opening[2]):
                fence = opening[1]
            elif (html := _RAW_HTML_OPEN.match(line)) is not None:
                tag = html[1].lower()
                end = "-->" if tag == "!--" else f"</{tag}>"
                if end not in line[html.end() :].lower():
                    raw_end = end
        size += len(line) + 1
        previous_blank = not line.strip()
    yield "\n".join(lines[begin:]), begin


def _parse_markdown(text: str, sink: _Sink, *, mdx: bool | None) -> None:
    text = _NEWLINES.sub("\n", text)
    text, esm = _blank_esm(text)
    if mdx is None:
        mdx = esm
    walker = _Walker(sink, _markdown_parser(mdx), mdx=mdx)
    if len(text) > _STRETCH:
        # A reference may be used stretches before its definition: make its label known,
        # so the use is a reference (reported at the definition), not text.
        from markdown_it.common.utils import normalizeReference

        references: dict[str, Any] = walker.env.setdefault("references", {})
        for match in _REFERENCE_LABEL.finditer(text):
            label = normalizeReference(match.group(1))
            references.setdefault(label, {"title": "", "href": "", "map": None})
    for stretch, first in _stretches(text):
        walker.walk(stretch, first + 1)


def extract_markdown(text: str) -> list[Link]:
    """The http(s) links of a Markdown document, in document order.

    Inline links and images, autolinks, bare URLs and the href/src of raw HTML are reported
    where they stand; a reference definition at its own line (its uses are not repeated).
    Code spans, fenced and indented code blocks are skipped.

    Raises:
        UsageError: when `markdown-it-py` is not installed.
    """
    return _checkable(parse_document(text, "markdown").links)
