"""Link checking of a docs repository, end to end: directories, local links, fragments,
page URLs, `--dump`, `--root-dir`, `--check-fragments`, decoding, and what GitHub shows.

Every test builds its docs tree in a temporary directory and checks it with the real CLI;
remote links and pages go to the suite's local HTTP server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from clihelpers import FETCHPOOL, cli_env, parse_jsonl, parse_summary, run_fetchpool
from httpserver import HTTPTestServer


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative path → text or bytes) under `root`; return `root`."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def check(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]]]:
    done = run_fetchpool(
        "--extract", "--format", "jsonl", "--retries", "0", *args, cwd=cwd, env=env
    )
    return done, parse_jsonl(done.stdout)


def places(records: list[dict[str, Any]]) -> set[tuple[str, int, str, str, str | None]]:
    return {(r["source"], r["line"], r["url"], r["outcome"], r["kind"]) for r in records}


@pytest.fixture
def repo(tmp_path: Path, server: HTTPTestServer) -> Path:
    """A small docs repository: nested Markdown and HTML, a .gitignore, hidden and ignored
    directories, broken local links and anchors."""
    base = server.base
    return tree(
        tmp_path / "repo",
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".gitignore": "_build/\n*.tmp.md\n",
            "docs/index.md": (
                "# Welcome\n"
                "\n"
                "## Getting started\n"
                "\n"
                "[guide](guide/usage.md)\n"
                "[gone](guide/gone.md)\n"
                "[anchor](guide/usage.md#install-it)\n"
                "[bad anchor](guide/usage.md#nosuch)\n"
                "[here](#getting-started)\n"
                "[not here](#nowhere)\n"
                "[top](#top) [hash](#)\n"
                "[dir](guide/)\n"
                "[page](page.html#section-2)\n"
                "[page bad](page.html#section-9)\n"
                "[root](/docs/index.md)\n"
                f"[remote]({base}/ok/remote)\n"
                "[mail](mailto:docs@example.org)\n"
            ),
            "docs/guide/usage.md": (
                "# Usage\n\n## Install it\n\n[back](../index.md#welcome)\n"
                f"[remote again]({base}/ok/remote)\n"
            ),
            "docs/page.html": (
                '<html><body><h2 id="section-2">S</h2>\n<a name="old">x</a>\n'
                '<a href="index.md">home</a>\n<a href="missing.html">m</a>\n</body></html>\n'
            ),
            "docs/.hidden/secret.md": "[x](nothere.md)\n",
            "docs/_build/out.md": "[x](nothere.md)\n",
            "docs/draft.tmp.md": "[x](nothere.md)\n",
            "docs/image.png": b"\x89PNG\r\n",
        },
    )


def test_a_directory_is_walked_for_documents_skipping_hidden_and_gitignored(repo: Path) -> None:
    done, records = check(repo, "docs")
    sources = {r["source"] for r in records}
    assert sources == {"docs/index.md", "docs/guide/usage.md", "docs/page.html"}, sources
    assert done.returncode == 1


def test_a_missing_local_file_is_a_fail_of_kind_missing_with_the_link_as_written(
    repo: Path,
) -> None:
    _, records = check(repo, "docs")
    gone = [r for r in records if r["url"] == "guide/gone.md"]
    assert len(gone) == 1
    assert (gone[0]["outcome"], gone[0]["kind"], gone[0]["status"]) == ("fail", "missing", None)
    assert (gone[0]["source"], gone[0]["line"]) == ("docs/index.md", 6)
    missing_html = [r for r in records if r["url"] == "missing.html"]
    assert [(r["kind"], r["source"], r["line"]) for r in missing_html] == [
        ("missing", "docs/page.html", 4)
    ]


def test_existing_local_files_and_directories_are_ok(repo: Path) -> None:
    _, records = check(repo, "docs")
    ok = {r["url"] for r in records if r["outcome"] == "ok"}
    assert {"guide/usage.md", "guide/", "index.md", "../index.md#welcome"} <= ok


def test_fragments_of_local_documents_are_checked_against_slugs_and_html_anchors(
    repo: Path,
) -> None:
    _, records = check(repo, "docs")
    by_url = {r["url"]: r for r in records}
    for good in (
        "guide/usage.md#install-it",
        "#getting-started",
        "#top",
        "#",
        "page.html#section-2",
    ):
        assert by_url[good]["outcome"] == "ok", by_url[good]
    for bad in ("guide/usage.md#nosuch", "#nowhere", "page.html#section-9"):
        assert (by_url[bad]["outcome"], by_url[bad]["kind"]) == ("fail", "fragment"), bad
    assert "nosuch" in by_url["guide/usage.md#nosuch"]["error"]


def test_root_relative_links_are_counted_not_checked_without_root_dir(repo: Path) -> None:
    done, records = check(repo, "docs")
    assert "/docs/index.md" not in {r["url"] for r in records}
    assert b"1 root-relative (give --root-dir" in done.stderr


def test_root_relative_links_resolve_under_root_dir(repo: Path) -> None:
    _, records = check(repo, "docs", "--root-dir", ".")
    assert [(r["url"], r["outcome"]) for r in records if r["url"] == "/docs/index.md"] == [
        ("/docs/index.md", "ok")
    ]
    (repo / "elsewhere").mkdir()
    _, records = check(repo, "docs", "--root-dir", "elsewhere")
    assert [r["kind"] for r in records if r["url"] == "/docs/index.md"] == ["missing"]


def test_root_dir_that_is_not_a_directory_is_a_usage_error(repo: Path) -> None:
    done, _ = check(repo, "docs", "--root-dir", "nothere")
    assert done.returncode == 2
    assert b"--root-dir" in done.stderr


def test_same_remote_url_is_fetched_once_and_reported_at_every_place(
    repo: Path, server: HTTPTestServer
) -> None:
    server.reset_stats()
    _, records = check(repo, "docs")
    remote = [(r["source"], r["line"]) for r in records if r["url"].endswith("/ok/remote")]
    assert sorted(remote) == [("docs/guide/usage.md", 6), ("docs/index.md", 16)]
    assert server.hits("/ok/remote") == 1


def test_other_schemes_are_counted_in_the_summary_not_checked(repo: Path) -> None:
    done, records = check(repo, "docs")
    assert not [r for r in records if r["url"].startswith("mailto:")]
    assert b"1 other schemes" in done.stderr


def test_a_document_that_is_not_utf8_is_skipped_with_one_warning(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {"docs/latin.md": "caf\xe9 [x](gone.md)\n".encode("latin-1"), "docs/ok.md": "[x](ok.md)\n"},
    )
    done, records = check(root, "docs")
    warnings = [line for line in done.stderr.decode().splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "docs/latin.md" in warnings[0]
    assert "UTF-8" in warnings[0]
    assert {r["source"] for r in records} == {"docs/ok.md"}
    assert b"1 document not UTF-8" in done.stderr


def test_a_utf16_document_is_decoded_by_its_bom(tmp_path: Path) -> None:
    text = "# T\n\n[gone](gone.md)\n"
    root = tree(tmp_path, {"u16.md": b"\xff\xfe" + text.encode("utf-16-le")})
    _, records = check(root, "u16.md")
    assert [(r["url"], r["line"], r["kind"]) for r in records] == [("gone.md", 3, "missing")]


def test_dump_lists_every_place_after_filters_and_fetches_nothing(
    repo: Path, server: HTTPTestServer
) -> None:
    server.reset_stats()
    done = run_fetchpool("--extract", "--dump", "docs", "--exclude", "gone", cwd=repo)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.decode().splitlines()]
    assert all(len(row) == 3 for row in rows), rows
    assert ["guide/usage.md", "docs/index.md", "5"] in rows
    assert [f"{server.base}/ok/remote", "docs/guide/usage.md", "6"] in rows
    assert [f"{server.base}/ok/remote", "docs/index.md", "16"] in rows  # every place
    assert not [row for row in rows if "gone" in row[0]]
    assert server.requests == []


def test_dump_without_extract_is_a_usage_error(tmp_path: Path) -> None:
    done = run_fetchpool("--dump", "-", input=b"http://127.0.0.1:1/\n")
    assert done.returncode == 2
    assert b"--dump needs --extract" in done.stderr


def test_a_page_url_is_fetched_and_its_links_checked_at_their_lines(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    server.documents["index.html"] = (
        "text/html; charset=utf-8",
        b"<html><body>\n<a href='/ok/one'>1</a>\n<a href='../status/404/two'>2</a>\n"
        b"<a href='mailto:x@y.z'>m</a>\n</body></html>\n",
    )
    page = f"{server.base}/doc/index.html"
    done, records = check(tmp_path, page)
    got = places(records)
    assert (f"{server.base}/ok/one", 2) in {(u, line) for _, line, u, _, _ in got}
    assert (page, 3, f"{server.base}/status/404/two", "fail", "http") in got
    assert ("<args>", 1, page, "ok", None) in got
    assert done.returncode == 1


def test_check_fragments_looks_up_anchors_of_remote_pages_once_per_page(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    server.documents["target.html"] = (
        "text/html",
        b'<html><body><h1 id="here">x</h1><a name="legacy"></a></body></html>',
    )
    target = f"{server.base}/doc/target.html"
    root = tree(
        tmp_path,
        {
            "a.md": f"[1]({target}#here)\n[2]({target}#legacy)\n[3]({target}#gone)\n"
            f"[4]({server.base}/ok/plain#anything)\n"
        },
    )
    _, records = check(root, "a.md", "--check-fragments")
    outcome = {r["url"]: (r["outcome"], r["kind"]) for r in records}
    assert outcome[f"{target}#here"] == ("ok", None)
    assert outcome[f"{target}#legacy"] == ("ok", None)
    assert outcome[f"{target}#gone"] == ("fail", "fragment")
    assert outcome[f"{server.base}/ok/plain#anything"] == ("ok", None)  # not HTML
    assert server.hits("/doc/target.html") == 1
    _, records = check(root, "a.md")
    assert all(r["outcome"] == "ok" for r in records)  # without the flag, not looked up


def test_github_format_ends_with_a_totals_line_and_writes_the_step_summary(
    repo: Path,
) -> None:
    summary = repo / "summary.md"
    done = run_fetchpool(
        "--extract",
        "--format",
        "github",
        "docs",
        cwd=repo,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    lines = done.stdout.decode().splitlines()
    errors = [line for line in lines if line.startswith("::error file=")]
    assert len(errors) == 5, lines
    assert lines[-1].startswith("::error title=fetchpool link check::")
    assert "5 failing link places" in lines[-1]
    assert "missing 2" in lines[-1]
    report = summary.read_text()
    assert "docs/index.md:6" in report
    assert "guide/gone.md" in report
    assert report.index("docs/index.md") < report.index("docs/page.html")


def test_github_format_prints_no_totals_when_all_is_ok(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.md": "[self](a.md)\n"})
    done = run_fetchpool("--extract", "--format", "github", "a.md", cwd=root)
    assert done.returncode == 0
    assert done.stdout == b""


def test_summary_counts_local_links_with_the_rest(repo: Path) -> None:
    done, records = check(repo, "docs")
    summary = parse_summary(done.stderr)
    assert summary.done == len(records)
    assert summary.failed == sum(r["outcome"] == "fail" for r in records)


def test_templates_and_preconnect_origins_are_counted_not_checked(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "t.html": (
                '<link rel="preconnect" href="https://fonts.example.invalid">\n'
                '<link rel="dns-prefetch" href="https://cdn.example.invalid">\n'
                '<a href="https://github.com/{{ author }}">a</a>\n'
                '<a href="${base}/x">b</a>\n'
            ),
        },
    )
    done, records = check(root, "t.html")
    assert records == []
    assert done.returncode == 0
    assert b"2 templates" in done.stderr
    assert b"2 preconnect origins" in done.stderr


def test_mdx_files_are_read_as_markdown_and_code_blocks_are_not_links(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "docs/a.mdx": (
                "import Chart from './chart.js'\n"
                "\n"
                "# Title\n"
                "\n"
                "```js\n"
                "fetch('https://in-code.example.invalid/')\n"
                "```\n"
                "\n"
                "[gone](gone.mdx)\n"
            ),
        },
    )
    _, records = check(root, "docs")
    assert [(r["url"], r["line"], r["kind"]) for r in records] == [("gone.mdx", 9, "missing")]


def test_dump_of_a_page_url_fetches_the_page_and_none_of_its_links(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    server.documents["links.html"] = (
        "text/html",
        b"<html><body>\n<a href='/ok/never-fetched'>x</a>\n</body></html>\n",
    )
    page = f"{server.base}/doc/links.html"
    done = run_fetchpool("--extract", "--dump", page, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"{server.base}/ok/never-fetched\t{page}\t2\n"
    assert server.hits("/doc/links.html") == 1
    assert server.hits("/ok/never-fetched") == 0


def test_exclude_applies_to_local_links_too(repo: Path) -> None:
    _, records = check(repo, "docs", "--exclude", r"gone\.md")
    assert "guide/gone.md" not in {r["url"] for r in records}


def test_a_markdown_heading_anchor_is_found_whatever_the_case_of_the_link(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "a.md": "## Options\n\n[o](#Options)\n[p](page.html#Section)\n",
            "page.html": '<h2 id="section">s</h2>\n',
        },
    )
    _, records = check(root, "a.md")
    outcome = {r["url"]: (r["outcome"], r["kind"]) for r in records}
    assert outcome["#Options"] == ("ok", None)
    assert outcome["page.html#Section"] == ("fail", "fragment")  # HTML ids are exact


def test_a_protocol_relative_link_in_a_local_document_is_checked_over_https(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path, {"a.md": "[cdn](//127.0.0.1:1/lib.js)\n"})
    done = run_fetchpool("--extract", "--dump", "a.md", cwd=root)
    assert done.stdout.decode() == "https://127.0.0.1:1/lib.js\ta.md\t1\n"


def test_a_link_to_the_html_page_of_a_markdown_source_is_checked_against_the_source(
    tmp_path: Path,
) -> None:
    root = tree(
        tmp_path,
        {
            "src/a.md": "[b](b.html#usage)\n[b bad](b.html#nosuch)\n[c](c.html)\n",
            "src/b.md": "# B\n\n## Usage\n",
        },
    )
    _, records = check(root, "src")
    outcome = {r["url"]: (r["outcome"], r["kind"]) for r in records}
    assert outcome == {
        "b.html#usage": ("ok", None),
        "b.html#nosuch": ("fail", "fragment"),
        "c.html": ("fail", "missing"),
    }


def test_dump_warns_about_a_page_it_cannot_read_and_still_exits_0(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    page = f"{server.base}/status/404/no-page"
    done = run_fetchpool("--extract", "--dump", page, cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == b""
    (warning,) = done.stderr.decode().splitlines()
    assert warning.startswith("fetchpool: warning: cannot read page ")
    assert "HTTP 404" in warning


def test_dump_into_a_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    links = "\n".join(f"[l{k}](gone{k}.md)" for k in range(20_000))
    root = tree(tmp_path, {"many.md": links + "\n"})
    done = subprocess.run(
        f"{' '.join(map(str, FETCHPOOL))} --extract --dump many.md | head -1",
        shell=True,
        cwd=root,
        capture_output=True,
        env=cli_env({}),
        timeout=60,
        check=False,
    )
    assert done.stdout == b"gone0.md\tmany.md\t1\n"
    assert done.stderr == b""  # no traceback, nothing at all
