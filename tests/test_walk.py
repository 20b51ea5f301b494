"""Directory inputs: the documents `walk_documents` finds are the ones git itself lists.

The differential test builds a work tree with tricky `.gitignore` rules (negation, anchored
and `**` patterns, directory-only patterns, a nested `.gitignore` that overrides its parent)
and compares the walk with `git ls-files --others --exclude-standard`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fetchpool._walk import DOCUMENT_SUFFIXES, walk_documents

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

FILES = {
    ".gitignore": "build/\n/top-only.md\n**/generated/*.md\n*.tmp.md\n!keep.tmp.md\nlogs\n",
    "README.md": "",
    "top-only.md": "",
    "docs/top-only.md": "",
    "docs/a.md": "",
    "docs/b.mdx": "",
    "docs/page.HTML": "",
    "docs/notes.txt": "",
    "docs/image.png": "",
    "docs/draft.tmp.md": "",
    "docs/keep.tmp.md": "",
    "docs/generated/x.md": "",
    "docs/deep/generated/y.md": "",
    "docs/build/z.md": "",
    "build/w.md": "",
    "logs/l.md": "",
    "docs/logs": "not a directory: a file named logs is ignored too\n",
    "docs/sub/.gitignore": "*.md\n!wanted.md\n",
    "docs/sub/wanted.md": "",
    "docs/sub/unwanted.md": "",
    "docs/sub/page.html": "",
    ".github/workflow.md": "",
    "docs/.hidden/h.md": "",
}


def test_a_walk_finds_exactly_the_documents_git_lists(tmp_path: Path) -> None:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    documents = {
        name
        for name in listed
        if os.path.splitext(name)[1].lower() in DOCUMENT_SUFFIXES
        and not any(part.startswith(".") for part in name.split("/")[:-1])
    }
    walked = {path.relative_to(tmp_path).as_posix() for path in walk_documents(tmp_path)}
    assert walked == documents
    assert {"README.md", "docs/a.md", "docs/keep.tmp.md", "docs/sub/wanted.md"} <= walked


def test_gitignore_files_above_the_walked_directory_count_up_to_the_work_tree_root(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("docs/_build/\n")
    (tmp_path / "docs" / "_build").mkdir(parents=True)
    (tmp_path / "docs" / "_build" / "x.md").write_text("")
    (tmp_path / "docs" / "a.md").write_text("")
    walked = [path.name for path in walk_documents(tmp_path / "docs")]
    assert walked == ["a.md"]


def test_outside_a_work_tree_only_the_trees_own_gitignore_files_count(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.md\n")  # above the walk, and no .git anywhere
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("")
    assert [path.name for path in walk_documents(tmp_path / "docs")] == ["a.md"]
