"""End-to-end tests of the contract's "Invocation" promises on URL arguments and byte-order
marks (issue #15), each named after the contract line it checks."""

from __future__ import annotations

import codecs
import subprocess
from pathlib import Path

import pytest
from clihelpers import (
    parse_jsonl,
    read_lines_until,
    run_fetchpool,
    spawn_fetchpool,
    wait_exit,
    write_lines,
)
from httpserver import HTTPTestServer

from fetchpool._source import _Decoder, _line_text, _LineSplitter, count_targets, open_inputs

ENCODINGS = [
    pytest.param(codecs.BOM_UTF8, "utf-8", id="utf-8"),
    pytest.param(codecs.BOM_UTF16_LE, "utf-16-le", id="utf-16-le"),
    pytest.param(codecs.BOM_UTF16_BE, "utf-16-be", id="utf-16-be"),
    pytest.param(codecs.BOM_UTF32_LE, "utf-32-le", id="utf-32-le"),
    pytest.param(codecs.BOM_UTF32_BE, "utf-32-be", id="utf-32-be"),
]


def _no_traceback(stderr: bytes) -> None:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text


def _encoded(lines: list[str], bom: bytes, encoding: str, newline: str = "\n") -> bytes:
    return bom + "".join(line + newline for line in lines).encode(encoding)


# -- An argument that starts with http:// or https:// is itself a URL to check ---------------


def test_url_argument_is_a_url_to_check_with_source_args_and_1_based_line(
    server: HTTPTestServer,
) -> None:
    a, b = server.url("/ok/arg1"), server.url("/status/404/arg2")
    proc = run_fetchpool(a, b, "--workers", "1", "--format", "jsonl")
    got = [(r["source"], r["line"], r["url"], r["outcome"]) for r in parse_jsonl(proc.stdout)]
    assert got == [("<args>", 1, a, "ok"), ("<args>", 2, b, "fail")]
    assert proc.returncode == 1
    _no_traceback(proc.stderr)


def test_url_arguments_and_files_mix_in_command_line_order(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/ok/f1"), server.url("/ok/f2")])
    a, b, c = (server.url(f"/ok/arg{i}") for i in (1, 2, 3))
    proc = run_fetchpool(a, urls, b, c, "--workers", "1", "--format", "jsonl")
    got = [(r["source"], r["line"], r["url"]) for r in parse_jsonl(proc.stdout)]
    assert got == [
        ("<args>", 1, a),
        (str(urls), 1, server.url("/ok/f1")),
        (str(urls), 2, server.url("/ok/f2")),
        ("<args>", 2, b),
        ("<args>", 3, c),
    ]
    assert proc.returncode == 0


def test_url_arguments_only_read_no_stdin(server: HTTPTestServer) -> None:
    # Standard input is a pipe that never closes: reading it would block the run forever.
    # (Not wait_exit: communicate() would close the pipe.)
    proc = spawn_fetchpool(server.url("/ok/no-stdin"), "--format", "jsonl", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("fetchpool read standard input with only URL arguments") from None
    finally:
        proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    [record] = parse_jsonl(out)
    assert (record["source"], record["line"], record["outcome"]) == ("<args>", 1, "ok")
    assert proc.returncode == 0, err


def test_url_argument_invalid_is_fail_invalid_not_a_file_error(server: HTTPTestServer) -> None:
    proc = run_fetchpool("http://", server.url("/ok/after"), "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert records[1]["kind"] == "invalid"
    assert records[2]["outcome"] == "ok"
    assert proc.returncode == 1
    assert b"cannot read" not in proc.stderr


def test_url_argument_with_extract_is_a_page_whose_links_are_checked(
    server: HTTPTestServer,
) -> None:
    server.documents["invocation.html"] = ("text/html", b"<a href='/ok/from-page'>x</a>\n")
    page = server.url("/doc/invocation.html")
    proc = run_fetchpool("--extract", page, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    places = {(r["url"], r["source"], r["line"]) for r in parse_jsonl(proc.stdout)}
    assert places == {(page, "<args>", 1), (server.url("/ok/from-page"), page, 1)}


def test_url_arguments_counted_up_front_with_files(tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", ["http://a.test/", "# skipped", "http://b.test/"])
    inputs = open_inputs(["http://x.test/", str(urls), "https://y.test/", "https://z.test/"])
    assert [(i.name, i.urls, i.first_line) for i in inputs if i.urls is not None] == [
        ("<args>", ("http://x.test/",), 1),
        ("<args>", ("https://y.test/", "https://z.test/"), 2),
    ]
    assert count_targets(inputs) == 5


# -- A file that starts with a byte-order mark ---------------------------------------------


@pytest.mark.parametrize(("bom", "encoding"), ENCODINGS)
def test_file_with_byte_order_mark_is_read_without_it_and_decoded_as_such(
    server: HTTPTestServer, tmp_path: Path, bom: bytes, encoding: str
) -> None:
    lines = [server.url("/ok/bom1"), "# comment", "", server.url("/ok/é")]
    path = tmp_path / "urls.txt"
    # CRLF as PowerShell and Notepad write it.
    path.write_bytes(_encoded(lines, bom, encoding, newline="\r\n"))
    proc = run_fetchpool(path, "--workers", "1", "--format", "jsonl")
    got = [(r["line"], r["url"], r["outcome"]) for r in parse_jsonl(proc.stdout)]
    assert got == [(1, lines[0], "ok"), (4, lines[3], "ok")]
    assert proc.returncode == 0, proc.stderr
    assert count_targets(open_inputs([str(path)])) == 2


@pytest.mark.parametrize(("bom", "encoding"), ENCODINGS)
def test_stdin_with_byte_order_mark_is_read_without_it(
    server: HTTPTestServer, bom: bytes, encoding: str
) -> None:
    data = _encoded([server.url("/ok/stdin-bom")], bom, encoding)
    proc = run_fetchpool("--format", "jsonl", input=data)
    [record] = parse_jsonl(proc.stdout)
    assert (record["source"], record["line"], record["url"], record["outcome"]) == (
        "-",
        1,
        server.url("/ok/stdin-bom"),
        "ok",
    )
    assert proc.returncode == 0


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_file_with_invalid_bytes_fails_that_line_invalid(
    server: HTTPTestServer, tmp_path: Path, encoding: str
) -> None:
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    lone_surrogate = b"\x00\xd8" if encoding == "utf-16-le" else b"\xd8\x00"
    data = (
        bom
        + (server.url("/ok/") + "x").encode(encoding)
        + lone_surrogate
        + "\n".encode(encoding)
        + (server.url("/ok/after-bad") + "\n").encode(encoding)
        + b"\x00"  # a stray odd byte at the end
    )
    path = tmp_path / "urls.txt"
    path.write_bytes(data)
    proc = run_fetchpool(path, "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert sorted(records) == [1, 2, 3]
    for line in (1, 3):
        assert records[line]["kind"] == "invalid"
        assert "not valid UTF-16" in records[line]["error"]
    assert records[2]["outcome"] == "ok"
    assert proc.returncode == 1
    _no_traceback(proc.stderr)


def test_utf16_line_over_64_kib_is_invalid(server: HTTPTestServer, tmp_path: Path) -> None:
    lines = [server.url("/ok/") + "a" * (64 * 1024 + 10), server.url("/ok/after-long")]
    path = tmp_path / "urls.txt"
    path.write_bytes(_encoded(lines, codecs.BOM_UTF16_LE, "utf-16-le"))
    proc = run_fetchpool(path, "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert records[1]["kind"] == "invalid"
    assert "64 KiB" in records[1]["error"]
    assert records[2]["outcome"] == "ok"


def test_utf16_producer_that_pauses_sees_first_result_before_writing_more(
    server: HTTPTestServer,
) -> None:
    proc = spawn_fetchpool("--format", "plain", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(codecs.BOM_UTF16_LE + (server.url("/ok/u1") + "\r\n").encode("utf-16-le"))
        proc.stdin.flush()
        # The pipe stays open: the first result must arrive while input is still pending.
        [first] = read_lines_until(proc, 1, timeout=10)
        assert first.split(b"\t")[3] == server.url("/ok/u1").encode()
        proc.stdin.write((server.url("/ok/u2") + "\r\n").encode("utf-16-le"))
        proc.stdin.close()
        [second] = read_lines_until(proc, 1, timeout=10)
        assert second.split(b"\t")[3] == server.url("/ok/u2").encode()
        _, err = wait_exit(proc, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err


@pytest.mark.parametrize(("bom", "encoding"), ENCODINGS)
def test_byte_order_mark_and_lines_survive_any_chunk_boundary(bom: bytes, encoding: str) -> None:
    data = _encoded(["http://a.test/é", "# c", "http://b.test/"], bom, encoding, "\r\n")
    for step in (1, 2, 3, 5, len(data)):
        decoder, splitter, lines = _Decoder(), _LineSplitter(), []
        for i in range(0, len(data), step):
            lines += splitter.feed(decoder.feed(data[i : i + step]))
        lines += splitter.feed(decoder.end()) + splitter.end()
        assert [_line_text(raw) for raw in lines] == [
            ("http://a.test/é", None),
            None,
            ("http://b.test/", None),
        ], step
