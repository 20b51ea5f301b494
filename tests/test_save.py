"""`--save`: a readable, unique name per URL inside the directory, written atomically, and
bodies a server compresses anyway decoded as a stream in bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clihelpers import FETCHPOOL, RUN_TIMEOUT, cli_env, parse_jsonl, run_fetchpool, write_lines
from httpserver import HTTPTestServer, sample_body

from fetchpool._errors import UsageError
from fetchpool._save import MAX_NAME_BYTES, SaveDir, file_name_for_url

BASE = "http://127.0.0.1:8080"

HOSTILE_URLS = [
    f"{BASE}/../../etc/passwd",
    f"{BASE}/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    f"{BASE}/%2E%2E/%2E%2E/etc/passwd",
    f"{BASE}/..%2f..%2fx",
    f"{BASE}/%252e%252e%252fx",  # double-encoded: decoded once only
    f"{BASE}//etc/passwd",
    f"{BASE}/C:/Windows/x",
    f"{BASE}/C:%5CWindows%5Cx",
    f"{BASE}/a%00b",
    f"{BASE}/a%0a%0db%1b[31m",
    f"{BASE}/" + "a" * 1000,
    f"{BASE}/" + "é" * 300,
    f"{BASE}/" + "日本" * 150 + ".html",
    f"{BASE}/CON",
    f"{BASE}/aux.txt",
    f"{BASE}/nul",
    f"{BASE}/COM1.log",
    f"{BASE}/trailing...",
    f"{BASE}/trailing. . ",
    f"{BASE}/?q=../../x",
    f"{BASE}/x?q=%2F..%2F..%2Fetc%2Fpasswd",
    f"{BASE}\\..\\..\\x",
    f"{BASE}/\\..\\..\\x",
    f"{BASE}/%5c..%5c..%5cx",
    f'{BASE}/<>:"|?*',
    f"{BASE}/evil%E2%80%AEgnp.exe",  # right-to-left override
    "http://bücher.example/straße",
    "http://xn--bcher-kva.example/x",
    "http://[::1]:8080/x",
    "http://user:secret@127.0.0.1/x",
    "http://con/",
    "http://aux.txt/",
    "http://..../x",
    "http://-rf/x",
    "http://127.0.0.1",
    "http://127.0.0.1/",
    f"{BASE}/.",
    f"{BASE}/..",
    f"{BASE}/.hidden",
    "http://" + "h" * 250 + ".example/" + "p" * 250 + "?" + "q" * 250,
]

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "123456789"
}


def _assert_safe_name(name: str) -> None:
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert not name.startswith(".")
    assert not name.endswith((".", " "))
    assert not any(c in name for c in '<>:"|?*')
    assert all(ord(c) >= 0x20 and c not in "\x7f\u202e" for c in name)
    assert len(name.encode("utf-8")) <= 255
    assert name.split(".", 1)[0].rstrip(" ").upper() not in WINDOWS_RESERVED


@pytest.fixture
def save_dir(tmp_path: Path) -> SaveDir:
    return SaveDir(tmp_path / "out")


def _write(save_dir: SaveDir, url: str, body: bytes) -> Path:
    final = save_dir.reserve(url)
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(body)
    save_dir.commit(temp, final)
    return final


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_every_hostile_url_is_saved_inside_the_directory(save_dir: SaveDir, url: str) -> None:
    final = _write(save_dir, url, b"body")
    assert final.parent == save_dir.root
    assert final.resolve().parent == save_dir.root.resolve()
    assert final.read_bytes() == b"body"
    _assert_safe_name(final.name)
    # Nothing else appeared anywhere: one regular file, directly in the save directory.
    assert list(save_dir.root.iterdir()) == [final]


def test_hostile_urls_in_one_run_all_get_distinct_files(save_dir: SaveDir) -> None:
    urls = [*HOSTILE_URLS, *HOSTILE_URLS]  # the second round must not reuse a name
    finals = [_write(save_dir, url, url.encode()) for url in urls]
    assert len({p.name.casefold() for p in finals}) == len(urls)
    for url, final in zip(urls, finals, strict=True):
        assert final.parent == save_dir.root
        assert final.read_bytes() == url.encode()
    assert sorted(save_dir.root.iterdir()) == sorted(finals)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://example.org/docs/guide.html", "example.org_docs_guide.html"),
        ("http://example.org/", "example.org_index.html"),
        ("http://example.org", "example.org_index.html"),
        ("http://example.org/docs/", "example.org_docs_index.html"),
        ("http://example.org:8080/a%20b.txt", "example.org_8080_a b.txt"),
        ("http://example.org/list?page=2", "example.org_list@page=2"),
        ("http://example.org/img.png?size=2&x=y", "example.org_img@size=2&x=y.png"),
        ("http://example.org/../../etc/passwd", "example.org_etc_passwd"),
        ("http://example.org/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "example.org_.._.._etc_passwd"),
        ("http://example.org/%2541", "example.org_%41"),
        ("http://[::1]:8080/x", "__1_8080_x"),
        ("http://bücher.example/straße", "bücher.example_straße"),
        ("http://xn--bcher-kva.example/stra%C3%9Fe", "bücher.example_straße"),
        ("http://example.org/\\..\\..\\etc\\passwd", "example.org_etc_passwd"),
        ("http://example.org/a?b=\\c", "example.org_a@b=_c"),
        ("http://user:pw@example.org/x#frag", "example.org_x"),
        ("http://aux.txt/", "_aux.txt_index.html"),
    ],
)
def test_names_are_readable_and_derived_from_the_url(url: str, name: str) -> None:
    assert file_name_for_url(url) == name


def test_the_same_url_always_gets_the_same_name() -> None:
    url = "http://example.org/a/b.html?x=1"
    assert file_name_for_url(url) == file_name_for_url(url)


def test_different_queries_do_not_collide(save_dir: SaveDir) -> None:
    one = save_dir.reserve("http://example.org/list?page=1")
    two = save_dir.reserve("http://example.org/list?page=2")
    assert one != two
    assert "page=1" in one.name
    assert "page=2" in two.name


def test_collisions_get_a_counter_before_the_extension(save_dir: SaveDir) -> None:
    names = [save_dir.reserve("http://example.org/a.html").name for _ in range(3)]
    assert names == ["example.org_a.html", "example.org_a-1.html", "example.org_a-2.html"]


def test_a_counter_skips_names_another_url_already_took(save_dir: SaveDir) -> None:
    assert save_dir.reserve("http://example.org/a-1.html").name == "example.org_a-1.html"
    assert save_dir.reserve("http://example.org/a.html").name == "example.org_a.html"
    assert save_dir.reserve("http://example.org/a.html").name == "example.org_a-2.html"


def test_names_differing_only_in_case_are_distinct_files(save_dir: SaveDir) -> None:
    lower = save_dir.reserve("http://example.org/readme")
    upper = save_dir.reserve("http://example.org/README")
    assert lower.name.casefold() != upper.name.casefold()


def test_over_long_names_are_cut_to_fit_and_stay_unique(save_dir: SaveDir) -> None:
    first = save_dir.reserve("http://example.org/" + "a" * 1000 + ".txt")
    second = save_dir.reserve("http://example.org/" + "a" * 999 + "b.txt")
    third = save_dir.reserve("http://example.org/" + "é" * 300)
    for final in (first, second, third):
        assert len(final.name.encode("utf-8")) <= MAX_NAME_BYTES
    assert first.name.endswith(".txt")
    assert first.name != second.name  # a hash of the whole URL tells them apart
    third.name.encode("utf-8").decode("utf-8")  # cut on a character boundary


def test_temporary_names_of_the_longest_names_fit_the_file_system(save_dir: SaveDir) -> None:
    url = "http://example.org/" + "日" * 400
    for _ in range(12):  # push into two-digit collision counters
        final = save_dir.reserve(url)
        file, temp = save_dir.open_temp(final)
        file.close()
        assert len(temp.name.encode("utf-8")) <= 255
        save_dir.commit(temp, final)


def test_reserve_never_hands_out_a_name_twice_across_threads(save_dir: SaveDir) -> None:
    results: list[Path] = []
    lock = threading.Lock()

    def reserve_many() -> None:
        mine = [save_dir.reserve("http://example.org/same.html") for _ in range(200)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=reserve_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 1600
    assert len(set(results)) == 1600


def test_body_is_under_a_temporary_name_until_commit(save_dir: SaveDir) -> None:
    final = save_dir.reserve("http://example.org/file.bin")
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"partial")
        file.flush()
        assert temp.exists()
        assert temp.parent == save_dir.root
        assert temp.name.startswith(".")
        assert not final.exists()
        file.write(b" and the rest")
    assert not final.exists()
    save_dir.commit(temp, final)
    assert final.read_bytes() == b"partial and the rest"
    assert not temp.exists()
    assert list(save_dir.root.iterdir()) == [final]


def test_discard_leaves_no_file_under_either_name(save_dir: SaveDir) -> None:
    final = save_dir.reserve("http://example.org/file.bin")
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"half a body")
    save_dir.discard(temp)
    save_dir.discard(temp)  # twice is harmless
    assert not temp.exists()
    assert not final.exists()
    assert list(save_dir.root.iterdir()) == []


def test_discard_refuses_a_path_that_is_not_a_temporary_file(save_dir: SaveDir) -> None:
    final = _write(save_dir, "http://example.org/keep.txt", b"keep")
    with pytest.raises(ValueError, match="not a temporary file"):
        save_dir.discard(final)
    assert final.read_bytes() == b"keep"


def test_temporary_files_are_created_exclusively(save_dir: SaveDir) -> None:
    final = save_dir.reserve("http://example.org/x")
    temps = set()
    for _ in range(20):
        file, temp = save_dir.open_temp(final)
        file.close()
        temps.add(temp)
    assert len(temps) == 20


def test_an_existing_file_is_not_overwritten_the_download_takes_a_new_name(
    tmp_path: Path,
) -> None:
    save_dir = SaveDir(tmp_path)
    url = "http://example.org/report.csv"
    existing = tmp_path / file_name_for_url(url)
    existing.write_bytes(b"precious")
    final = save_dir.reserve(url)
    assert final == tmp_path / "example.org_report-1.csv"
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"new")
    save_dir.commit(temp, final)
    assert existing.read_bytes() == b"precious"
    assert final.read_bytes() == b"new"


def test_with_overwrite_an_existing_file_keeps_its_name_and_is_replaced(tmp_path: Path) -> None:
    save_dir = SaveDir(tmp_path, overwrite=True)
    url = "http://example.org/report.csv"
    existing = tmp_path / file_name_for_url(url)
    existing.write_bytes(b"old")
    final = save_dir.reserve(url)
    assert final == existing
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"new")
    save_dir.commit(temp, final)
    assert existing.read_bytes() == b"new"


def test_a_file_appearing_after_reserve_is_not_overwritten(save_dir: SaveDir) -> None:
    final = save_dir.reserve("http://example.org/race")
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"ours")
    final.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        save_dir.commit(temp, final)
    assert final.read_bytes() == b"someone else's"
    assert [p.name for p in save_dir.root.iterdir()] == [final.name]


def test_overwrite_replaces_an_existing_file(tmp_path: Path) -> None:
    url = "http://example.org/report.csv"
    (tmp_path / file_name_for_url(url)).write_bytes(b"old")
    final = _write(SaveDir(tmp_path, overwrite=True), url, b"new")
    assert final.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [final]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_symlink_at_the_final_name_is_never_written_through(
    tmp_path: Path, overwrite: bool
) -> None:
    root = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside")
    root.mkdir()
    url = "http://example.org/link"
    link = root / file_name_for_url(url)
    link.symlink_to(outside)
    save_dir = SaveDir(root, overwrite=overwrite)
    final = save_dir.reserve(url)
    assert (final == link) is overwrite  # without --overwrite the link's name is skipped
    file, temp = save_dir.open_temp(final)
    with file:
        file.write(b"body")
    if overwrite:
        save_dir.commit(temp, final)
        assert not final.is_symlink()  # the link itself was replaced
        assert final.read_bytes() == b"body"
    else:
        # Even committing onto the link's name (a race) refuses rather than writes through.
        with pytest.raises(FileExistsError):
            save_dir.commit(temp, link)
        assert link.is_symlink()
    assert outside.read_bytes() == b"outside"


def test_a_dangling_symlink_at_the_final_name_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    target = tmp_path / "created-through-link"
    url = "http://example.org/dangling"
    (root / file_name_for_url(url)).symlink_to(target)
    save_dir = SaveDir(root)
    link = root / file_name_for_url(url)
    file, temp = save_dir.open_temp(link)
    with file:
        file.write(b"body")
    with pytest.raises(FileExistsError):
        save_dir.commit(temp, link)
    assert not target.exists()
    assert save_dir.reserve(url) != link  # the dangling link's name is not handed out


def test_the_directory_is_created_if_missing(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    SaveDir(root)
    assert root.is_dir()


def test_a_file_in_place_of_the_directory_is_a_usage_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        SaveDir(not_a_dir)
    with pytest.raises(UsageError, match="cannot create"):
        SaveDir(not_a_dir / "sub")


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() == 0, reason="root writes anywhere")
def test_an_unwritable_directory_is_a_usage_error(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="not writable"):
            SaveDir(root)
    finally:
        root.chmod(0o700)


def test_open_temp_refuses_a_path_outside_the_directory(save_dir: SaveDir, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a path reserved"):
        save_dir.open_temp(tmp_path / "elsewhere")


def test_a_url_that_cannot_be_split_is_a_value_error(save_dir: SaveDir) -> None:
    with pytest.raises(ValueError, match="Invalid IPv6"):
        save_dir.reserve("http://[::1/x")
    assert list(save_dir.root.iterdir()) == []


# -- compressed bodies (the contract's "The real network: Compressed bodies") -----------------

MIB = 1024 * 1024


def save_run(
    tmp_path: Path, urls: list[str], *args: str
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, dict[str, Any]], Path]:
    """Run `fetchpool URLS --save DIR --format jsonl *args`; the records by URL, and DIR."""
    out = tmp_path / "out"
    path = write_lines(tmp_path / "urls.txt", urls)
    done = run_fetchpool(path, "--save", out, "--format", "jsonl", *args)
    records = {r["url"]: r for r in parse_jsonl(done.stdout)}
    assert len(records) == len(urls), done.stderr
    return done, records, out


def test_save_asks_for_identity_and_a_plain_run_for_gzip_or_deflate(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    saved_url = fresh_server.url("/headers/saved")
    _, records, _ = save_run(tmp_path, [saved_url])
    echoed = json.loads(Path(records[saved_url]["saved_to"]).read_bytes())
    assert ["Accept-Encoding", "identity"] in echoed["headers"]
    run_fetchpool(write_lines(tmp_path / "plain.txt", [fresh_server.url("/headers/plain")]))
    (plain,) = [r for r in fresh_server.requests if r.path == "/headers/plain"]
    assert plain.header("Accept-Encoding") == "gzip, deflate"


def test_an_accept_encoding_given_with_dash_h_is_sent_as_given_with_save(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    url = fresh_server.url("/encoded/gzip/100000/asked")
    _, records, _ = save_run(tmp_path, [url], "-H", "accept-encoding: gzip")
    (request,) = fresh_server.requests
    assert [v for k, v in request.headers if k.lower() == "accept-encoding"] == ["gzip"]
    assert Path(records[url]["saved_to"]).read_bytes() == sample_body(100_000)


ENCODINGS = [
    "gzip",
    "x-gzip",
    "deflate",
    "deflate-raw",
    "gzip-multi",
    "gzip-padded",
    "gzip-gzip",
    "deflate-gzip",
    "identity",
]


def test_a_body_the_server_compresses_anyway_is_saved_decoded(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    size = 700_000  # more than one read, and more than one decoded piece
    urls = [server.url(f"/encoded/{name}/{size}/decoded") for name in ENCODINGS]
    done, records, out = save_run(tmp_path, urls)
    assert done.returncode == 0, done.stdout
    for url in urls:
        record = records[url]
        assert (record["outcome"], record["bytes"]) == ("ok", size), record
        assert Path(record["saved_to"]).read_bytes() == sample_body(size), url
    assert len(list(out.iterdir())) == len(urls)  # no temporary file left behind


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("gzip-truncated", "truncated gzip body"),
        ("gzip-corrupt", "corrupt gzip body: incorrect data check"),
        ("gzip-trailing", "corrupt gzip body: data after the end is not gzip"),
        ("br", "cannot decode Content-Encoding 'br'"),
        ("zstd", "cannot decode Content-Encoding 'zstd'"),
    ],
)
def test_a_body_that_cannot_be_decoded_is_a_protocol_fail_and_no_file(
    tmp_path: Path, server: HTTPTestServer, name: str, error: str
) -> None:
    url = server.url(f"/encoded/{name}/300000/undecodable")
    done, records, out = save_run(tmp_path, [url])
    assert done.returncode == 1
    record = records[url]
    assert (record["outcome"], record["kind"], record["error"]) == ("fail", "protocol", error)
    assert (record["status"], record["saved_to"]) == (200, None)
    assert list(out.iterdir()) == []  # neither a final file nor a temporary one


def test_max_filesize_counts_the_decoded_bytes_written(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    at_limit = server.url("/encoded/gzip/300000/at-limit")
    over = server.url("/encoded/deflate-gzip/300001/over")
    # 20 bytes whose gzip (Content-Length 40) is larger than the limit: the file is not.
    tiny = server.url("/encoded/gzip/20/tiny")
    bomb = server.url(f"/gzip-bomb/{256 * MIB}/limited")
    started = time.monotonic()
    _, records, out = save_run(tmp_path, [at_limit, over, tiny, bomb], "--max-filesize", "300000")
    assert time.monotonic() - started < 10
    assert records[at_limit]["outcome"] == records[tiny]["outcome"] == "ok"
    assert Path(records[at_limit]["saved_to"]).stat().st_size == 300_000
    assert Path(records[tiny]["saved_to"]).read_bytes() == sample_body(20)
    for url in (over, bomb):
        record = records[url]
        assert (record["kind"], record["saved_to"]) == ("size", None)
        assert record["error"] == "body over --max-filesize (300,000 bytes)"
        assert record["bytes"] <= 300_000  # what was written before it stopped
    assert len(list(out.iterdir())) == 2


# Runs argv[3:] with stdout to the file argv[1], killed after argv[2] seconds, then prints its
# exit status and peak RSS. Linux keeps the high-water RSS of the memory a process had before
# exec, and subprocess forks with vfork: measured straight from the test process, fetchpool's
# peak would be at least the test process's own. This small process is the one it forks from.
_MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    proc = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=out)
try:
    status = proc.wait(float(sys.argv[2]))
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    status = None
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_measuring_peak_rss(*args: str | os.PathLike[str], stdout: Path) -> tuple[int, float]:
    """Run fetchpool (bounded), stdout to a file; its exit status and its peak RSS in MB."""
    argv = [sys.executable, "-c", _MEASURE, str(stdout), str(RUN_TIMEOUT), *FETCHPOOL]
    done = subprocess.run(
        [*argv, *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=RUN_TIMEOUT + 10,
        env=cli_env(),
        check=True,
    )
    status, max_rss_kib = done.stdout.split()
    assert status != b"None", f"fetchpool did not exit within {RUN_TIMEOUT} s"
    return int(status), int(max_rss_kib) * 1024 / 1e6  # Linux: ru_maxrss is in KiB


def test_eight_workers_saving_gzip_bombs_stay_under_150_mb(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    # Each bomb is about 1 KB of gzip per MiB of zeros. Before the bounded decoder, one read of
    # one inflated to up to 256 MB at once, and this run peaked near 1 GB.
    whole = [server.url(f"/gzip-bomb/{32 * MIB}/whole-{i}") for i in range(4)]
    stopped = [server.url(f"/gzip-bomb/{256 * MIB}/stopped-{i}") for i in range(4)]
    out = tmp_path / "out"
    urls = write_lines(
        tmp_path / "urls.txt", [u for pair in zip(whole, stopped, strict=True) for u in pair]
    )
    report = tmp_path / "report.jsonl"
    status, peak_mb = run_measuring_peak_rss(
        urls,
        "--save",
        out,
        "--workers",
        "8",
        "--max-filesize",
        "50000000",
        "--format",
        "jsonl",
        stdout=report,
    )
    records = {r["url"]: r for r in parse_jsonl(report.read_bytes())}
    assert status == 1
    for url in whole:
        assert records[url]["bytes"] == 32 * MIB
        assert Path(records[url]["saved_to"]).stat().st_size == 32 * MIB
    assert [records[url]["kind"] for url in stopped] == ["size"] * 4
    assert 10 < peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
