"""A fetcher, not only a checker: --save, --max-time, --http2, proxies, --rate (credentials
and cookies end to end are in test_headers.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from clihelpers import FETCHPOOL, cli_env, parse_jsonl, run_fetchpool, write_lines
from frontends import ForwardProxy, H2Front
from httpserver import HTTPTestServer


def run_with_env(
    *args: Any, env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*FETCHPOOL, *map(str, args)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=cli_env(env),
        check=False,
    )


# -- --save ----------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "/ok/..%2F..%2F..%2Fetc%2Fpasswd",
    "/ok/%2e%2e%2f%2e%2e%2fescape",
    "/ok/..%5C..%5Cwindows",
    "/ok/%00nul",
    "/ok/CON",
    "/ok/aux.txt",
    "/ok/" + "x" * 600,
    "/ok/trailing.. ",
    "/ok/?q=../../x",
]


def test_save_streams_every_ok_body_to_a_file_inside_the_directory(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    out = tmp_path / "out"
    urls = [server.url(p.replace(" ", "%20")) for p in HOSTILE_PATHS] + [
        server.url("/bytes/3000000/big"),
        server.url("/status/404/not-saved"),
    ]
    path = write_lines(tmp_path / "urls.txt", urls)
    done = run_fetchpool(path, "--save", out, "--format", "jsonl")
    records = {r["url"]: r for r in parse_jsonl(done.stdout)}
    assert len(records) == len(urls)
    saved = [r["saved_to"] for r in records.values() if r["saved_to"]]
    assert len(saved) == len(HOSTILE_PATHS) + 1
    assert len(set(saved)) == len(saved)
    for name in saved:
        file = Path(name)
        assert file.resolve().parent == out.resolve(), name
        assert len(file.name.encode()) <= 255
    big = records[server.url("/bytes/3000000/big")]
    assert Path(big["saved_to"]).stat().st_size == 3_000_000  # no 1 MiB cap when saving
    assert big["bytes"] == 3_000_000
    assert records[server.url("/status/404/not-saved")]["saved_to"] is None
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(s).name for s in saved)
    assert not (tmp_path / "etc").exists()


def test_an_interrupted_or_failed_download_leaves_no_file(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    out = tmp_path / "out"
    path = write_lines(tmp_path / "urls.txt", [server.url("/trickle/save")])
    done = run_fetchpool(path, "--save", out, "--timeout", "0.5", "--format", "jsonl")
    (record,) = parse_jsonl(done.stdout)
    assert record["kind"] == "timeout"
    assert record["saved_to"] is None
    assert list(out.iterdir()) == []  # neither a final file nor a temporary one


def test_max_filesize_turns_a_larger_body_into_a_fail_of_kind_size(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    out = tmp_path / "out"
    urls = [server.url("/bytes/10000000000/huge"), server.url("/chunked/5000000/c")]
    path = write_lines(tmp_path / "urls.txt", urls)
    started = time.monotonic()
    done = run_fetchpool(path, "--save", out, "--max-filesize", "1000000", "--format", "jsonl")
    assert time.monotonic() - started < 15
    records = parse_jsonl(done.stdout)
    assert [r["kind"] for r in records] == ["size", "size"]
    assert all("--max-filesize" in r["error"] for r in records)
    assert list(out.iterdir()) == []


def test_existing_files_are_not_overwritten_unless_asked(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    out = tmp_path / "out"
    path = write_lines(tmp_path / "urls.txt", [server.url("/ok/keep.txt")])
    first = parse_jsonl(run_fetchpool(path, "--save", out, "--format", "jsonl").stdout)[0]
    Path(first["saved_to"]).write_text("precious")
    second = parse_jsonl(run_fetchpool(path, "--save", out, "--format", "jsonl").stdout)[0]
    assert second["saved_to"] != first["saved_to"]
    assert Path(first["saved_to"]).read_text() == "precious"
    third = parse_jsonl(
        run_fetchpool(path, "--save", out, "--overwrite", "--format", "jsonl").stdout
    )[0]
    assert third["saved_to"] == first["saved_to"]
    assert Path(first["saved_to"]).read_text() == "ok\n"


def test_save_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run_fetchpool("-", "--save", blocker, input=b"http://127.0.0.1:9/\n")
    assert done.returncode == 2
    assert b"--save" in done.stderr


# -- --max-time -------------------------------------------------------------------------------


def test_max_time_cancels_unfinished_urls_and_exits_1(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    urls = [server.url("/ok/in-time")] + [server.url(f"/hang/deadline/{i}") for i in range(6)]
    path = write_lines(tmp_path / "urls.txt", urls)
    started = time.monotonic()
    done = run_fetchpool(path, "--max-time", "1", "--workers", "3", "--format", "jsonl")
    assert time.monotonic() - started < 5
    assert done.returncode == 1
    records = parse_jsonl(done.stdout)
    assert len(records) == len(urls)
    cancelled = [r for r in records if r["outcome"] == "cancelled"]
    assert len(cancelled) == 6
    assert all(r["error"] == "run deadline reached" for r in cancelled)
    assert b"run deadline reached" in done.stderr


# -- --http2 ----------------------------------------------------------------------------------


def test_http2_is_negotiated_and_reported(
    tmp_path: Path, h2_server: H2Front, tls_ca_file: Path
) -> None:
    path = write_lines(tmp_path / "urls.txt", [h2_server.url("/ok/h2")])
    env = {"SSL_CERT_FILE": str(tls_ca_file)}
    with_h2 = run_with_env(path, "--http2", "--format", "jsonl", env=env)
    (record,) = parse_jsonl(with_h2.stdout)
    assert record["outcome"] == "ok", record
    assert record["http_version"] == "HTTP/2"
    without = run_with_env(path, "--format", "csv", env=env)
    assert b"HTTP/1.1" in without.stdout


# -- proxies ----------------------------------------------------------------------------------


def test_proxy_option_sends_every_request_through_the_proxy(
    tmp_path: Path, server: HTTPTestServer, proxy: ForwardProxy
) -> None:
    url = server.url("/ok/via-proxy")
    path = write_lines(tmp_path / "urls.txt", [url])
    done = run_fetchpool(path, "--proxy", f"http://127.0.0.1:{proxy.port}", "--format", "jsonl")
    assert parse_jsonl(done.stdout)[0]["outcome"] == "ok"
    assert proxy.targets == [url]


def test_http_proxy_environment_is_honoured_and_no_proxy_too(
    tmp_path: Path, server: HTTPTestServer, proxy: ForwardProxy
) -> None:
    url = server.url("/ok/env-proxy")
    path = write_lines(tmp_path / "urls.txt", [url])
    env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "", "no_proxy": ""}
    done = run_with_env(path, "--format", "jsonl", env=env)
    assert parse_jsonl(done.stdout)[0]["outcome"] == "ok"
    assert proxy.targets == [url]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    run_with_env(path, "--format", "jsonl", env=env)
    assert proxy.targets == [url]  # not through the proxy the second time


def test_a_proxy_url_from_the_environment_that_cannot_be_used_is_a_usage_error(
    tmp_path: Path,
) -> None:
    path = write_lines(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    done = run_with_env(
        path, env={"HTTPS_PROXY": "ftp://proxy.test", "NO_PROXY": "", "no_proxy": ""}
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        b"fetchpool: error: invalid proxy URL 'ftp://proxy.test' in HTTPS_PROXY"
    )
    assert len(done.stderr.splitlines()) == 1


# -- the request head ---------------------------------------------------------------------------


def _request_at(server: HTTPTestServer, path: str) -> list[tuple[str, str]]:
    (request,) = [r for r in server.requests if r.path == path]
    return request.headers


def test_request_head_has_one_host_and_the_default_headers(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    urls = [fresh_server.url("/headers/a"), fresh_server.url("/headers/b?q=1")]
    path = write_lines(tmp_path / "urls.txt", urls)
    assert run_fetchpool(path, "--method", "HEAD").returncode == 0
    assert run_fetchpool(path).returncode == 0
    netloc = urlsplit(urls[0]).netloc
    for request in fresh_server.requests:
        names = [name.lower() for name, _ in request.headers]
        assert sorted(names) == ["accept", "accept-encoding", "host", "user-agent"]
        assert request.header("Host") == netloc
        assert request.header("Accept") == "*/*"
    assert [r.method for r in fresh_server.requests] == ["HEAD", "HEAD", "GET", "GET"]
    assert fresh_server.requests[-1].target == "/headers/b?q=1"


def test_host_given_with_dash_h_replaces_the_default_one(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    path = write_lines(tmp_path / "urls.txt", [fresh_server.url("/headers/vhost")])
    assert run_fetchpool(path, "-H", "Host: example.test").returncode == 0
    hosts = [v for k, v in _request_at(fresh_server, "/headers/vhost") if k.lower() == "host"]
    assert hosts == ["example.test"]


# -- --rate -----------------------------------------------------------------------------------


def test_rate_limits_requests_started_per_second(tmp_path: Path, server: HTTPTestServer) -> None:
    urls = [server.url(f"/ok/rate/{i}") for i in range(11)]
    path = write_lines(tmp_path / "urls.txt", urls)
    started = time.monotonic()
    done = run_fetchpool(path, "--rate", "10", "--workers", "8", "--per-host", "4")
    elapsed = time.monotonic() - started
    assert done.returncode == 0
    assert elapsed >= 0.95  # 11 starts at 10/s: the last one at 1.0 s
    assert elapsed < 6


def test_waiting_for_a_rate_slot_does_not_count_against_the_timeout(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    urls = [server.url(f"/ok/rate-queue/{i}") for i in range(5)]
    path = write_lines(tmp_path / "urls.txt", urls)
    started = time.monotonic()
    done = run_fetchpool(path, "--rate", "2", "--workers", "6", "--timeout", "1", "-f", "jsonl")
    assert [r["outcome"] for r in parse_jsonl(done.stdout)] == ["ok"] * 5
    assert time.monotonic() - started >= 1.9  # 5 starts at 2/s: the last one at 2.0 s


def test_bearer_replaces_an_authorization_header_given_with_h(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    path = write_lines(tmp_path / "urls.txt", [fresh_server.url("/headers/one-auth")])
    done = run_fetchpool(path, "-H", "Authorization: Basic zzz", "--bearer", "T", "--cookie", "b=2",
                         "-H", "Cookie: a=1")  # fmt: skip
    assert done.returncode == 0
    (request,) = [r for r in fresh_server.requests if r.path == "/headers/one-auth"]
    auth = [v for k, v in request.headers if k.lower() == "authorization"]
    cookie = [v for k, v in request.headers if k.lower() == "cookie"]
    assert auth == ["Bearer T"]
    assert cookie == ["a=1; b=2"]


@pytest.mark.parametrize(
    "args",
    [
        ["--user-agent", "f\u00fc"],
        ["--user-agent", "a\nb"],
        ["--bearer", "t\u00f6k"],
        ["--bearer", "a\rb"],
        ["-H", "X-A: \u00fc"],
        ["--cookie", "a=\u00fc"],
        ["--user", "a:b\nc"],
    ],
)
def test_a_header_value_that_cannot_be_sent_is_a_usage_error(args: list[str]) -> None:
    done = run_fetchpool(*args, "-", input=b"http://127.0.0.1:9/\n")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert b"Traceback" not in done.stderr


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_an_input_that_fails_mid_read_is_reported_without_a_traceback() -> None:
    done = run_fetchpool("/proc/self/mem", "--format", "plain")
    assert done.returncode == 1
    assert b"cannot read /proc/self/mem" in done.stderr
    assert b"Traceback" not in done.stderr
