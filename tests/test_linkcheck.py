"""CI link-checking end to end: `--extract` over a docs tree, CI formats, filters, shards, cache."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from clihelpers import (
    parse_csv,
    parse_jsonl,
    read_lines_until,
    run_fetchpool,
    spawn_fetchpool,
    wait_exit,
    write_lines,
)
from httpserver import HTTPTestServer

DATA = Path(__file__).parent / "data"


@pytest.fixture
def docs(tmp_path: Path, server: HTTPTestServer) -> Path:
    """The fixture docs tree with `{BASE}` pointing at the local test server."""
    root = tmp_path / "docs"
    shutil.copytree(DATA / "docs", root)
    for path in root.iterdir():
        path.write_text(path.read_text().replace("{BASE}", server.base))
    return root


Expect = int | str
"""An http(s) link's HTTP status, or a local link's result: `ok`, `missing` or `fragment`."""


def expected_places(server: HTTPTestServer) -> list[tuple[str, int, str, Expect]]:
    """Every place of docs-expected.tsv that a check reports (root-relative links are not
    checked without --root-dir)."""
    rows: list[tuple[str, int, str, Expect]] = []
    for line in (DATA / "docs-expected.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, number, url, status = line.split("\t")
        if status == "root-relative":
            continue
        expect: Expect = int(status) if status.isdigit() else status
        rows.append((name, int(number), url.replace("{BASE}", server.base), expect))
    return rows


def failing(expect: Expect) -> bool:
    """Whether a place with this expected result is reported as a failure."""
    return expect in ("missing", "fragment") if isinstance(expect, str) else expect >= 400


def seen(record: dict[str, Any]) -> Expect:
    """A result as `expected_places` words it."""
    status = record["status"]
    return int(status) if status is not None else str(record["kind"] or "ok")


def run_docs(docs: Path, *args: str) -> tuple[int, bytes, bytes]:
    files = sorted(path.name for path in docs.iterdir())  # relative, as a CI job gives them
    done = run_fetchpool("--extract", *files, *args, "--retries", "0", cwd=docs)
    return done.returncode, done.stdout, done.stderr


def test_extract_reports_every_link_at_every_place(docs: Path, server: HTTPTestServer) -> None:
    status, out, _ = run_docs(docs, "--format", "jsonl")
    assert status == 1
    got = sorted((Path(r["source"]).name, r["line"], r["url"], seen(r)) for r in parse_jsonl(out))
    assert got == sorted(expected_places(server))


def test_a_url_found_in_several_places_is_fetched_once(
    docs: Path, fresh_server: HTTPTestServer
) -> None:
    for path in docs.iterdir():
        text = path.read_text().replace(fresh_server.base, "")
        path.write_text(text)
    # Point the copies at this test's own server, to count its requests exactly.
    page = docs / "twice.md"
    url = fresh_server.url("/ok/twice")
    page.write_text(f"[a]({url})\n\nsee {url} and <{url}>\n")
    done = run_fetchpool("--extract", page, "--format", "jsonl")
    records = parse_jsonl(done.stdout)
    assert [(r["line"], r["outcome"]) for r in records] == [(1, "ok"), (3, "ok"), (3, "ok")]
    assert fresh_server.hits("/ok/twice") == 1


def test_github_format_names_file_and_line_of_each_failing_place(
    docs: Path, server: HTTPTestServer
) -> None:
    status, out, _ = run_docs(docs, "--format", "github")
    assert status == 1
    lines = out.decode().splitlines()
    broken = [(n, line, u) for n, line, u, s in expected_places(server) if failing(s)]
    assert len(lines) == len(broken) + 1  # and the totals line
    for name, line, _url in broken:
        assert any(f"file={name},line={line}," in text for text in lines), (name, line)
    assert all(text.startswith("::error file=") for text in lines[:-1])
    assert lines[-1].startswith("::error title=fetchpool link check::")
    assert f"{len(broken)} failing link places" in lines[-1]


def test_markdown_report_lists_each_failing_place_once(docs: Path, server: HTTPTestServer) -> None:
    status, out, _ = run_docs(docs, "--format", "markdown")
    assert status == 1
    report = out.decode()
    broken = [(n, line) for n, line, _u, s in expected_places(server) if failing(s)]
    for name, line in broken:
        assert report.count(f"| {name}:{line} |") == 1, (name, line)
    assert f"**{len(broken)} failed**" in report


def test_markdown_report_and_stderr_summary_show_the_same_wall_time(
    docs: Path, server: HTTPTestServer
) -> None:
    # The clock stops once, when the last result is in; both reports read it afterwards.
    _status, out, err = run_docs(docs, "--format", "markdown")
    in_report = [line for line in out.decode().splitlines() if " cancelled in " in line]
    assert in_report == [err.decode().splitlines()[0]]


def test_sarif_report_is_valid_and_locates_each_failure(docs: Path, server: HTTPTestServer) -> None:
    status, out, _ = run_docs(docs, "--format", "sarif")
    assert status == 1
    document = json.loads(out)
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    places = sorted(
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in document["runs"][0]["results"]
    )
    broken = sorted((n, line) for n, line, _u, s in expected_places(server) if failing(s))
    assert places == broken


def test_exclude_and_include_filter_links_and_are_counted(
    docs: Path, server: HTTPTestServer
) -> None:
    places = expected_places(server)
    status, out, err = run_docs(docs, "--format", "jsonl", "--exclude", "/status/")
    # What is left fails only by its local links (missing files, anchors).
    assert status == int(any(failing(e) for _, _, u, e in places if "/status/" not in u))
    records = parse_jsonl(out)
    assert records
    assert all("/status/" not in r["url"] for r in records)
    assert b"excluded" in err
    assert sorted(r["url"] for r in records) == sorted(
        u for _, _, u, _ in places if "/status/" not in u
    )
    assert f"{sum('/status/' in u for _, _, u, _ in places)} excluded".encode() in err
    status, out, _ = run_docs(docs, "--format", "jsonl", "--include", "notes")
    wanted = {n for n, _, u, _ in places if "notes" in u}
    assert {Path(r["source"]).name for r in parse_jsonl(out)} == wanted
    assert all("notes" in r["url"] for r in parse_jsonl(out))
    included = sorted(r["url"] for r in parse_jsonl(out))
    assert included == sorted(u for _, _, u, _ in places if "notes" in u)
    assert included  # not vacuous
    assert status == 1  # some of them are broken


def test_shards_partition_the_run_with_no_overlap(tmp_path: Path, server: HTTPTestServer) -> None:
    # Hosts across the loopback range; only 127.0.0.1 and localhost answer, and a
    # connection refused is a result like any other.
    hosts = ["127.0.0.1", "localhost", *(f"127.0.0.{i}" for i in range(2, 12))]
    urls = [f"http://{h}:{server.port}/ok/{i}" for h in hosts for i in range(3)]
    path = write_lines(tmp_path / "urls.txt", urls)
    whole = run_fetchpool(path, "--format", "csv", "--retries", "0")
    _, all_rows = parse_csv(whole.stdout)
    assert len(all_rows) == len(urls)
    shards: list[set[str]] = []
    for k in range(1, 5):
        done = run_fetchpool(path, "--format", "csv", "--retries", "0", "--shard", f"{k}/4")
        _, rows = parse_csv(done.stdout)
        shards.append({row["url"] for row in rows})
        assert f"{len(urls) - len(rows)} in other shards".encode() in done.stderr
    assert set().union(*shards) == {row["url"] for row in all_rows}
    assert sum(len(s) for s in shards) == len(urls)  # no overlap
    assert sum(1 for s in shards if s) >= 2  # the hosts really were spread


def test_cache_skips_ok_results_and_never_keeps_failures(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    cache = tmp_path / "cache.jsonl"
    urls = [fresh_server.url("/ok/cached"), fresh_server.url("/status/404/never")]
    path = write_lines(tmp_path / "urls.txt", urls)
    first = run_fetchpool(path, "--cache", cache, "--format", "jsonl")
    assert first.returncode == 1
    assert [r["cached"] for r in parse_jsonl(first.stdout)] == [False, False]
    second = run_fetchpool(path, "--cache", cache, "--format", "jsonl")
    records = {r["url"]: r for r in parse_jsonl(second.stdout)}
    assert records[urls[0]]["outcome"] == "ok"
    assert records[urls[0]]["cached"] is True  # served from the cache, and marked so
    assert records[urls[1]]["cached"] is False
    assert fresh_server.hits("/ok/cached") == 1  # the second run used the cache
    assert fresh_server.hits("/status/404/never") == 2  # failures are fetched again
    third = run_fetchpool(path, "--cache", cache, "--max-cache-age", "0s", "--format", "jsonl")
    assert third.returncode == 1
    assert fresh_server.hits("/ok/cached") == 2


def test_accept_timeouts_counts_a_timeout_as_ok(tmp_path: Path, server: HTTPTestServer) -> None:
    path = write_lines(tmp_path / "urls.txt", [server.url("/hang/accept-timeouts")])
    done = run_fetchpool(path, "--timeout", "0.3", "--accept-timeouts", "--format", "jsonl")
    (record,) = parse_jsonl(done.stdout)
    assert record["outcome"] == "ok"
    assert done.returncode == 0


def test_options_can_be_set_in_pyproject_and_the_command_line_wins(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.fetchpool]\nformat = "jsonl"\nworkers = 2\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    path = write_lines(nested / "urls.txt", [server.url("/ok/pyproject")])
    done = run_fetchpool(path, cwd=nested)
    assert parse_jsonl(done.stdout)[0]["outcome"] == "ok"
    done = run_fetchpool(path, "--format", "plain", cwd=nested)
    assert done.stdout.startswith(b"OK\t200\t")


def test_a_bad_value_in_pyproject_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.fetchpool]\nworkers = 0\n")
    done = run_fetchpool("-", input=b"", cwd=tmp_path)
    assert done.returncode == 2
    assert str(tmp_path / "pyproject.toml").encode() in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_broken_pyproject_without_our_table_is_ignored_with_a_warning(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = \n')
    path = write_lines(tmp_path / "urls.txt", [server.url("/ok/broken-pyproject")])
    done = run_fetchpool(path, "--format", "jsonl", cwd=tmp_path)
    assert done.returncode == 0
    assert parse_jsonl(done.stdout)[0]["outcome"] == "ok"
    warning, *_summary = done.stderr.decode().splitlines()
    assert warning.startswith(f"fetchpool: warning: {tmp_path / 'pyproject.toml'}: ignored")


def test_a_broken_pyproject_with_our_table_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.fetchpool]\nworkers = = 3\n")
    done = run_fetchpool("-", input=b"", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith(f"fetchpool: error: {tmp_path / 'pyproject.toml'}: invalid TOML")


def test_cache_is_written_even_after_ctrl_c(tmp_path: Path, server: HTTPTestServer) -> None:
    cache = tmp_path / "cache.jsonl"
    ok = server.url("/ok/before-ctrl-c")
    path = write_lines(tmp_path / "urls.txt", [ok, server.url("/hang/ctrl-c")])
    proc = spawn_fetchpool(path, "--cache", cache, "--workers", "2", "--format", "jsonl")
    first = read_lines_until(proc, 1, timeout=10)
    assert json.loads(first[0])["url"] == ok
    proc.send_signal(signal.SIGINT)
    wait_exit(proc, 10)
    assert proc.returncode == 130
    assert ok in cache.read_text()
    assert "/hang/" not in cache.read_text()  # a cancelled URL is not an OK result


def test_filtered_out_links_stay_silent_even_when_the_run_is_cut_short(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    urls = [server.url(f"/delay/200/{tag}{i}") for i in range(100) for tag in ("keep", "skip")]
    path = write_lines(tmp_path / "urls.txt", urls)
    done = run_fetchpool(path, "--exclude", "skip", "--max-time", "0.5", "-w", "2", "-f", "jsonl")
    assert done.returncode == 1
    records = parse_jsonl(done.stdout)
    assert records
    assert all("skip" not in r["url"] for r in records)


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_a_result_served_from_the_cache_is_marked_cached(
    tmp_path: Path, fresh_server: HTTPTestServer, fmt: str
) -> None:
    cache = tmp_path / "cache.jsonl"
    urls = [fresh_server.url("/ok/marked"), fresh_server.url("/redirect/1")]
    path = write_lines(tmp_path / "urls.txt", urls)
    first = run_fetchpool(path, "--cache", cache, "--format", fmt)
    second = run_fetchpool(path, "--cache", cache, "--format", fmt)
    assert first.returncode == second.returncode == 0
    assert fresh_server.hits("/ok/marked") == 1
    if fmt == "csv":
        assert [row["cached"] for row in parse_csv(first.stdout)[1]] == ["False", "False"]
        assert [row["cached"] for row in parse_csv(second.stdout)[1]] == ["True", "True"]
        return
    before = [line for line in first.stdout.decode().splitlines() if line.startswith("OK ")]
    after = [line for line in second.stdout.decode().splitlines() if line.startswith("OK ")]
    assert len(before) == len(after) == 2
    assert not any("cached" in line for line in before)
    assert all(" cached" in line for line in after)
    assert any(" cached → " in line for line in after)  # and the redirect's target after it
