"""End-to-end tests of the `fetchpool` command: the installed entry point in a subprocess,
against the suite's own HTTP servers on 127.0.0.1. One test per promise of the contract."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from clihelpers import (
    FETCHPOOL,
    cli_env,
    parse_csv,
    parse_jsonl,
    parse_plain,
    parse_summary,
    read_lines_until,
    run_fetchpool,
    spawn_fetchpool,
    wait_exit,
    wait_signal_handlers,
    write_lines,
)
from httpserver import HTTPTestServer, closed_port
from ptyhelpers import open_terminal, run_to_end, spawn_on_terminal

from fetchpool import Settings, __version__
from fetchpool._cache import parse_duration
from fetchpool._config import DEFAULT_MAX_CACHE_AGE

REPO = Path(__file__).resolve().parent.parent
JSONL_KEYS = {
    "url",
    "outcome",
    "status",
    "elapsed",
    "attempts",
    "final_url",
    "error",
    "source",
    "line",
    "kind",
    "bytes",
}
KINDS = {
    None,
    "http",
    "timeout",
    "dns",
    "connect",
    "tls",
    "protocol",
    "redirect",
    "invalid",
    "size",
    "cancelled",
}
MIB = 1024 * 1024


def _no_traceback(stderr: bytes) -> None:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    assert "Exception ignored" not in text, text


# -- input ---------------------------------------------------------------------------------


def test_invalid_line_yields_fail_of_kind_invalid_and_run_goes_on(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        ["ftp://example.invalid/file", "not a url", "http://", server.url("/ok/after-invalid")],
    )
    proc = run_fetchpool(urls, "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert sorted(records) == [1, 2, 3, 4]
    for line in (1, 2, 3):
        assert records[line]["outcome"] == "fail"
        assert records[line]["kind"] == "invalid"
        assert records[line]["status"] is None
        assert records[line]["error"].startswith("invalid URL")
    assert records[1]["error"] == "invalid URL: unsupported scheme 'ftp'"
    assert records[4]["outcome"] == "ok"
    assert proc.returncode == 1
    _no_traceback(proc.stderr)


def test_producer_that_pauses_sees_first_result_before_writing_more(
    server: HTTPTestServer,
) -> None:
    proc = spawn_fetchpool("--format", "plain", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write((server.url("/ok/first") + "\n").encode())
        proc.stdin.flush()
        # The pipe stays open: the first result must arrive while input is still pending.
        [first] = read_lines_until(proc, 1, timeout=10)
        assert first.split(b"\t")[3] == server.url("/ok/first").encode()
        proc.stdin.write((server.url("/ok/second") + "\n").encode())
        proc.stdin.close()
        [second] = read_lines_until(proc, 1, timeout=10)
        assert second.split(b"\t")[3] == server.url("/ok/second").encode()
        _, err = wait_exit(proc, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err


def test_several_files_are_read_in_order_as_one_stream(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    a = write_lines(tmp_path / "a.txt", [server.url(f"/ok/a{i}") for i in range(3)])
    b = write_lines(tmp_path / "b.txt", [server.url(f"/ok/b{i}") for i in range(2)])
    # One worker: results come out in the order the lines were read.
    proc = run_fetchpool(a, b, "--workers", "1", "--format", "jsonl")
    got = [(r["source"], r["line"], r["url"]) for r in parse_jsonl(proc.stdout)]
    assert got == [
        (str(a), 1, server.url("/ok/a0")),
        (str(a), 2, server.url("/ok/a1")),
        (str(a), 3, server.url("/ok/a2")),
        (str(b), 1, server.url("/ok/b0")),
        (str(b), 2, server.url("/ok/b1")),
    ]
    assert proc.returncode == 0


def test_dash_means_stdin(server: HTTPTestServer, tmp_path: Path) -> None:
    before = write_lines(tmp_path / "before.txt", [server.url("/ok/file-before")])
    after = write_lines(tmp_path / "after.txt", [server.url("/ok/file-after")])
    stdin = (server.url("/ok/stdin1") + "\n" + server.url("/ok/stdin2") + "\n").encode()
    proc = run_fetchpool(before, "-", after, "--workers", "1", "--format", "jsonl", input=stdin)
    got = [(r["source"], r["line"], r["url"]) for r in parse_jsonl(proc.stdout)]
    assert got == [
        (str(before), 1, server.url("/ok/file-before")),
        ("-", 1, server.url("/ok/stdin1")),
        ("-", 2, server.url("/ok/stdin2")),
        (str(after), 1, server.url("/ok/file-after")),
    ]
    assert proc.returncode == 0


def test_no_file_means_stdin(server: HTTPTestServer) -> None:
    proc = run_fetchpool("--format", "jsonl", input=(server.url("/ok/nofile") + "\n").encode())
    [record] = parse_jsonl(proc.stdout)
    assert (record["source"], record["line"], record["outcome"]) == ("-", 1, "ok")
    assert proc.returncode == 0


def test_comments_and_blank_lines_are_skipped(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [
            "# a comment",
            "",
            "   ",
            "\t# an indented comment",
            "  " + server.url("/ok/padded") + " \t",
            "",
            server.url("/ok/plain") + "\r",
        ],
    )
    proc = run_fetchpool(urls, "--format", "jsonl")
    got = sorted((r["line"], r["url"], r["outcome"]) for r in parse_jsonl(proc.stdout))
    # Surrounding whitespace is stripped from the URL as read.
    assert got == [(5, server.url("/ok/padded"), "ok"), (7, server.url("/ok/plain"), "ok")]
    assert parse_summary(proc.stderr).done == 2
    assert proc.returncode == 0


def test_every_result_carries_source_and_line(server: HTTPTestServer, tmp_path: Path) -> None:
    lines = [
        server.url("/ok/1"),
        "# skipped",
        server.url("/status/404"),
        "mailto:someone@example.invalid",
        "",
        server.url("/redirect/1"),
    ]
    urls = write_lines(tmp_path / "urls.txt", lines)
    proc = run_fetchpool(urls, "--format", "jsonl")
    got = {(r["source"], r["line"]): r["url"] for r in parse_jsonl(proc.stdout)}
    assert got == {
        (str(urls), 1): lines[0],
        (str(urls), 3): lines[2],
        (str(urls), 4): lines[3],
        (str(urls), 6): lines[5],
    }


def test_every_line_read_yields_exactly_one_result(server: HTTPTestServer, tmp_path: Path) -> None:
    kinds = ["/ok/{}", "/status/404/{}", "/redirect/2/{}", "gopher://x/{}", "/status/500/{}"]
    lines = []
    for i in range(60):
        pattern = kinds[i % len(kinds)].format(i)
        lines.append(pattern if "://" in pattern else server.url(pattern))
    urls = write_lines(tmp_path / "urls.txt", lines)
    proc = run_fetchpool(urls, "--workers", "7", "--retries", "0", "--format", "jsonl")
    got = sorted(r["line"] for r in parse_jsonl(proc.stdout))
    assert got == list(range(1, 61))
    assert parse_summary(proc.stderr).done == 60


def test_non_utf8_line_is_invalid(server: HTTPTestServer, tmp_path: Path) -> None:
    bad = server.url("/ok/").encode() + b"caf\xe9\xff"
    urls = write_lines(tmp_path / "urls.txt", [bad, server.url("/ok/after-latin1")])
    proc = run_fetchpool(urls, "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert records[1]["outcome"] == "fail"
    assert records[1]["kind"] == "invalid"
    assert "UTF-8" in records[1]["error"]
    assert records[2]["outcome"] == "ok"
    assert proc.returncode == 1
    _no_traceback(proc.stderr)


def test_line_over_64_kib_is_invalid_and_next_line_still_fetched(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    long_line = server.url("/ok/") + "a" * (64 * 1024 + 10)
    urls = write_lines(
        tmp_path / "urls.txt", [long_line, server.url("/ok/after-long"), "x" * 200_000]
    )
    proc = run_fetchpool(urls, "--format", "jsonl")
    records = {r["line"]: r for r in parse_jsonl(proc.stdout)}
    assert sorted(records) == [1, 2, 3]
    for line in (1, 3):
        assert records[line]["outcome"] == "fail"
        assert records[line]["kind"] == "invalid"
        assert "64 KiB" in records[line]["error"]
        # The over-long text is not echoed back whole.
        assert len(records[line]["url"]) < 64 * 1024
    assert records[2]["outcome"] == "ok"
    assert records[2]["url"] == server.url("/ok/after-long")


def test_line_of_exactly_64_kib_is_accepted(server: HTTPTestServer, tmp_path: Path) -> None:
    prefix = server.url("/ok/")
    line = prefix + "b" * (64 * 1024 - len(prefix))
    urls = write_lines(tmp_path / "urls.txt", [line])
    proc = run_fetchpool(urls, "--format", "jsonl")
    [record] = parse_jsonl(proc.stdout)
    assert record["kind"] != "invalid", record["error"]


# -- output --------------------------------------------------------------------------------


def test_plain_line_has_five_tab_separated_fields(
    server: HTTPTestServer, tmp_path: Path, closed_port_url: str
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [server.url("/ok/plain"), server.url("/status/404"), closed_port_url, "ftp://x/"],
    )
    proc = run_fetchpool(urls, "--format", "plain", "--retries", "0")
    rows = {fields[3]: fields for fields in parse_plain(proc.stdout)}
    assert len(rows) == 4
    for fields in rows.values():
        assert len(fields) == 5, fields
        outcome, status, seconds, _url, _detail = fields
        assert outcome in {"OK", "FAIL", "CANCELLED"}
        assert status == "-" or re.fullmatch(r"[1-5]\d\d", status), status
        assert re.fullmatch(r"\d+\.\d{3}", seconds), seconds
    assert rows[server.url("/ok/plain")][:2] == ["OK", "200"]
    assert rows[server.url("/ok/plain")][4] == ""
    assert rows[server.url("/status/404")][:2] == ["FAIL", "404"]
    assert "404" in rows[server.url("/status/404")][4]
    # No response at all: STATUS is '-' and DETAIL says why.
    assert rows[closed_port_url][:2] == ["FAIL", "-"]
    assert rows[closed_port_url][4] != ""
    assert rows["ftp://x/"][:2] == ["FAIL", "-"]
    assert rows["ftp://x/"][4] == "invalid URL: unsupported scheme 'ftp'"


def test_redirect_final_url_in_detail(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/redirect/3")])
    proc = run_fetchpool(urls, "--format", "plain")
    [fields] = parse_plain(proc.stdout)
    assert fields[:2] == ["OK", "200"]
    assert fields[3] == server.url("/redirect/3")
    assert fields[4] == server.url("/ok/final")


def test_jsonl_has_every_documented_key(
    server: HTTPTestServer, tmp_path: Path, closed_port_url: str
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [server.url("/ok/json"), server.url("/status/404"), closed_port_url, "ftp://x/"],
    )
    proc = run_fetchpool(urls, "--format", "jsonl", "--retries", "0")
    records = parse_jsonl(proc.stdout)
    assert len(records) == 4
    for r in records:
        assert r.keys() >= JSONL_KEYS, JSONL_KEYS - r.keys()
        assert r["outcome"] in {"ok", "fail", "cancelled"}
        assert r["status"] is None or isinstance(r["status"], int)
        assert isinstance(r["elapsed"], float | int)
        assert r["elapsed"] >= 0
        assert isinstance(r["attempts"], int)
        assert r["final_url"] is None or isinstance(r["final_url"], str)
        assert r["source"] == str(urls)
        assert isinstance(r["line"], int)
        assert r["line"] >= 1
        assert r["kind"] in KINDS
        assert isinstance(r["bytes"], int)
        assert r["bytes"] >= 0
        if r["outcome"] == "ok":
            assert r["error"] is None
            assert r["kind"] is None
        else:
            assert isinstance(r["error"], str)
            assert r["error"]
            assert r["kind"] is not None
    by_url = {r["url"]: r for r in records}
    ok = by_url[server.url("/ok/json")]
    assert (ok["status"], ok["bytes"], ok["attempts"]) == (200, 3, 1)
    assert by_url[server.url("/status/404")]["kind"] == "http"
    assert by_url[closed_port_url]["kind"] == "connect"
    assert by_url[closed_port_url]["status"] is None
    assert by_url["ftp://x/"]["kind"] == "invalid"


def test_csv_has_header_and_same_fields_as_jsonl(
    server: HTTPTestServer, tmp_path: Path, closed_port_url: str
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [
            server.url("/ok/csv"),
            server.url("/status/404"),
            server.url("/redirect/1"),
            closed_port_url,
            'ftp://x/"quoted",comma',
        ],
    )
    as_csv = run_fetchpool(urls, "--format", "csv", "--retries", "0", "--workers", "1")
    as_jsonl = run_fetchpool(urls, "--format", "jsonl", "--retries", "0", "--workers", "1")
    header, rows = parse_csv(as_csv.stdout)
    records = parse_jsonl(as_jsonl.stdout)
    assert set(header) >= JSONL_KEYS
    assert set(header) == set(records[0].keys())
    assert len(rows) == len(records) == 5
    csv_by_line = {int(row["line"]): row for row in rows}
    for record in records:
        row = csv_by_line[record["line"]]
        for key in header:
            if key == "elapsed":
                continue  # two runs: timings differ
            expected = record[key]
            assert row[key] == ("" if expected is None else str(expected)), (key, row, record)
    assert as_csv.returncode == as_jsonl.returncode == 1


@pytest.mark.parametrize("fmt", ["plain", "jsonl", "csv"])
def test_summary_goes_to_stderr_in_machine_formats(
    server: HTTPTestServer, tmp_path: Path, fmt: str
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/ok/s1"), server.url("/status/404")])
    proc = run_fetchpool(urls, "--format", fmt)
    out = proc.stdout
    if fmt == "plain":
        assert all(len(f) == 5 for f in parse_plain(out))
        assert len(parse_plain(out)) == 2
    elif fmt == "jsonl":
        assert len(parse_jsonl(out)) == 2
    else:
        assert len(parse_csv(out)[1]) == 2
    assert b"URLs" not in out
    summary = parse_summary(proc.stderr)
    assert (summary.done, summary.ok, summary.failed, summary.cancelled) == (2, 1, 1, 0)


def test_failures_only_prints_only_non_ok_but_summary_counts_all(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [server.url("/ok/f1"), server.url("/status/404"), server.url("/ok/f2"), "ftp://x/"],
    )
    proc = run_fetchpool(urls, "--format", "jsonl", "--failures-only")
    records = parse_jsonl(proc.stdout)
    assert sorted(r["line"] for r in records) == [2, 4]
    assert all(r["outcome"] != "ok" for r in records)
    summary = parse_summary(proc.stderr)
    assert (summary.done, summary.ok, summary.failed) == (4, 2, 2)
    assert proc.returncode == 1


def test_format_auto_is_plain_when_stdout_is_a_pipe(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/ok/auto")])
    auto = run_fetchpool(urls)
    [fields] = parse_plain(auto.stdout)
    assert fields[:2] == ["OK", "200"]
    assert fields[3] == server.url("/ok/auto")
    assert b"\x1b" not in auto.stdout


def test_format_auto_on_a_terminal_does_not_crash(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/ok/tty"), server.url("/status/404")])
    child = spawn_on_terminal([urls], rows=40, cols=160, env=cli_env(), timeout=10)
    screen = run_to_end(child)
    assert "Traceback" not in screen, screen
    assert "/ok/tty" in screen
    assert child.exitstatus == 1, screen


def test_results_stream_as_each_url_finishes(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/hang/stream"), server.url("/ok/fast")])
    proc = spawn_fetchpool(urls, "--workers", "2", "--timeout", "10", "--format", "plain")
    try:
        [line] = read_lines_until(proc, 1, timeout=5)
        assert line.split(b"\t")[3] == server.url("/ok/fast").encode()
        # The slow URL is still in flight: the fast result did not wait for the end of the run.
        assert proc.poll() is None
    finally:
        proc.terminate()
        wait_exit(proc, 5)


def test_closed_stdout_exits_quietly_without_traceback(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url(f"/ok/{i}") for i in range(3000)])
    fetch = spawn_fetchpool(urls, "--workers", "8", "--format", "plain")
    assert fetch.stdout is not None
    head = subprocess.Popen(["head", "-1"], stdin=fetch.stdout, stdout=subprocess.PIPE)
    fetch.stdout.close()  # only `head` holds the read end now: a real `| head -1`
    fetch.stdout = None
    head_out, _ = head.communicate(timeout=20)
    _, err = wait_exit(fetch, 20)
    assert head_out.count(b"\n") == 1
    assert head_out.startswith(b"OK\t200\t")
    _no_traceback(err)
    assert b"BrokenPipe" not in err, err
    assert fetch.returncode >= 0, "killed by a signal instead of exiting"


def test_output_text_from_server_cannot_inject_escapes(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    evil_reason = quote("\x1b[31m[bold]evil\x1b]0;title\x07\x9b2J", safe="")
    urls = write_lines(
        tmp_path / "urls.txt",
        [server.url(f"/reason/500?text={evil_reason}"), server.url("/ok/") + "\x1b[2J[red]x"],
    )
    for fmt in ("plain", "csv"):
        proc = run_fetchpool(urls, "--format", fmt, "--retries", "0")
        for raw in (proc.stdout, proc.stderr):
            assert b"\x1b" not in raw, (fmt, raw)
            assert b"\x07" not in raw, (fmt, raw)
            assert "\x9b".encode() not in raw, (fmt, raw)
        # Shown literally, markup included.
        assert b"[bold]evil" in proc.stdout, proc.stdout
        if fmt == "plain":
            rows = parse_plain(proc.stdout)
            assert len(rows) == 2
            assert all(len(fields) == 5 for fields in rows)
    jsonl = run_fetchpool(urls, "--format", "jsonl", "--retries", "0")
    assert b"\x1b" not in jsonl.stdout
    errors = " ".join(str(r["error"]) for r in parse_jsonl(jsonl.stdout))
    assert "[bold]evil" in errors


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--workers", "0"],
        ["--workers", "1001"],
        ["-w", "many"],
        ["--timeout", "-1"],
        ["--timeout", "0"],
        ["--timeout", "soon"],
        ["--accept", "garbage"],
        ["--accept", "200-"],
        ["--method", "PUT"],
        ["--header", "no colon here"],
        ["--format", "yaml"],
        ["--no-such-option"],
        ["@missing-file"],
        ["@directory"],
        ["@unreadable-file"],
    ],
    ids=lambda o: "=".join(o),
)
def test_bad_option_value_is_one_line_usage_error_exit_2_nothing_fetched(
    fresh_server: HTTPTestServer, tmp_path: Path, option: list[str]
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url("/ok/must-not-be-fetched")])
    if option == ["@missing-file"]:
        option = [str(tmp_path / "missing.txt")]
    elif option == ["@directory"]:
        option = [str(tmp_path)]
    elif option == ["@unreadable-file"]:
        if os.geteuid() == 0:
            pytest.skip("root can read a file without read permission")
        secret = write_lines(tmp_path / "secret.txt", [fresh_server.url("/ok/secret")])
        secret.chmod(0)
        option = [str(secret)]
    # The good file comes first: a command that fetched before checking its arguments shows.
    proc = run_fetchpool(urls, *option, timeout=10)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(lines) == 1, lines
    assert lines[0].strip(), lines
    assert proc.stdout == b""
    _no_traceback(proc.stderr)
    time.sleep(0.1)  # a request already on its way would have landed by now
    assert fresh_server.requests == []


def test_no_file_and_stdin_is_terminal_is_usage_error(server: HTTPTestServer) -> None:
    controller, terminal = open_terminal()
    try:
        proc = run_fetchpool("--format", "plain", stdin=terminal, timeout=10)
    finally:
        os.close(terminal)
        os.close(controller)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, lines
    assert "input" in lines[0]
    assert proc.stdout == b""


def test_accept_list_counts_listed_status_ok(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [
            server.url("/status/200"),
            server.url("/status/301"),
            server.url("/status/403"),
            server.url("/status/404"),
            server.url("/status/410"),
        ],
    )
    proc = run_fetchpool(urls, "--accept", "200-299,403-404", "--no-follow", "--format", "jsonl")
    outcome = {r["status"]: (r["outcome"], r["kind"]) for r in parse_jsonl(proc.stdout)}
    assert outcome == {
        200: ("ok", None),
        301: ("fail", "http"),
        403: ("ok", None),
        404: ("ok", None),
        410: ("fail", "http"),
    }
    assert proc.returncode == 1
    only_listed = run_fetchpool(urls, "--accept", "301,410", "--no-follow", "--format", "jsonl")
    ok = sorted(r["status"] for r in parse_jsonl(only_listed.stdout) if r["outcome"] == "ok")
    assert ok == [301, 410]


def test_method_head_sends_head(fresh_server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url("/ok/head")])
    proc = run_fetchpool(urls, "--method", "HEAD", "--format", "jsonl")
    [record] = parse_jsonl(proc.stdout)
    assert (record["outcome"], record["status"], record["bytes"]) == ("ok", 200, 0)
    assert [r.method for r in fresh_server.requests] == ["HEAD"]
    fresh_server.reset_stats()
    run_fetchpool(urls, "--format", "jsonl")
    assert [r.method for r in fresh_server.requests] == ["GET"]


def test_header_option_sends_header(fresh_server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url("/headers")])
    proc = run_fetchpool(
        urls, "-H", "X-Test: one", "--header", "X-Other:two words", "--format", "jsonl"
    )
    assert proc.returncode == 0, proc.stderr
    [request] = fresh_server.requests
    assert request.header("x-test") == "one"
    assert request.header("x-other") == "two words"


def test_user_agent_default_and_override(fresh_server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url("/headers")])
    run_fetchpool(urls)
    run_fetchpool(urls, "--user-agent", "link-checker/9 (+tests)")
    agents = [r.header("user-agent") for r in fresh_server.requests]
    assert agents == [f"fetchpool/{__version__}", "link-checker/9 (+tests)"]


def test_insecure_skips_tls_verification(
    untrusted_tls_server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [untrusted_tls_server.url("/ok/tls")])
    verified = run_fetchpool(urls, "--format", "jsonl", "--retries", "0")
    [record] = parse_jsonl(verified.stdout)
    assert (record["outcome"], record["kind"]) == ("fail", "tls")
    assert verified.returncode == 1
    insecure = run_fetchpool(urls, "--format", "jsonl", "--insecure")
    [record] = parse_jsonl(insecure.stdout)
    assert (record["outcome"], record["status"]) == ("ok", 200)
    assert insecure.returncode == 0


def test_version_prints_name_and_version() -> None:
    proc = run_fetchpool("--version")
    assert proc.stdout == f"fetchpool {__version__}\n".encode()
    assert proc.returncode == 0


def test_python_dash_m_fetchpool_works(server: HTTPTestServer) -> None:
    module = [sys.executable, "-m", "fetchpool"]
    version = run_fetchpool("--version", command=module)
    assert version.stdout == f"fetchpool {__version__}\n".encode()
    assert version.returncode == 0
    fetch = run_fetchpool(
        "-", "--format", "plain", command=module, input=(server.url("/ok/m") + "\n").encode()
    )
    [fields] = parse_plain(fetch.stdout)
    assert fields[:2] == ["OK", "200"]
    assert fetch.returncode == 0


# -- exit status ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["all-ok", "empty", "comments-only"])
def test_exit_0_when_all_ok_also_with_no_urls(
    server: HTTPTestServer, tmp_path: Path, content: str
) -> None:
    lines = {
        "all-ok": [server.url("/ok/e1"), server.url("/redirect/1"), server.url("/status/204")],
        "empty": [],
        "comments-only": ["# nothing", "", "   "],
    }[content]
    urls = write_lines(tmp_path / "urls.txt", lines)
    proc = run_fetchpool(urls, "--format", "plain")
    assert proc.returncode == 0, proc.stderr
    assert len(parse_plain(proc.stdout)) == len([x for x in lines if x.startswith("http")])
    assert parse_summary(proc.stderr).failed == 0
    if content == "empty":
        stdin_run = run_fetchpool("--format", "plain", input=b"")
        assert stdin_run.returncode == 0, stdin_run.stderr


@pytest.mark.parametrize("bad", ["status-404", "invalid-line", "connect-refused", "timeout"])
def test_exit_1_when_any_fail(
    server: HTTPTestServer, tmp_path: Path, closed_port_url: str, bad: str
) -> None:
    failing = {
        "status-404": server.url("/status/404"),
        "invalid-line": "ftp://x/",
        "connect-refused": closed_port_url,
        "timeout": server.url("/hang/exit1"),
    }[bad]
    urls = write_lines(tmp_path / "urls.txt", [server.url("/ok/x1"), failing])
    proc = run_fetchpool(urls, "--timeout", "0.5", "--retries", "0")
    assert proc.returncode == 1, proc.stderr
    assert parse_summary(proc.stderr).failed == 1


# -- fetching and limits -------------------------------------------------------------------


def test_per_url_timeout_cuts_off_trickling_server(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/trickle")])
    started = time.monotonic()
    proc = run_fetchpool(urls, "--timeout", "0.5", "--format", "jsonl", timeout=10)
    wall = time.monotonic() - started
    [record] = parse_jsonl(proc.stdout)
    assert (record["outcome"], record["kind"]) == ("fail", "timeout")
    # httpx's per-read timeout never fires here (a byte every 0.1 s); only the deadline does.
    assert 0.45 <= record["elapsed"] < 2.0, record
    assert wall < 6, wall
    assert proc.returncode == 1


def test_hanging_server_times_out(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", [server.url("/hang/timeout")])
    proc = run_fetchpool(urls, "--timeout", "0.5", "--format", "jsonl", timeout=10)
    [record] = parse_jsonl(proc.stdout)
    assert (record["outcome"], record["kind"], record["status"]) == ("fail", "timeout", None)
    assert 0.45 <= record["elapsed"] < 2.0, record
    assert "timed out" in record["error"]
    assert proc.returncode == 1


def test_huge_body_costs_no_more_than_small(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(
        tmp_path / "urls.txt",
        [server.url("/bytes/10000000000"), server.url("/chunked/10000000000")],
    )
    started = time.monotonic()
    proc = run_fetchpool(urls, "--format", "jsonl", timeout=15)
    wall = time.monotonic() - started
    records = parse_jsonl(proc.stdout)
    assert len(records) == 2
    for record in records:
        assert (record["outcome"], record["status"]) == ("ok", 200), record
        # At most 1 MiB is read; allow one network read past the cap.
        assert MIB - 64 * 1024 <= record["bytes"] <= MIB + 64 * 1024, record
        assert record["elapsed"] < 3, record
    assert wall < 8, wall  # reading 10 GB on 127.0.0.1 takes far longer than this


def test_workers_bound_concurrency(fresh_server: HTTPTestServer, tmp_path: Path) -> None:
    urls = write_lines(
        tmp_path / "urls.txt", [fresh_server.url(f"/delay/100/{i}") for i in range(24)]
    )
    proc = run_fetchpool(urls, "--workers", "3", "--format", "plain")
    assert proc.returncode == 0, proc.stderr
    assert len(fresh_server.requests) == 24
    assert fresh_server.max_open_connections <= 3
    # ...and the pool does use its workers (24 x 100 ms in one lane would be slow).
    assert fresh_server.max_open_connections >= 2


def test_contract_defaults_8_workers_2_retries(
    fresh_server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [fresh_server.url(f"/delay/100/{i}") for i in range(24)]
    urls.append(fresh_server.url("/flaky/default/2/503"))
    proc = run_fetchpool(write_lines(tmp_path / "urls.txt", urls), "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert fresh_server.max_open_connections == 8
    (flaky,) = [r for r in parse_jsonl(proc.stdout) if "/flaky/" in r["url"]]
    assert flaky["attempts"] == 3


def test_contract_defaults_in_settings() -> None:
    settings = Settings()
    assert (settings.workers, settings.timeout, settings.retries) == (8, 30.0, 2)
    assert parse_duration(DEFAULT_MAX_CACHE_AGE) == 86400.0


def test_one_shared_client_keeps_connections_alive(
    fresh_server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url(f"/ok/{i}") for i in range(40)])
    proc = run_fetchpool(urls, "--workers", "2", "--format", "plain")
    assert proc.returncode == 0, proc.stderr
    assert len(fresh_server.requests) == 40
    # Two workers on one pooled client: a handful of connections, not one per URL.
    assert fresh_server.connections_total <= 4, fresh_server.connections_total


def _offline_host(url: str, port: int) -> str:
    """The same URL moved to a port of 127.0.0.1 where nothing listens.

    A machine without network refuses or fails to resolve; a `.invalid` name would
    still ask the system resolver, which is not on loopback, so the test refuses instead.
    """
    parts = urlsplit(url)
    path = f"/{parts.hostname}{parts.path}"
    return urlunsplit(("http", f"127.0.0.1:{port}", path, parts.query, ""))


def test_offline_example_list_fails_fast_not_hang(tmp_path: Path) -> None:
    example = REPO / "urls.example.txt"
    assert example.is_file(), "urls.example.txt is missing from the repository top level"
    urls = []
    port = closed_port()
    for raw in example.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            assert line.startswith(("http://", "https://")), line
            urls.append(_offline_host(line, port))
    assert urls, "urls.example.txt lists no URLs"
    offline = write_lines(tmp_path / "offline.txt", urls)
    started = time.monotonic()
    proc = run_fetchpool(
        offline, "--workers", "3", "--timeout", "30", "--format", "jsonl", timeout=25
    )
    wall = time.monotonic() - started
    records = parse_jsonl(proc.stdout)
    assert sorted(r["url"] for r in records) == sorted(urls)
    for record in records:
        assert record["outcome"] == "fail", record
        assert record["kind"] == "connect", record
        assert record["error"], record
    assert proc.returncode == 1
    _no_traceback(proc.stderr)
    assert wall < 15, f"an offline run took {wall:.1f} s"


def test_bounded_queue_holds_a_fast_producer_back(server: HTTPTestServer) -> None:
    # Four workers stuck on hanging URLs, and a producer offering ~7 MB of URLs as fast as it
    # can: the reader must stop taking input (the pipe fills) and memory must stay flat.
    lines = b"".join(server.url(f"/hang/bp/{i}").encode() + b"\n" for i in range(200_000))
    proc = spawn_fetchpool("-", "--workers", "4", "--timeout", "30", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    os.set_blocking(fd, False)
    sent = 0
    try:
        wait_signal_handlers(proc)  # the run has started: the clock below measures reading
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and sent < len(lines):
            try:
                sent += os.write(fd, lines[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)
        status = Path(f"/proc/{proc.pid}/status").read_text()
    finally:
        proc.kill()
        wait_exit(proc, 5)
    # About 128 KiB is taken (the pipe, one read chunk, the bounded queues); an unbounded
    # queue takes megabytes in the same time.
    assert sent < 512 * 1024, f"the reader took {sent} bytes of input while every worker hung"
    match = re.search(r"VmRSS:\s+(\d+)", status)
    assert match is not None, status
    rss_kib = int(match.group(1))
    assert rss_kib < 100 * 1024, f"{rss_kib} KiB resident"


def test_per_host_caps_requests_in_flight_to_one_host(
    fresh_server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = write_lines(
        tmp_path / "urls.txt", [fresh_server.url(f"/delay/100/{i}") for i in range(12)]
    )
    proc = run_fetchpool(urls, "--workers", "8", "--per-host", "2", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert len(parse_jsonl(proc.stdout)) == 12
    assert fresh_server.max_open_connections <= 2


def test_help_groups_the_options_in_panels_and_ends_with_examples(tmp_path: Path) -> None:
    env = cli_env({"COLUMNS": "80"})
    env.pop("TERMINAL_WIDTH", None)
    done = subprocess.run(
        [*FETCHPOOL, "--help"], capture_output=True, env=env, cwd=tmp_path, timeout=20, check=False
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    titles = re.findall(r"^╭─ (.+?) ─", text, re.MULTILINE)
    assert titles == [
        "Input",
        "Options",
        "Fetching",
        "Link checking",
        "Connections and credentials",
        "Output",
        "Crawling a site",
        "More than one machine",
    ]
    assert "Examples (in a clone of the repository):" in text
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("fetchpool ")]
    assert examples[0] == "fetchpool urls.example.txt"
    assert "fetchpool --extract README.md -f jsonl | jq -c 'select(.outcome != \"ok\")'" in examples
    assert len(examples) == 4  # another starts with `cat`; none is wrapped at 80 columns
    assert "cat urls.example.txt | fetchpool -w 64 -f csv > results.csv" in text
    assert max(map(len, text.splitlines())) <= 80
