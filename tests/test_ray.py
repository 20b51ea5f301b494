"""`--engine ray` on a real local Ray cluster, and the library on Ray Data.

The module starts one Ray head node for its tests, on 127.0.0.100 (Ray keeps other
loopback addresses as given; 127.0.0.1 it would swap for the machine's outward address),
in a session of its own, with token authentication on as a user of Ray 2.60 has it
(`RAY_AUTH_MODE=token`, a token of its own in `RAY_AUTH_TOKEN`). It stops the cluster by
signalling that session's process group, never with `ray stop`, which would kill every
Ray process on the machine. Every packet stays on 127.0.0.0/8.

Without the `ray` extra these tests are skipped, except under CI (the CI variable set),
where they fail: `.ci/run` installs the extra.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clihelpers import (
    FETCHPOOL,
    cli_env,
    parse_jsonl,
    parse_summary,
    read_lines_until,
    wait_exit,
    write_lines,
)
from httpserver import HTTPTestServer, closed_port, wait_until
from netns import NetNS

# A test's own bound includes starting the cluster (the module's first test) or the driver.
pytestmark = [pytest.mark.ray, pytest.mark.timeout(150)]

NODE_IP = "127.0.0.100"
HOSTS = [f"127.0.0.{n}" for n in range(11, 17)]  # one test server on each
CLUSTER_START_TIMEOUT = 90.0
RUN_TIMEOUT = 60.0  # a whole CLI run on the cluster, start-up of the driver included


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Ray tests: install the extra, pip install -e '.[ray]'")
        pytest.skip("the ray extra is not installed (pip install -e '.[ray]')")


@dataclass
class RayCluster:
    """A head node started by the tests: its address and the environment to reach it."""

    address: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A 2-CPU Ray head node on 127.0.0.100, stopped by its process group at the end."""
    _require_ray()
    temp_dir = tempfile.mkdtemp(prefix="fpray-", dir="/tmp")  # Ray's socket paths must be short
    port = _free_port(NODE_IP)
    env = cli_env(
        {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
    )
    env.pop("RAY_ADDRESS", None)
    ray_cli = Path(sys.executable).parent / "ray"
    log_path = Path(temp_dir) / "head.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(ray_cli),
                "start",
                "--head",
                "--block",
                f"--node-ip-address={NODE_IP}",
                f"--port={port}",
                "--num-cpus=2",
                f"--object-store-memory={80 * 1024 * 1024}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped below by that group
        )
    try:
        started = wait_until(
            lambda: proc.poll() is not None or b"Ray runtime started" in log_path.read_bytes(),
            timeout=CLUSTER_START_TIMEOUT,
        )
        if not started or proc.poll() is not None:
            pytest.fail(f"the Ray head did not start: {log_path.read_text(errors='replace')}")
        yield RayCluster(address=f"{NODE_IP}:{port}", env=env, proc=proc)
    finally:
        _stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _session_members(session: int) -> list[int]:
    """PIDs of the processes in a session (Ray's workers each have a process group of their
    own, but stay in the session of the `ray start` that the fixture began)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == session:
                    pids.append(int(entry.name))
    return pids


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the cluster's process group (`ray start --block` then stops its processes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    # Whatever of the session is left (workers, agents): gone now.
    for pid in _session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def servers() -> Iterator[list[HTTPTestServer]]:
    """One test server on each of several loopback addresses: several hosts, several buckets."""
    started = [HTTPTestServer(host=host) for host in HOSTS]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


def _run(
    cluster: RayCluster | None, *args: str | os.PathLike[str], timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """Run fetchpool to its end; with a cluster, `--engine ray` on it."""
    engine = ["--engine", "ray", "--ray-address", cluster.address] if cluster else []
    return subprocess.run(
        [*FETCHPOOL, *engine, *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=cluster.env if cluster else cli_env(),
        check=False,
    )


def _spawn(cluster: RayCluster, *args: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*FETCHPOOL, "--engine", "ray", "--ray-address", cluster.address, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cluster.env,
    )


def _facts(records: Sequence[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((r["url"], r["outcome"], r["status"], r["kind"]) for r in records)


def _mixed_list(servers: list[HTTPTestServer], tag: str) -> list[str]:
    lines = []
    for n, server in enumerate(servers):
        lines += [
            server.url(f"/ok/{tag}/{n}/a"),
            server.url(f"/ok/{tag}/{n}/b"),
            server.url(f"/status/404/{tag}/{n}"),
            server.url(f"/status/500/{tag}/{n}"),
            server.url(f"/delay/200/{tag}/{n}"),
            server.url(f"/redirect/2/{tag}/{n}"),
        ]
    lines += [
        "ftp://example.invalid/file",
        "not a url at all",
        f"http://127.0.0.1:{closed_port()}/refused",
    ]
    return lines


def test_ray_engine_reports_the_same_results_as_a_local_run(
    ray_cluster: RayCluster, servers: list[HTTPTestServer], tmp_path: Path
) -> None:
    urls = write_lines(tmp_path / "urls.txt", _mixed_list(servers, "same"))
    args = ("--format", "jsonl", "--retries", "0", "--timeout", "10", urls)
    local = _run(None, *args)
    on_ray = _run(ray_cluster, "--partition-size", "4", *args)
    assert on_ray.returncode == local.returncode == 1, on_ray.stderr
    assert _facts(parse_jsonl(on_ray.stdout)) == _facts(parse_jsonl(local.stdout))
    assert len(parse_jsonl(on_ray.stdout)) == 6 * len(servers) + 3
    assert parse_summary(on_ray.stderr) == parse_summary(local.stderr)
    assert b"Traceback" not in on_ray.stderr


def test_ray_engine_holds_per_host_across_partitions(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    # Twelve slow URLs of one host in three partitions, on a cluster that could run two
    # partitions at once: a host's partitions run one after another.
    with HTTPTestServer(host="127.0.0.21") as server:
        urls = write_lines(
            tmp_path / "urls.txt", [server.url(f"/delay/300/{i}") for i in range(12)]
        )
        proc = _run(
            ray_cluster,
            *("--workers", "8", "--per-host", "2", "--partition-size", "4", "--format", "jsonl"),
            urls,
        )
        assert proc.returncode == 0, proc.stderr
        assert len(parse_jsonl(proc.stdout)) == 12
        assert server.hits("/delay/") == 12
        assert 1 <= server.max_open_connections <= 2


def test_ray_engine_streams_results_before_the_partition_ends(
    ray_cluster: RayCluster, servers: list[HTTPTestServer], tmp_path: Path
) -> None:
    server = servers[0]
    lines = [server.url(f"/ok/stream/{i}") for i in range(3)]
    lines += [server.url(f"/delay/4000/stream/{i}") for i in range(3)]
    urls = write_lines(tmp_path / "urls.txt", lines)
    # The cluster named by RAY_ADDRESS, as Ray's own tools take it, instead of --ray-address.
    proc = subprocess.Popen(
        [*FETCHPOOL, "--engine", "ray", "--format", "jsonl", "--timeout", "20", str(urls)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ray_cluster.env, "RAY_ADDRESS": ray_cluster.address},
    )
    early = _read_a_line(proc)
    first_at = time.monotonic()
    out, err = wait_exit(proc, timeout=RUN_TIMEOUT)
    ended_at = time.monotonic()
    assert proc.returncode == 0, err
    records = parse_jsonl(early + out)
    assert records[0]["url"].startswith(server.url("/ok/stream/"))
    assert len(records) == 6
    # The slow URLs take 4 s; the fast ones' results came out well before them.
    assert ended_at - first_at > 2.0


def _read_a_line(proc: subprocess.Popen[bytes]) -> bytes:
    """Read the raw pipe until a first whole line is out; return what was read."""
    assert proc.stdout is not None
    early = b""
    while b"\n" not in early:  # the driver flushes each result as it arrives
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, "no result before the end of output"
        early += chunk
    return early


def _hang_list(servers: list[HTTPTestServer], tag: str) -> list[str]:
    lines = []
    for n, server in enumerate(servers[:3]):
        lines += [server.url(f"/ok/{tag}/{n}")]
        lines += [server.url(f"/hang/{tag}/{n}/{i}") for i in range(3)]
    return lines


def _open_hangs(servers: list[HTTPTestServer]) -> int:
    return sum(server.open_connections for server in servers)


def test_sigint_cancels_the_cluster_tasks_and_reports_unfinished_urls_as_cancelled(
    ray_cluster: RayCluster, servers: list[HTTPTestServer], tmp_path: Path
) -> None:
    lines = _hang_list(servers, "sigint")
    urls = write_lines(tmp_path / "urls.txt", lines)
    before = sum(server.hits("/hang/sigint/") for server in servers)
    proc = _spawn(ray_cluster, "--format", "jsonl", "--timeout", "120", urls)
    # A first result is out and hanging URLs have reached their servers: tasks are running on
    # the cluster (with 2 CPUs a third partition may still wait for a CPU; it is cancelled too).
    early = _read_a_line(proc)
    assert wait_until(
        lambda: sum(s.hits("/hang/sigint/") for s in servers) - before >= 3, timeout=RUN_TIMEOUT
    )
    proc.send_signal(signal.SIGINT)
    out, err = wait_exit(proc, timeout=15)
    assert proc.returncode == 130, err
    records = parse_jsonl(early + out)
    assert sorted(r["url"] for r in records) == sorted(lines)  # every URL accounted for, once
    hanging = [r for r in records if "/hang/" in r["url"]]
    assert {(r["outcome"], r["kind"], r["error"]) for r in hanging} == {
        ("cancelled", "cancelled", "interrupted by SIGINT")
    }
    assert records[0]["outcome"] == "ok"
    assert parse_summary(err).cancelled == len(records) - parse_summary(err).ok
    # No task is left running: the hanging requests' connections are all closed.
    assert wait_until(lambda: _open_hangs(servers) == 0, timeout=15), _open_hangs(servers)


def test_max_time_cancels_the_cluster_tasks_with_the_run_deadline(
    ray_cluster: RayCluster, servers: list[HTTPTestServer], tmp_path: Path
) -> None:
    lines = _hang_list(servers, "deadline")
    urls = write_lines(tmp_path / "urls.txt", lines)
    proc = _run(ray_cluster, "--format", "jsonl", "--timeout", "120", "--max-time", "6", urls)
    assert proc.returncode == 1, proc.stderr
    records = parse_jsonl(proc.stdout)
    assert sorted(r["url"] for r in records) == sorted(lines)
    hanging = [r for r in records if "/hang/" in r["url"]]
    assert {(r["outcome"], r["error"]) for r in hanging} == {("cancelled", "run deadline reached")}
    # The quick URLs finished, or waited in a partition that never got a CPU and was cancelled.
    others = {(r["outcome"], r["error"]) for r in records if "/hang/" not in r["url"]}
    assert others <= {("ok", None), ("cancelled", "run deadline reached")}
    assert wait_until(lambda: _open_hangs(servers) == 0, timeout=15), _open_hangs(servers)


def test_output_dir_after_sigkill_resumes_without_refetching_complete_partitions(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    with (
        HTTPTestServer(host="127.0.0.31") as quick,
        HTTPTestServer(host="127.0.0.32") as slow,
    ):
        lines = [quick.url(f"/ok/resume/{i}") for i in range(6)]
        lines += [slow.url(f"/delay/6000/resume/{i}") for i in range(3)]
        urls = write_lines(tmp_path / "urls.txt", lines)
        out_dir = tmp_path / "results"
        args = ("--format", "jsonl", "--partition-size", "3", "--output-dir", out_dir, urls)
        proc = _spawn(ray_cluster, *args)
        try:
            # The quick host's two partitions are complete, the slow one's is not.
            assert wait_until(lambda: len(list(out_dir.glob("part-*.jsonl"))) >= 2, timeout=45)
            assert wait_until(lambda: slow.hits("/delay/") == 3, timeout=20)
            assert len(list(out_dir.glob("part-*.jsonl"))) == 2
        finally:
            proc.kill()
            wait_exit(proc)
        quick.reset_stats()
        again = _run(ray_cluster, *args)
        assert again.returncode == 0, again.stderr
        assert quick.hits("/ok/") == 0  # read back from the complete partitions
        records = parse_jsonl(again.stdout)
        assert sorted(r["url"] for r in records) == sorted(lines)
        assert parse_summary(again.stderr).ok == 9
        assert b"read back: 6 results of complete partitions" in again.stderr
        stored = [
            json.loads(line)
            for path in out_dir.glob("part-*.jsonl")
            for line in path.read_text().splitlines()
        ]
        assert sorted(r["url"] for r in stored) == sorted(lines)
        assert not list(out_dir.glob(".*.tmp"))


@pytest.mark.parametrize("option", ["--extract", "--recursive", "--cache"])
def test_engine_ray_with_link_checking_a_crawl_or_the_cache_is_a_usage_error(
    option: str, tmp_path: Path
) -> None:
    _require_ray()
    doc = tmp_path / "doc.md"
    doc.write_text("[a](http://127.0.0.1:9/)\n", encoding="utf-8")
    args = {
        "--extract": ["--extract", str(doc)],
        "--recursive": ["--recursive", "http://127.0.0.1:9/"],
        "--cache": ["--cache", str(tmp_path / "cache.jsonl"), "http://127.0.0.1:9/"],
    }[option]
    proc = subprocess.run(
        [*FETCHPOOL, "--engine", "ray", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == b""
    assert f"--engine ray does not work with {option} yet" in proc.stderr.decode()


def test_engine_ray_without_the_extra_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    urls = write_lines(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    code = "import sys; sys.modules['ray'] = None; from fetchpool.cli.app import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--engine", "ray", str(urls)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert "fetchpool[ray]" in proc.stderr.decode()


def test_fetch_columns_runs_under_ray_data_map_batches(
    ray_cluster: RayCluster, servers: list[HTTPTestServer], tmp_path: Path
) -> None:
    pytest.importorskip("ray.data")
    urls = [server.url(f"/ok/data/{i}") for i, server in enumerate(servers)]
    urls += [servers[0].url("/status/404/data")]
    # The README's example, in a process of its own connected to the test cluster.
    script = textwrap.dedent(
        f"""
        import json, sys

        import ray
        import fetchpool

        ray.init(address={ray_cluster.address!r}, _node_ip_address={NODE_IP!r},
                 log_to_driver=False, logging_level="ERROR")
        ds = ray.data.read_text(sys.argv[1])  # one row per line, column "text"
        results = ds.map_batches(
            fetchpool.fetch_columns,
            batch_size=4,
            fn_kwargs={{"column": "text", "workers": 4, "timeout": 10}},
        )
        rows = [
            {{"url": r["url"], "outcome": r["outcome"], "status": int(r["status"])}}
            for r in results.take_all()
        ]
        print(json.dumps(rows))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(write_lines(tmp_path / "urls.txt", urls))],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        env=ray_cluster.env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    rows = json.loads(proc.stdout.decode().splitlines()[-1])
    assert sorted((r["url"], r["outcome"], r["status"]) for r in rows) == sorted(
        [(u, "ok", 200) for u in urls[:-1]] + [(urls[-1], "fail", 404)]
    )


def _partition_workers(cluster: RayCluster) -> list[int]:
    """PIDs of the cluster's worker processes that are running a partition task now."""
    pids = []
    for pid in _session_members(cluster.proc.pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::fetch_partition"):
                pids.append(pid)
    return pids


def test_a_lost_worker_s_partition_is_run_again_without_duplicate_results(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    with HTTPTestServer(host="127.0.0.41") as server:
        lines = [server.url(f"/ok/lost/{i}") for i in range(3)]
        lines += [server.url(f"/delay/4000/lost/{i}") for i in range(3)]
        urls = write_lines(tmp_path / "urls.txt", lines)
        proc = _spawn(ray_cluster, "--format", "jsonl", "--timeout", "30", urls)
        early = _read_a_line(proc)  # the quick URLs' results are out
        assert wait_until(lambda: server.hits("/delay/") == 3, timeout=RUN_TIMEOUT)
        workers = _partition_workers(ray_cluster)
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        out, err = wait_exit(proc, timeout=RUN_TIMEOUT)
        assert proc.returncode == 0, err
        records = parse_jsonl(early + out)
        assert sorted(r["url"] for r in records) == sorted(lines)  # each URL once
        assert {r["outcome"] for r in records} == {"ok"}
        assert server.hits("/ok/") == 3  # results already received are not fetched again
        assert server.hits("/delay/") == 6  # the unfinished ones ran again on a new worker


def test_ray_engine_answers_a_url_before_the_producer_writes_the_next(
    ray_cluster: RayCluster, servers: list[HTTPTestServer]
) -> None:
    # Without --output-dir, a pause in the input sends the partial partitions off.
    proc = subprocess.Popen(
        [*FETCHPOOL, "--engine", "ray", "--ray-address", ray_cluster.address, "-f", "jsonl", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ray_cluster.env,
    )
    assert proc.stdin is not None
    try:
        for i, server in enumerate(servers[:3]):
            url = server.url(f"/ok/producer/{i}")
            proc.stdin.write(url.encode() + b"\n")
            proc.stdin.flush()
            (line,) = read_lines_until(proc, 1, timeout=RUN_TIMEOUT)
            assert json.loads(line)["url"] == url
    finally:
        proc.stdin.close()
    _, err = wait_exit(proc, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, err


def test_ray_engine_without_an_address_starts_a_local_cluster(netns: NetNS) -> None:
    # In a network namespace with only `lo`: the local cluster's own traffic stays on it.
    _require_ray()
    server = netns.start_http()
    urls = [server.url(f"/ok/local/{i}") for i in range(4)] + [server.url("/status/404/local")]
    temp_dir = tempfile.mkdtemp(prefix="fpray-", dir="/tmp")
    try:
        env = {
            "RAY_TMPDIR": temp_dir,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            "NO_PROXY": "*",
        }
        done = netns.run(
            [*FETCHPOOL, "--engine", "ray", "-f", "jsonl", *urls],
            env=env,
            timeout=RUN_TIMEOUT * 2,
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 1, done.stderr
    records = parse_jsonl(done.stdout.encode())
    assert Counter((r["url"], r["status"]) for r in records) == Counter(
        [(u, 200) for u in urls[:-1]] + [(urls[-1], 404)]
    )


def test_ray_engine_driver_stops_reading_input_while_partitions_wait(
    ray_cluster: RayCluster, servers: list[HTTPTestServer]
) -> None:
    # An endless pipe of URLs whose servers never answer: the driver reads only what its
    # bounded partitions and feed hold, then stops; it does not take the whole input in.
    proc = subprocess.Popen(
        [*FETCHPOOL, "--engine", "ray", "--ray-address", ray_cluster.address, "-f", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ray_cluster.env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    sent = 0
    limit = 64 * 1024 * 1024

    def produce() -> None:
        nonlocal sent
        assert proc.stdin is not None
        i = 0
        with contextlib.suppress(OSError):
            while sent < limit:
                chunk = "".join(
                    servers[(i + k) % len(servers)].url(f"/hang/bp/{i + k}") + "\n"
                    for k in range(1000)
                ).encode()
                proc.stdin.write(chunk)
                sent += len(chunk)
                i += 1000

    def drain() -> None:  # results only come at the end; keep the pipe from filling anyway
        assert proc.stdout is not None
        while proc.stdout.read(65536):
            pass

    producer = threading.Thread(target=produce, daemon=True)
    reader = threading.Thread(target=drain, daemon=True)
    producer.start()
    reader.start()
    try:
        assert wait_until(lambda: sum(s.hits("/hang/bp/") for s in servers) > 0, RUN_TIMEOUT)
        settled = sent
        for _ in range(20):  # until the driver has stopped taking input for a second
            time.sleep(1.0)
            if sent == settled:
                break
            settled = sent
        assert sent == settled, "the driver kept reading"
        assert sent < 8 * 1024 * 1024, f"the driver took {sent} bytes of input"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kib = int(status.split("VmRSS:")[1].split()[0])
        assert rss_kib < 300 * 1024, f"{rss_kib} KiB resident"
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.returncode is None:
            proc.kill()
            proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            proc.stdin.close()
        reader.join(timeout=10)
        proc.stdout.close()
    assert proc.returncode == 130
