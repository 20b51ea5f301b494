"""Walk a directory for the documents whose links are checked, as git sees the tree.

Hidden directories (`.git`, `.github`, `.venv`, ...) are skipped, and so is every path that
a `.gitignore` ignores: the `.gitignore` files inside the tree, and those of its parent
directories up to the root of the git work tree it stands in. Matching follows git's rules
(negation, anchoring, `**`, directory-only patterns, a deeper file overriding a shallower
one) through `pathspec`, the gitignore matcher pip, black and many linters use, rather than
hand-written globbing.

Documents are the files whose extension is Markdown, HTML or plain text (`.txt`), in a
stable order: names sorted, a directory's files before its subdirectories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pathspec

from ._extract import HTML_SUFFIXES, MARKDOWN_SUFFIXES

__all__ = ["DOCUMENT_SUFFIXES", "walk_documents"]

DOCUMENT_SUFFIXES = frozenset((*MARKDOWN_SUFFIXES, *HTML_SUFFIXES, ".txt"))

_Rules = list[tuple[Path, pathspec.GitIgnoreSpec]]


def _read_gitignore(directory: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
    return spec if len(spec) else None


def _ancestor_rules(top: Path) -> _Rules:
    """The `.gitignore` files of `top`'s parents, up to the git work tree's root."""
    rules: _Rules = []
    for parent in top.parents:
        spec = _read_gitignore(parent)
        if spec is not None:
            rules.append((parent, spec))
        if (parent / ".git").exists():
            rules.reverse()  # shallowest first, as the walk appends deeper ones
            return rules
    return []  # not in a git work tree: only the tree's own .gitignore files count


def _ignored(path: Path, is_dir: bool, rules: _Rules) -> bool:
    """Whether the deepest `.gitignore` with an opinion on `path` ignores it."""
    for base, spec in reversed(rules):
        relative = path.relative_to(base).as_posix()
        if is_dir:
            relative += "/"
        decision = spec.check_file(relative).include
        if decision is not None:
            return decision
    return False


def walk_documents(top: str | os.PathLike[str]) -> Iterator[Path]:
    """The document files under `top`, hidden directories and git-ignored paths left out.

    Unreadable subdirectories are skipped silently, as `git ls-files` would not list them.
    """
    root = Path(os.path.abspath(top))
    rules = _ancestor_rules(root)
    if _ignored(root, True, rules):
        return
    yield from _walk(root, rules)


def _walk(directory: Path, rules: _Rules) -> Iterator[Path]:
    own = _read_gitignore(directory)
    if own is not None:
        rules = [*rules, (directory, own)]
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return
    subdirectories = []
    for entry in entries:
        path = directory / entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)  # as git: a linked directory is not walked
        except OSError:
            continue
        if is_dir:
            if not entry.name.startswith(".") and not _ignored(path, True, rules):
                subdirectories.append(path)
        elif os.path.splitext(entry.name)[1].lower() in DOCUMENT_SUFFIXES and not _ignored(
            path, False, rules
        ):
            yield path
    for subdirectory in subdirectories:
        yield from _walk(subdirectory, rules)
