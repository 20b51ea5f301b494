"""Links from local documents to local files: resolved and checked on the file system.

A relative link (`guide.md`, `../img/a.png`, `sub/`, `#intro`) resolves against the
directory of the document it stands in; a root-relative one (`/docs/x`) under `--root-dir`.
The link is percent-decoded and its query dropped, as a web server would. A file that is
not there is a FAIL of kind `missing` (a link to `name.html` stands for the `name.md` beside
it, when there is one: the page a static site generator makes of it); a `#fragment` that
names no anchor of a Markdown or HTML target is a FAIL of kind `fragment` (for a Markdown
target, whatever its case, as on GitHub). `#` and `#top` always exist (browsers scroll to
the top for both). Each target document's anchors are read once per run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from ._models import Kind, LocalLink, Outcome, Result, Target

__all__ = ["ROOT_RELATIVE", "LocalFiles", "split_fragment"]

ROOT_RELATIVE = "root-relative"
"""What `LocalFiles.resolve` returns for a root-relative link when there is no root dir."""

ALWAYS_THERE = frozenset({"", "top"})

AnchorReader = Callable[[Path], "frozenset[str] | None"]


def split_fragment(link: str) -> tuple[str, str | None]:
    """`("guide.md", "intro")` for `guide.md#intro`; the fragment is None without a `#`."""
    path, hash_mark, fragment = link.partition("#")
    return path, (fragment if hash_mark else None)


class LocalFiles:
    """Resolves and checks the local links of a run's documents.

    Args:
        root_dir: where root-relative links resolve (`--root-dir`); None leaves them
            unchecked.
        read_anchors: the anchors of a Markdown or HTML file; None when it has none that can
            be known (another type, unreadable, not UTF-8).
    """

    def __init__(self, root_dir: str | None, read_anchors: AnchorReader) -> None:
        self._root = os.path.abspath(root_dir) if root_dir is not None else None
        self._read_anchors = read_anchors
        self._anchors: dict[str, frozenset[str] | None] = {}

    def resolve(self, link: str, document: str) -> LocalLink | str:
        """The file a link of `document` names, or `ROOT_RELATIVE` when it cannot be known."""
        written, fragment = split_fragment(link)
        written = written.partition("?")[0]
        if fragment is not None:
            fragment = unquote(fragment)
        if not written:
            return LocalLink(os.path.abspath(document), fragment)  # "#intro": the document
        path = unquote(written)
        if path.startswith("/"):
            if self._root is None:
                return ROOT_RELATIVE
            resolved = os.path.join(self._root, path.lstrip("/"))
        else:
            resolved = os.path.join(os.path.dirname(os.path.abspath(document)), path)
        return LocalLink(os.path.normpath(resolved), fragment)

    def check(self, target: Target) -> Result:
        """The result of a local link: OK, `missing` or `fragment`."""
        local = target.local
        assert local is not None
        start = time.monotonic()
        error, kind = self._problem(local)
        return Result(
            url=target.url,
            source=target.source,
            line=target.line,
            outcome=Outcome.OK if kind is None else Outcome.FAIL,
            elapsed=time.monotonic() - start,
            error=error,
            kind=kind,
            local=True,
        )

    def _problem(self, local: LocalLink) -> tuple[str | None, Kind | None]:
        path = local.path
        if not os.path.exists(path):
            source = _markdown_source(path)
            if source is None:
                return f"file not found: {_shown(path)}", Kind.MISSING
            path = source
        fragment = local.fragment
        if fragment is None or fragment in ALWAYS_THERE or os.path.isdir(path):
            return None, None
        anchors = self.anchors(path)
        if anchors is None or fragment in anchors:
            return None, None
        from ._extract import document_type  # link checking only: not at start-up

        if fragment.lower() in anchors and document_type(path) == "markdown":
            # GitHub finds a heading's anchor whatever the case of the link (#Options for
            # "## Options"); its slugs are lower-case.
            return None, None
        return f"no anchor #{fragment} in {_shown(path)}", Kind.FRAGMENT

    def remember(self, path: str, anchors: frozenset[str] | None) -> None:
        """Keep the anchors of a document already parsed (one that is being checked)."""
        self._anchors[path] = anchors

    def anchors(self, path: str) -> frozenset[str] | None:
        """The anchors of the document at `path`, read once."""
        if path not in self._anchors:
            self._anchors[path] = self._read_anchors(Path(path))
        return self._anchors[path]


def _markdown_source(path: str) -> str | None:
    """For a missing `name.html`, the `name.md` beside it, if there is one.

    Static site generators (mdBook, MkDocs, Jekyll, Hugo, Sphinx with MyST) turn `name.md`
    into `name.html`, and their sources link to the page they will become: in the source
    tree the link stands for the Markdown file, fragments included.
    """
    stem, extension = os.path.splitext(path)
    if extension.lower() not in (".html", ".htm"):
        return None
    for suffix in (".md", ".markdown", ".mdx"):
        if os.path.isfile(stem + suffix):
            return stem + suffix
    return None


def _shown(path: str) -> str:
    """A path as a report shows it: relative to the working directory when under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
