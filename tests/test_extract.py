"""Link extraction from Markdown, HTML and plain text: which links are found, and on which line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fetchpool._extract import (
    Link,
    document_type,
    extract_html,
    extract_links,
    extract_markdown,
    extract_text,
)

DATA = Path(__file__).parent / "data"
BASE = "http://127.0.0.1:9"


def urls(links: list[Link]) -> list[str]:
    return [link.url for link in links]


def places(links: list[Link]) -> list[tuple[int, str]]:
    return [(link.line, link.url) for link in links]


# -- document types -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("README.md", "markdown"),
        ("docs/Guide.MARKDOWN", "markdown"),
        ("index.html", "html"),
        ("old/page.HTM", "html"),
        ("notes.txt", "text"),
        ("Makefile", "text"),
        ("-", "text"),
    ],
)
def test_document_type_is_chosen_by_extension_and_stdin_is_text(name: str, expected: str) -> None:
    assert document_type(name) == expected


# -- Markdown -----------------------------------------------------------------------------


def test_markdown_inline_links_and_images_are_found_on_their_lines() -> None:
    text = '# T\n\nSee [a](http://h/a) and\n![img](https://h/img.png "title").\n'
    assert places(extract_markdown(text)) == [(3, "http://h/a"), (4, "https://h/img.png")]


def test_markdown_reference_link_is_reported_once_at_its_definition_line() -> None:
    text = "Use [one][r] and [two][r] and [r].\n\nMore text.\n\n[r]: http://h/ref\n"
    assert places(extract_markdown(text)) == [(5, "http://h/ref")]


def test_markdown_reference_definition_inside_a_list_keeps_its_line() -> None:
    text = "- item\n\n  [r]: http://h/ref\n- [use][r]\n"
    assert places(extract_markdown(text)) == [(3, "http://h/ref")]


def test_markdown_autolinks_are_found() -> None:
    assert places(extract_markdown("x\ny <http://h/auto> z\n")) == [(2, "http://h/auto")]


def test_markdown_bare_urls_are_found_without_trailing_punctuation() -> None:
    text = "First http://h/a, then (http://h/b). Done: http://h/c!\n"
    assert urls(extract_markdown(text)) == ["http://h/a", "http://h/b", "http://h/c"]


def test_markdown_code_spans_are_not_checked() -> None:
    assert extract_markdown("Run `curl http://h/code` now.\n") == []


def test_markdown_fenced_code_blocks_are_not_checked() -> None:
    text = "```sh\ncurl http://h/fence\n```\n\n~~~\n[x](http://h/tilde)\n~~~\n"
    assert extract_markdown(text) == []


def test_markdown_indented_code_blocks_are_not_checked() -> None:
    assert extract_markdown("Text.\n\n    curl http://h/indented\n") == []


def test_markdown_line_numbers_count_soft_breaks_within_a_paragraph() -> None:
    text = "one\ntwo [a](http://h/a)\nthree\nfour http://h/b\n"
    assert places(extract_markdown(text)) == [(2, "http://h/a"), (4, "http://h/b")]


def test_markdown_line_numbers_survive_code_spans_and_titles_that_span_lines() -> None:
    text = (
        "a `code\n"
        'over lines` then [x](http://h/x "a title\n'
        'over lines") and\n'
        "![alt\n"
        "text](http://h/img)\n"
        "http://h/last\n"
    )
    assert places(extract_markdown(text)) == [
        (2, "http://h/x"),
        (4, "http://h/img"),
        (6, "http://h/last"),
    ]


def test_markdown_raw_html_links_are_found_with_their_lines() -> None:
    text = (
        'Inline <a href="http://h/inline">x</a> here.\n'
        "\n"
        "<div>\n"
        '<!-- <a href="http://h/commented"> -->\n'
        '<img src="http://h/block">\n'
        "</div>\n"
    )
    assert places(extract_markdown(text)) == [(1, "http://h/inline"), (5, "http://h/block")]


def test_markdown_links_in_tables_and_quotes_are_found() -> None:
    text = "> quoted [q](http://h/q)\n\n| a | b |\n|---|---|\n| [t](http://h/t) | x |\n"
    assert places(extract_markdown(text)) == [(1, "http://h/q"), (5, "http://h/t")]


def test_markdown_link_text_that_looks_like_a_url_is_not_a_second_link() -> None:
    assert urls(extract_markdown("[http://h/label](http://h/target)\n")) == ["http://h/target"]


def test_markdown_destination_is_kept_as_written() -> None:
    text = "[x](http://h/caf\u00e9?q=a&amp;b) and [y](<http://h/a b>)\n"
    assert urls(extract_markdown(text)) == ["http://h/caf\u00e9?q=a&b", "http://h/a b"]


def test_markdown_mailto_relative_fragment_and_other_schemes_are_ignored() -> None:
    text = (
        "[m](mailto:a@h) <mailto:b@h> [r](docs/x.md) [abs](/x) [f](#part) [ftp](ftp://h/f)\n"
        "[j](javascript:alert(1)) mailto:c@h\n"
    )
    assert extract_markdown(text) == []


# -- HTML ---------------------------------------------------------------------------------


def test_html_href_and_src_of_any_tag_are_found_on_their_lines() -> None:
    text = (
        "<html>\n"
        '<link href="http://h/style.css">\n'
        "<p><a href='https://h/page'>x</a><script src=\"http://h/app.js\"></script>\n"
        "<img\n"
        '  alt="spread"\n'
        '  src="http://h/img" />\n'
    )
    assert places(extract_html(text)) == [
        (2, "http://h/style.css"),
        (3, "https://h/page"),
        (3, "http://h/app.js"),
        (6, "http://h/img"),
    ]


def test_html_links_inside_comments_are_not_checked() -> None:
    text = '<p>\n<!-- <a href="http://h/old">old</a>\n  -->\n<a href="http://h/new">new</a>\n'
    assert places(extract_html(text)) == [(4, "http://h/new")]


def test_html_srcset_candidates_are_found() -> None:
    text = '<img srcset="http://h/a.png 1x, http://h/b.png 2x">'
    assert urls(extract_html(text)) == ["http://h/a.png", "http://h/b.png"]


def test_html_character_references_in_attributes_are_decoded() -> None:
    assert urls(extract_html('<a href="http://h/?a=1&amp;b=2">')) == ["http://h/?a=1&b=2"]


def test_html_mailto_relative_and_fragment_links_are_ignored() -> None:
    text = '<a href="mailto:x@h"></a><a href="#top"></a><a href="page.html"></a><a href="/abs">'
    assert extract_html(text) == []


def test_html_text_content_is_not_scanned_for_urls() -> None:
    assert extract_html("<p>see http://h/in-text</p>") == []


# -- plain text ---------------------------------------------------------------------------


def test_text_bare_urls_are_found_on_their_lines() -> None:
    text = "no url\r\nhttp://h/a and https://h/b\n\nhttp://h/c\n"
    assert places(extract_text(text)) == [(2, "http://h/a"), (2, "https://h/b"), (4, "http://h/c")]


@pytest.mark.parametrize(
    ("written", "url"),
    [
        ("See http://h/a.", "http://h/a"),
        ("See http://h/a, and", "http://h/a"),
        ("Go: http://h/a; then", "http://h/a"),
        ("Really http://h/a?!", "http://h/a"),
        ("Quoted 'http://h/a'", "http://h/a"),
        ('Quoted "http://h/a"', "http://h/a"),
        ("(see http://h/a)", "http://h/a"),
        ("(see http://h/a).", "http://h/a"),
        ("[http://h/a]", "http://h/a"),
        ("<http://h/a>", "http://h/a"),
        ("query http://h/a?x=1&y=2.", "http://h/a?x=1&y=2"),
    ],
)
def test_text_bare_urls_lose_trailing_punctuation_and_unbalanced_closers(
    written: str, url: str
) -> None:
    assert urls(extract_text(written)) == [url]


def test_text_bare_urls_keep_balanced_parentheses() -> None:
    text = "https://en.wikipedia.org/wiki/Foo_(bar) and (https://h/x_(y)), done"
    assert urls(extract_text(text)) == [
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "https://h/x_(y)",
    ]


def test_text_other_schemes_are_ignored() -> None:
    assert extract_text("mailto:a@h ftp://h/f file:///etc/passwd http:// https:///path") == []


# -- the fixture docs tree ----------------------------------------------------------------


def _expected_fixture_places() -> list[tuple[str, int, str]]:
    rows = []
    for line in (DATA / "docs-expected.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, number, url, _status = line.split("\t")
            rows.append((name, int(number), url.replace("{BASE}", BASE)))
    return rows


def test_fixture_docs_yield_exactly_the_listed_links_at_the_listed_lines() -> None:
    found = []
    for path in sorted((DATA / "docs").iterdir()):
        text = path.read_text(encoding="utf-8").replace("{BASE}", BASE)
        links = extract_links(text, document_type(path.name))
        found += [(path.name, link.line, link.url) for link in links]
    assert found == _expected_fixture_places()


def test_markdown_without_markdown_it_is_a_usage_error_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fetchpool._extract as extract
    from fetchpool._errors import UsageError

    monkeypatch.setattr(extract, "_parser", None)
    monkeypatch.setitem(sys.modules, "markdown_it", None)
    with pytest.raises(UsageError, match=r"pip install 'fetchpool\[extract\]'"):
        extract_markdown("[a](http://h/a)")
