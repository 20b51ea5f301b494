"""Link extraction from Markdown, HTML and plain text: which links are found, and on which line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fetchpool._extract import (
    Document,
    Link,
    document_type,
    extract_html,
    extract_links,
    extract_markdown,
    extract_text,
    github_slug,
    parse_document,
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
        ("docs/intro.mdx", "markdown"),
        ("a.mkd", "markdown"),
        ("a.mdown", "markdown"),
        ("report.qmd", "markdown"),
        ("analysis.Rmd", "markdown"),
        ("analysis.RMD", "markdown"),
        ("index.html", "html"),
        ("old/page.HTM", "html"),
        ("page.xhtml", "html"),
        ("notes.md.txt", "text"),
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
        (5, "http://h/img"),  # the line of the URL, not of "!["
        (6, "http://h/last"),
    ]


def test_markdown_link_whose_text_runs_over_lines_is_reported_where_its_url_stands() -> None:
    text = (
        "A [link whose text\n"
        "runs over `two\n"
        "lines`](http://h/a) then\n"
        "[b](\n"
        "  http://h/b) and [c\n"
        "](<http://h/c d>) and [ref\n"
        "text][r]\n"
        "\n"
        "[r]: http://h/r\n"
    )
    assert places(extract_markdown(text)) == [
        (3, "http://h/a"),
        (5, "http://h/b"),
        (6, "http://h/c%20d"),
        (9, "http://h/r"),
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


def test_markdown_prose_without_markup_gives_its_bare_urls_on_their_lines() -> None:
    text = "Plain prose http://h/a\nand more: http://h/b.\n  Indented http://h/c\n\n# T\n"
    assert places(extract_markdown(text)) == [
        (1, "http://h/a"),
        (2, "http://h/b"),
        (3, "http://h/c"),
    ]


def test_markdown_bare_urls_with_underscores_and_entities_are_read_as_the_parser_reads_them() -> (
    None
):
    text = "See http://h/a_b_c and\nhttp://h/?a=1&amp;b=2 and *http://h/em*\n"
    assert places(extract_markdown(text)) == [
        (1, "http://h/a_b_c"),
        (2, "http://h/?a=1&b=2"),
        (2, "http://h/em"),
    ]


def test_markdown_link_text_that_looks_like_a_url_is_not_a_second_link() -> None:
    assert urls(extract_markdown("[http://h/label](http://h/target)\n")) == ["http://h/target"]


def test_markdown_destination_is_kept_as_written_but_a_space_in_angle_brackets_is_20() -> None:
    # <http://h/a b> is legal CommonMark; a browser requests it as a%20b, and a raw space
    # would make the URL invalid to fetch.
    text = "[x](http://h/caf\u00e9?q=a&amp;b) and [y](<http://h/a b\tc>)\n"
    assert urls(extract_markdown(text)) == ["http://h/caf\u00e9?q=a&b", "http://h/a%20b%09c"]


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


# -- parse_document: local links, skipped links, anchors -----------------------------------


def links_of(text: str, doc_type: str = "markdown", **kwargs: bool) -> list[tuple[int, str]]:
    return places(parse_document(text, doc_type, **kwargs).links)  # type: ignore[arg-type]


def test_markdown_local_links_are_given_as_written_in_document_order() -> None:
    text = (
        "[a](guide.md) [b](../img/a.png) [c](sub/)\n"
        "[d](guide.md#intro) [e](/docs/x) [f](#intro) [g](http://h/g) [h](?q=1)\n"
    )
    assert links_of(text) == [
        (1, "guide.md"),
        (1, "../img/a.png"),
        (1, "sub/"),
        (2, "guide.md#intro"),
        (2, "/docs/x"),
        (2, "#intro"),
        (2, "http://h/g"),
        (2, "?q=1"),
    ]


def test_html_local_links_are_given_as_written_in_document_order() -> None:
    text = '<a href="guide.html#intro">a</a>\n<img src="../img/a.png"><a href="/docs/x">'
    assert links_of(text, "html") == [(1, "guide.html#intro"), (2, "../img/a.png"), (2, "/docs/x")]


def test_a_protocol_relative_link_is_a_link_given_as_written() -> None:
    assert links_of("[x](//cdn.h/x.js)\n") == [(1, "//cdn.h/x.js")]
    assert links_of('<script src="//cdn.h/x.js"></script>', "html") == [(1, "//cdn.h/x.js")]


def test_plain_text_documents_give_bare_http_urls_only() -> None:
    text = "see guide.md and /docs/x and #intro\nthen http://h/a mailto:x@h\n"
    document = parse_document(text, "text", want_anchors=True)
    assert places(document.links) == [(2, "http://h/a")]
    assert document.anchors == frozenset()


def test_other_schemes_are_not_links_and_are_counted_as_scheme() -> None:
    text = (
        "[m](mailto:a@h) <mailto:b@h> <c@h.org> [t](tel:+1555) [j](javascript:alert(1))\n"
        "[d](data:text/plain,hi) [f](ftp://h/f) [s](ssh://git@h/r) [ok](http://h/ok)\n"
    )
    document = parse_document(text, "markdown")
    assert places(document.links) == [(2, "http://h/ok")]
    assert document.skipped == {"scheme": 8}


def test_html_other_schemes_are_counted_as_scheme() -> None:
    text = '<a href="mailto:a@h"></a><a href="JavaScript:void(0)"></a><img src="data:x">'
    document = parse_document(text, "html")
    assert document.links == []
    assert document.skipped == {"scheme": 3}


@pytest.mark.parametrize(
    "written",
    [
        "https://github.com/{{author}}",
        "{{ site.baseurl }}/x",
        "/docs/{% link a.md %}",
        "https://h/${placeholder}/x",
        "<%= url %>",
        "{url}",
    ],
)
def test_html_links_with_a_template_placeholder_are_counted_not_checked(written: str) -> None:
    document = parse_document(f'<a href="{written}">x</a>', "html")
    assert document.links == []
    assert document.skipped == {"template": 1}


def test_markdown_links_with_a_template_placeholder_are_counted_not_checked() -> None:
    text = (
        "[a](https://github.com/{{author}}) ![b]({{site.baseurl}}/logo.png)\n"
        "bare https://h/${placeholder}/x and https://h/{{ x }} and [ok](http://h/ok)\n"
        '<a href="<%= url %>">erb</a>\n'
    )
    document = parse_document(text, "markdown")
    assert places(document.links) == [(2, "http://h/ok")]
    assert document.skipped == {"template": 5}


def test_text_urls_cut_short_by_a_template_are_counted_not_checked() -> None:
    document = parse_document("https://h/${x}/y https://h/{{ y }} http://h/ok\n", "text")
    assert places(document.links) == [(1, "http://h/ok")]
    assert document.skipped == {"template": 2}


def test_preconnect_and_dns_prefetch_origins_are_counted_not_checked() -> None:
    text = (
        '<link rel="preconnect" href="https://fonts.h">\n'
        '<link rel="dns-prefetch" href="//cdn.h">\n'
        '<link rel="Preconnect dns-prefetch" href="https://both.h">\n'
        '<link rel="stylesheet" href="https://h/site.css">\n'
    )
    for doc_type in ("html", "markdown"):
        document = parse_document(text, doc_type)
        assert places(document.links) == [(4, "https://h/site.css")]
        assert document.skipped == {"preconnect": 3}


def test_html_base_href_is_the_first_one_and_not_a_link() -> None:
    text = '<base href="https://h/docs/"><base href="https://other/"><a href="a.html">'
    document = parse_document(text, "html")
    assert document.base == "https://h/docs/"
    assert places(document.links) == [(1, "a.html")]
    assert parse_document("<p>", "html").base is None


def test_html_href_split_over_lines_is_found_at_the_line_of_the_url() -> None:
    text = '<p>\n<a class="x"\n   href="\n     https://h/split  ">x</a>\n'
    assert links_of(text, "html") == [(4, "https://h/split")]
    assert links_of("Text\n\n" + text) == [(6, "https://h/split")]


def test_html_anchors_are_ids_of_any_element_and_a_names() -> None:
    text = '<h1 id="intro">x</h1><div id="box"><a name="old"></a><p name="not-an-anchor">'
    document = parse_document(text, "html", want_anchors=True)
    assert set(document.anchors or ()) == {"intro", "box", "old"}


def test_anchors_are_none_unless_asked_for() -> None:
    assert parse_document('<a id="x">', "html").anchors is None
    assert parse_document("# Title\n", "markdown").anchors is None


def test_on_github_pages_user_content_ids_also_count_as_their_name() -> None:
    text = '<h2 id="user-content-install">x</h2><a name="user-content-old"></a><p id="plain">'
    document = parse_document(text, "html", want_anchors=True, github=True)
    assert set(document.anchors or ()) == {
        "user-content-install",
        "install",
        "user-content-old",
        "old",
        "plain",
    }
    plain = parse_document(text, "html", want_anchors=True)
    assert set(plain.anchors or ()) == {"user-content-install", "user-content-old", "plain"}


def test_html_links_and_anchors_inside_comments_do_not_count() -> None:
    text = '<!-- <a id="gone" href="gone.html"> -->\n<a href="here.html">'
    document = parse_document(text, "html", want_anchors=True)
    assert places(document.links) == [(2, "here.html")]
    assert document.anchors == frozenset()


# -- Markdown specifics ---------------------------------------------------------------------


def test_markdown_links_in_code_are_not_links_local_or_remote() -> None:
    text = (
        "Run `open guide.md` and `[x](other.md)`.\n\n"
        "```\n[y](fenced.md) http://h/fenced\n```\n\n"
        "    [z](indented.md)\n"
    )
    assert links_of(text) == []


def test_gfm_footnote_whose_body_is_a_link_is_found() -> None:
    text = (
        "A claim[^1] and another[^note].\n\n"
        "[^1]: [The source](https://h/source).\n"
        "[^note]: https://h/bare and <https://h/auto>\n"
    )
    assert links_of(text) == [(3, "https://h/source"), (4, "https://h/bare"), (4, "https://h/auto")]


def test_reference_definition_with_its_url_on_the_next_line_is_reported_where_the_url_is() -> None:
    text = "Use [x] and [y].\n\n[x]:\n  https://h/next-line\n[y]: https://h/same-line\n"
    assert links_of(text) == [(4, "https://h/next-line"), (5, "https://h/same-line")]


def test_reference_definition_in_a_quote_with_its_url_below_keeps_the_url_line() -> None:
    text = "> [x]:\n>   <https://h/quoted>\n> [x] here\n"
    assert links_of(text) == [(2, "https://h/quoted")]


def test_reference_definition_with_spaces_in_angle_brackets_is_given_with_20() -> None:
    assert links_of("[x]\n\n[x]: <https://h/a b>\n") == [(3, "https://h/a%20b")]


def test_reference_uses_are_not_repeated_and_local_definitions_are_links() -> None:
    text = "[a][r] [b][r] [r]\n\n[r]: guide.md#intro\n"
    assert links_of(text) == [(3, "guide.md#intro")]


def test_mdx_esm_lines_are_not_prose() -> None:
    text = (
        "import {Chart} from 'https://esm.h/chart.js'\n"
        "import 'https://esm.h/side-effect.js'\n"
        "export const meta = {\n"
        "  source: 'https://esm.h/meta',\n"
        "}\n"
        "\n"
        "# Title\n"
        "\n"
        "Prose http://h/prose\n"
        "\n"
        "export default function Layout() { return 'https://esm.h/layout' }\n"
    )
    assert links_of(text) == [(9, "http://h/prose")]


def test_mdx_fenced_code_is_still_code() -> None:
    text = "import x from './x.js'\n\n```js\nimport y from 'https://h/fenced'\n```\n"
    assert links_of(text, mdx=True) == []


def test_mdx_expressions_and_jsx_expression_attributes_are_not_urls() -> None:
    text = (
        "<Card href={'https://h/expression'} title=\"x\" />\n\n"
        "Text {props.url + 'https://h/in-expression'} and https://h/real.\n\n"
        '<Card href="https://h/literal" />\n'
    )
    assert links_of(text, mdx=True) == [(3, "https://h/real"), (5, "https://h/literal")]
    # Without mdx=..., an ESM block is what tells MDX from Markdown.
    with_esm = "import {Card} from './card.js'\n\n" + text
    assert links_of(with_esm) == [(5, "https://h/real"), (7, "https://h/literal")]


def test_markdown_without_esm_is_not_read_as_mdx() -> None:
    text = "```js\nimport x from 'y'\n```\n\n    indented http://h/code\n\n{see http://h/braces}\n"
    assert links_of(text) == [(7, "http://h/braces")]


def test_mdx_indented_lines_are_jsx_nesting_not_code() -> None:
    text = "<Tabs>\n\n    [inside](https://h/tab)\n\n</Tabs>\n"
    assert links_of(text, mdx=True) == [(3, "https://h/tab")]
    assert links_of(text, mdx=False) == []


def test_markdown_anchors_are_heading_slugs_explicit_ids_and_html_anchors() -> None:
    text = (
        "# Getting Started {#start}\n"
        "{#before}\n"
        "## Second *heading*\n"
        "\n"
        '<a id="raw-id"></a> and <a name="raw-name"></a>\n'
        "\n"
        '<div id="block-id">\n'
        "</div>\n"
    )
    document = parse_document(text, "markdown", want_anchors=True)
    assert set(document.anchors or ()) == {
        "getting-started-start",  # GitHub shows the braces
        "getting-started",
        "start",
        "before",
        "second-heading",
        "raw-id",
        "raw-name",
        "block-id",
    }


# GitHub's rendering of each heading's text (its anchor is "#" + the slug), from the
# github-slugger fixtures (generated from github.com's own output) and github.com pages.
GITHUB_HEADINGS = [
    ("heading with a - dash", "heading-with-a---dash"),
    ("heading with an _ underscore", "heading-with-an-_-underscore"),
    ("heading with a period.txt", "heading-with-a-periodtxt"),
    (
        "exchange.bind_headers(exchange, routing [, bindCallback])",
        "exchangebind_headersexchange-routing--bindcallback",
    ),
    ("bravoCharlieDelta", "bravocharliedelta"),
    ("apostrophe\u2019s should be trimmed", "apostrophes-should-be-trimmed"),
    ("What's new in 2.0?", "whats-new-in-20"),
    ("C++ & C# support", "c--c-support"),
    ("I \u2665 unicode", "i--unicode"),
    ("en\u2013dash", "endash"),
    ("\U0001f604 unicode emoji", "-unicode-emoji"),
    ("\U0001f604-\U0001f604 unicode emoji", "--unicode-emoji"),
    ("\U0001f604_\U0001f604 unicode emoji", "_-unicode-emoji"),
    (":smile: - a gemoji", "smile---a-gemoji"),
    (":ok_hand: Single", "ok_hand-single"),
    (
        "\u041f\u0440\u0438\u0432\u0435\u0442 non-latin \u4f60\u597d",
        "\u043f\u0440\u0438\u0432\u0435\u0442-non-latin-\u4f60\u597d",
    ),
    ("Caf\u00e9 d\u00e9j\u00e0 vu", "caf\u00e9-d\u00e9j\u00e0-vu"),
    ("\u2165 and \u2167", "\u2175-and-\u2177"),  # letter-numbers (Roman numerals) stay
    ("x\u00b2 and \u00bd", "x-and-"),  # other numbers go
    ("$100 \u20ac price", "100--price"),
    ("a\u200bb", "ab"),  # format characters go
    ("\u0905\u0928\u0941\u0935\u093e\u0926", "\u0905\u0928\u0941\u0935\u093e\u0926"),
    ("\u2764\ufe0f love", "\ufe0f-love"),  # the emoji goes, its variation selector stays
]


@pytest.mark.parametrize(("text", "slug"), GITHUB_HEADINGS)
def test_github_slug_matches_githubs_rendered_anchor(text: str, slug: str) -> None:
    assert github_slug(text) == slug


# Headings as written in Markdown, and the anchor GitHub gives each, in order.
GITHUB_MARKDOWN_HEADINGS = [
    ("# `parse_document()` API", ["parse_document-api"]),
    ("## [Links](https://h/x) and *emphasis* and **strong**", ["links-and-emphasis-and-strong"]),
    ("## The <code>html</code> tag", ["the-html-tag"]),
    ("## AT&amp;T &copy; 2024", ["att--2024"]),
    ("# &#x20;a", ["-a"]),
    ("# foo\n# foo\n# foo", ["foo", "foo-1", "foo-2"]),
    ("# foo-1\n# foo\n# foo", ["foo-1", "foo", "foo-2"]),
    ("# a\n# a-1\n# a", ["a", "a-1", "a-2"]),
    (
        "# echo\n# echo\n# echo 1\n# echo-1\n# echo",
        ["echo", "echo-1", "echo-1-1", "echo-1-2", "echo-2"],
    ),
    ("# Errors\n# Errors\n# Errors-1", ["errors", "errors-1", "errors-1-1"]),
    ("# \U0001f680 Launch\n## \U0001f680 Launch", ["-launch", "-launch-1"]),
]


@pytest.mark.parametrize(("markdown", "anchors"), GITHUB_MARKDOWN_HEADINGS)
def test_markdown_heading_anchors_are_githubs_with_repeats_numbered(
    markdown: str, anchors: list[str]
) -> None:
    document = parse_document(markdown + "\n", "markdown", want_anchors=True)
    assert set(document.anchors or ()) == set(anchors)


def test_html_anchors_in_markdown_do_not_number_heading_repeats() -> None:
    text = '<a id="install"></a>\n\n# Install\n'
    assert set(parse_document(text, "markdown", want_anchors=True).anchors or ()) == {"install"}


# -- big documents --------------------------------------------------------------------------


def test_a_long_markdown_document_parsed_in_stretches_gives_what_one_parse_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fetchpool._extract as extract

    section = (
        "# Part {n}\n\nSee [ref {n}][r{n}] and [next][r{m}] and http://h/bare/{n}.\n\n"
        "```\nhttp://h/fenced/{n}\n\nIn a fence after a blank line http://h/fenced-2/{n}\n```\n\n"
        "<!-- comment\n\nWith a blank line http://h/commented/{n}\n-->\n\n"
        "- item [local](guide.md#part-{n})\n\n  continued http://h/item/{n}\n\n"
        "[r{n}]: http://h/ref/{n}\n\n"
    )
    text = "".join(section.format(n=n, m=n + 1) for n in range(60))
    whole = parse_document(text, "markdown", want_anchors=True)
    monkeypatch.setattr(extract, "_STRETCH", 500)
    stretched = parse_document(text, "markdown", want_anchors=True)
    assert stretched.links == whole.links
    assert stretched.anchors == whole.anchors
    assert len(whole.links) == 60 * 4
    assert not any("fenced" in link.url or "commented" in link.url for link in whole.links)


# -- the fixture docs tree ----------------------------------------------------------------


def _expected_fixture_rows() -> list[tuple[str, int, str, str]]:
    rows = []
    for line in (DATA / "docs-expected.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, number, url, expected = line.split("\t")
            rows.append((name, int(number), url.replace("{BASE}", BASE), expected))
    return rows


def _fixture_documents() -> list[tuple[str, Document]]:
    documents = []
    for path in sorted((DATA / "docs").iterdir()):
        text = path.read_text(encoding="utf-8").replace("{BASE}", BASE)
        documents.append((path.name, parse_document(text, document_type(path.name))))
    return documents


def test_fixture_docs_yield_exactly_the_listed_links_at_the_listed_lines() -> None:
    found = [
        (name, link.line, link.url)
        for name, document in _fixture_documents()
        for link in document.links
    ]
    assert found == [(name, line, url) for name, line, url, _ in _expected_fixture_rows()]


def test_fixture_docs_http_links_are_the_listed_ones_with_a_status() -> None:
    found = []
    for path in sorted((DATA / "docs").iterdir()):
        text = path.read_text(encoding="utf-8").replace("{BASE}", BASE)
        links = extract_links(text, document_type(path.name))
        found += [(path.name, link.line, link.url) for link in links]
    expected = _expected_fixture_rows()
    assert found == [(name, line, url) for name, line, url, status in expected if status.isdigit()]


def test_fixture_docs_count_their_unchecked_links_by_reason() -> None:
    skipped = {name: dict(document.skipped) for name, document in _fixture_documents()}
    assert skipped == {
        "component.mdx": {},
        "extras.html": {"preconnect": 2, "template": 2, "scheme": 2},
        "extras.md": {"template": 5, "scheme": 5, "preconnect": 2},
        "guide.md": {"scheme": 3},
        "notes.txt": {},
        "page.html": {"scheme": 1},
    }


def test_markdown_without_markdown_it_is_a_usage_error_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fetchpool._extract as extract
    from fetchpool._errors import UsageError

    monkeypatch.setattr(extract, "_parser", None)
    monkeypatch.setitem(sys.modules, "markdown_it", None)
    with pytest.raises(UsageError, match=r"pip install 'fetchpool\[extract\]'"):
        extract_markdown("[a](http://h/a)")
