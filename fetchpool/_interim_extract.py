"""INTERIM: a small stand-in for `_extract.parse_document` until the full one lands."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from ._extract import DocumentType, Link, _markdown_parser, document_type, find_bare_urls

__all__ = ["Document", "document_type", "github_slug", "parse_document"]

_TEMPLATE = ("{{", "{%", "${", "<%")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(slots=True)
class Document:
    links: list[Link] = field(default_factory=list)
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    anchors: frozenset[str] | None = None
    base: str | None = None

    def add(self, url: str, line: int) -> None:
        url = url.strip()
        if not url:
            return
        if any(t in url for t in _TEMPLATE):
            self.skipped["template"] += 1
        elif url.lower().startswith(("http://", "https://")):
            self.links.append(Link(url, line))
        elif _SCHEME.match(url) or url.startswith("//"):
            self.skipped["scheme"] += 1
        else:
            self.links.append(Link(url, line))


def github_slug(text: str) -> str:
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


class _Html(HTMLParser):
    def __init__(self, doc: Document, first_line: int) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = doc
        self.first = first_line
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.first + self.getpos()[0] - 1
        values = dict(attrs)
        if values.get("id"):
            self.anchors.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.anchors.add(str(values["name"]))
        if tag == "base" and values.get("href") and self.doc.base is None:
            self.doc.base = values["href"]
            return
        rel = (values.get("rel") or "").lower().split()
        if tag == "link" and ("preconnect" in rel or "dns-prefetch" in rel):
            self.doc.skipped["preconnect"] += 1
            return
        for name in ("href", "src"):
            value = values.get(name)
            if value:
                self.doc.add(value, line)

    handle_startendtag = handle_starttag


def parse_document(
    text: str, doc_type: DocumentType, *, want_anchors: bool = False, github: bool = False
) -> Document:
    doc = Document()
    anchors: set[str] = set()
    if doc_type == "html":
        parser = _Html(doc, 1)
        parser.feed(text)
        parser.close()
        anchors = parser.anchors
    elif doc_type == "markdown":
        env: dict[str, Any] = {}
        tokens = _markdown_parser().parse(text, env)
        line = 1
        heading = False
        for token in tokens:
            if token.map is not None:
                line = token.map[0] + 1
            if token.type == "heading_open":
                heading = True
            elif token.type == "inline" and token.children:
                if heading:
                    anchors.add(github_slug(token.content))
                    heading = False
                for child in token.children:
                    meta = child.meta or {}
                    if child.type == "link_open" and not meta.get("fetchpool_reference"):
                        doc.add(str(child.attrGet("href") or ""), line)
                    elif child.type == "image" and not meta.get("fetchpool_reference"):
                        doc.add(str(child.attrGet("src") or ""), line)
                    elif child.type == "text":
                        for url, _ in find_bare_urls(child.content):
                            doc.add(url, line)
            elif token.type == "html_block":
                parser = _Html(doc, line)
                parser.feed(token.content)
                anchors |= parser.anchors
        for definition in env.get("references", {}).values():
            doc.add(str(definition.get("href", "")), int(definition["map"][0]) + 1)
        doc.links.sort(key=lambda link: link.line)
    else:
        for number, text_line in enumerate(text.splitlines(), start=1):
            for url, _ in find_bare_urls(text_line):
                doc.add(url, number)
    if want_anchors:
        doc.anchors = frozenset(anchors)
    return doc
