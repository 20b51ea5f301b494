"""TLS trust: the default store, SSL_CERT_FILE / SSL_CERT_DIR, --cacert, and certificate errors.

Every server is a real HTTPS server on 127.0.0.1 with certificates from trustme.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trustme
from clihelpers import FETCHPOOL, cli_env, parse_jsonl, write_lines
from httpserver import HTTPTestServer

import fetchpool
from fetchpool import _tls
from fetchpool._config import Settings

HINT = "(trust a private CA with --cacert FILE, or skip verification with --insecure)"


def run(
    *args: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the command with no SSL_CERT_FILE / SSL_CERT_DIR of the caller's, plus `env`."""
    environment = cli_env()
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        environment.pop(name, None)
    environment.update(env or {})
    return subprocess.run(
        [*FETCHPOOL, *map(str, args)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=20,
        env=environment,
        cwd=cwd,
        check=False,
    )


def outcomes(proc: subprocess.CompletedProcess[bytes]) -> dict[str, tuple[str, str | None]]:
    """url -> (outcome, error) of a jsonl run."""
    return {r["url"]: (r["outcome"], r["error"]) for r in parse_jsonl(proc.stdout)}


def serve(
    cert: trustme.LeafCert | None = None, *, chain: tuple[Path, Path] | None = None
) -> HTTPTestServer:
    """An HTTPS server with `cert`, or with the certificate and key files of `chain`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if cert is not None:
        cert.configure_cert(context)
    else:
        assert chain is not None
        context.load_cert_chain(*chain)
    context.set_alpn_protocols(["http/1.1"])
    return HTTPTestServer(ssl_context=context)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A second private CA (B) and its PEM file."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca-b") / "ca-b.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(scope="module")
def other_server(other_ca: tuple[trustme.CA, Path]) -> Iterator[HTTPTestServer]:
    """An HTTPS server signed by CA B, for 127.0.0.1."""
    with serve(other_ca[0].issue_cert("127.0.0.1")) as srv:
        yield srv


# -- the default store and the environment ---------------------------------------------------------


def test_the_context_is_built_once_and_only_for_https(
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPTestServer,
    tls_server: HTTPTestServer,
    tls_ca_file: Path,
) -> None:
    built: list[ssl.SSLContext] = []
    real = _tls.client_context

    def counting(**kwargs: Any) -> ssl.SSLContext:
        built.append(real(**kwargs))
        return built[-1]

    monkeypatch.setattr(_tls, "client_context", counting)
    settings = Settings(cacert=str(tls_ca_file), workers=4)

    async def fetch_all(urls: list[str]) -> list[fetchpool.Result]:
        async with asyncio.timeout(15):
            return [r async for r in fetchpool.fetch(urls, settings=settings)]

    plain = asyncio.run(fetch_all([server.url(f"/ok/plain-{i}") for i in range(4)]))
    assert all(r.outcome is fetchpool.Outcome.OK for r in plain)
    assert built == []  # a run of http URLs loads no CA store
    secure = asyncio.run(fetch_all([tls_server.url(f"/ok/secure-{i}") for i in range(8)]))
    assert all(r.outcome is fetchpool.Outcome.OK for r in secure)
    assert len(built) == 1


def test_ssl_cert_file_replaces_the_default_bundle_and_cacert_adds(
    monkeypatch: pytest.MonkeyPatch,
    tls_ca_file: Path,
    other_ca: tuple[trustme.CA, Path],
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    default = _tls.client_context().cert_store_stats()["x509_ca"]
    assert default > 2  # the system's bundle, or certifi's where there is none
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca_file))
    assert _tls.client_context().cert_store_stats()["x509_ca"] == 1  # no certifi added
    added = _tls.client_context(cacert=str(other_ca[1]))
    assert added.cert_store_stats()["x509_ca"] == 2
    assert (added.verify_mode, added.check_hostname) == (ssl.CERT_REQUIRED, True)
    insecure = _tls.client_context(verify=False, cacert=str(other_ca[1]))
    assert (insecure.verify_mode, insecure.check_hostname) == (ssl.CERT_NONE, False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_ssl_cert_dir_is_a_hashed_directory_of_cas(
    tls_server: HTTPTestServer, tls_ca_file: Path, tmp_path: Path
) -> None:
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(tls_ca_file)],
        capture_output=True,
        check=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    directory = tmp_path / "certs"
    directory.mkdir()
    shutil.copy(tls_ca_file, directory / f"{subject_hash}.0")  # as c_rehash names it
    url = tls_server.url("/ok/dir")
    path = write_lines(tmp_path / "urls.txt", [url])
    proc = run(path, "--format", "jsonl", env={"SSL_CERT_DIR": str(directory)})
    assert outcomes(proc) == {url: ("ok", None)}


# -- certificate errors ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_servers(
    tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, HTTPTestServer]]:
    """Servers whose certificate fails one check each; all but the self-signed one from `tls_ca`."""
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    self_signed = trustme.CA()  # a CA certificate is self-signed: serve it as the leaf
    directory = tmp_path_factory.mktemp("self-signed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    self_signed.cert_pem.write_to_path(str(cert))
    self_signed.private_key_pem.write_to_path(str(key))
    with (
        serve(tls_ca.issue_cert("127.0.0.1", not_before=now - 30 * day, not_after=now - day)) as a,
        serve(tls_ca.issue_cert("127.0.0.1", not_before=now + day, not_after=now + 30 * day)) as b,
        serve(tls_ca.issue_cert("localhost")) as c,
        serve(chain=(cert, key)) as d,
    ):
        yield {"expired": a, "not yet valid": b, "wrong host": c, "self-signed": d}


def test_a_certificate_error_names_the_failed_check_and_both_options(
    bad_servers: dict[str, HTTPTestServer],
    other_server: HTTPTestServer,
    tls_ca_file: Path,
    tmp_path: Path,
) -> None:
    expected = {
        "expired": "certificate has expired",
        "not yet valid": "certificate is not yet valid",
        "wrong host": "certificate is not valid for host '127.0.0.1'",
        "self-signed": "self-signed certificate",
    }
    urls = {bad_servers[name].url("/ok/tls"): text for name, text in expected.items()}
    urls[other_server.url("/ok/tls")] = "unable to get local issuer certificate"
    path = write_lines(tmp_path / "urls.txt", urls)
    # tls_ca is trusted, so each certificate gets as far as the check it fails.
    proc = run(path, "--format", "jsonl", env={"SSL_CERT_FILE": str(tls_ca_file)})
    records = parse_jsonl(proc.stdout)
    assert {r["url"]: r["error"] for r in records} == {
        url: f"TLS: {text} {HINT}" for url, text in urls.items()
    }
    assert {(r["outcome"], r["kind"], r["attempts"]) for r in records} == {("fail", "tls", 1)}
    assert proc.returncode == 1


@pytest.fixture
def not_tls_server() -> Iterator[int]:
    """A port whose server answers every connection with a plain-HTTP 400, no TLS."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield port
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would leave
    listener.close()
    thread.join(5)
    assert not thread.is_alive()


def test_a_handshake_error_that_is_no_certificate_check_has_no_hint(not_tls_server: int) -> None:
    async def fetch_one() -> list[fetchpool.Result]:
        url = f"https://127.0.0.1:{not_tls_server}/"
        async with asyncio.timeout(10):
            return [r async for r in fetchpool.fetch([url], retries=0, timeout=5)]

    (result,) = asyncio.run(fetch_one())
    assert result.kind is fetchpool.Kind.TLS
    assert result.error is not None
    assert result.error.startswith("TLS: ")
    assert "--cacert" not in result.error
    assert "--insecure" not in result.error


# -- --cacert --------------------------------------------------------------------------------------


def test_cacert_trusts_a_private_ca(
    other_server: HTTPTestServer, other_ca: tuple[trustme.CA, Path], tmp_path: Path
) -> None:
    url = other_server.url("/ok/private")
    path = write_lines(tmp_path / "urls.txt", [url])
    assert outcomes(run(path, "--format", "jsonl")) == {
        url: ("fail", f"TLS: unable to get local issuer certificate {HINT}")
    }
    proc = run(path, "--format", "jsonl", "--cacert", other_ca[1])
    assert outcomes(proc) == {url: ("ok", None)}
    assert proc.returncode == 0


def test_cacert_adds_to_the_store_of_ssl_cert_file(
    tls_server: HTTPTestServer,
    tls_ca_file: Path,
    other_server: HTTPTestServer,
    other_ca: tuple[trustme.CA, Path],
    tmp_path: Path,
) -> None:
    a, b = tls_server.url("/ok/ca-a"), other_server.url("/ok/ca-b")
    path = write_lines(tmp_path / "urls.txt", [a, b])
    env = {"SSL_CERT_FILE": str(tls_ca_file)}
    alone = outcomes(run(path, "--format", "jsonl", env=env))
    assert (alone[a], alone[b][0]) == (("ok", None), "fail")
    both = outcomes(run(path, "--format", "jsonl", "--cacert", other_ca[1], env=env))
    assert both == {a: ("ok", None), b: ("ok", None)}


def test_cacert_applies_to_httpx_transports_with_http2(
    tls_server: HTTPTestServer,
    tls_ca_file: Path,
    other_server: HTTPTestServer,
    tmp_path: Path,
) -> None:
    pytest.importorskip("h2")
    good, bad = tls_server.url("/ok/h2"), other_server.url("/ok/h2")
    path = write_lines(tmp_path / "urls.txt", [good, bad])
    proc = run(path, "--http2", "--format", "jsonl", "--retries", "0", "--cacert", tls_ca_file)
    assert outcomes(proc) == {
        good: ("ok", None),
        bad: ("fail", f"TLS: unable to get local issuer certificate {HINT}"),
    }


def test_cacert_from_pyproject_is_relative_to_it(
    tls_server: HTTPTestServer, tls_ca_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "certs").mkdir()
    shutil.copy(tls_ca_file, tmp_path / "certs" / "ca.pem")
    (tmp_path / "pyproject.toml").write_text('[tool.fetchpool]\ncacert = "certs/ca.pem"\n')
    work = tmp_path / "docs"
    work.mkdir()
    url = tls_server.url("/ok/pyproject")
    write_lines(work / "urls.txt", [url])
    proc = run("urls.txt", "--format", "jsonl", cwd=work)
    assert outcomes(proc) == {url: ("ok", None)}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file or directory"),
        ("@directory", "is a directory"),
        (b"", "no PEM certificate in it"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "not a valid"),
    ],
)
def test_a_bad_cacert_is_a_usage_error_before_anything_is_fetched(
    fresh_server: HTTPTestServer, tmp_path: Path, content: bytes | str | None, problem: str
) -> None:
    cacert = tmp_path / "ca.pem"
    if content == "@directory":
        cacert.mkdir()
    elif isinstance(content, bytes):
        cacert.write_bytes(content)
    urls = write_lines(tmp_path / "urls.txt", [fresh_server.url("/ok/never")])
    proc = run(urls, "--cacert", cacert)
    assert proc.returncode == 2
    assert proc.stdout == b""
    [line] = proc.stderr.decode().splitlines()
    assert line.startswith(f"fetchpool: error: invalid --cacert {cacert}: {problem}")
    assert fresh_server.requests == []


def test_a_bad_cacert_in_pyproject_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.fetchpool]\ncacert = "missing.pem"\n')
    write_lines(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    proc = run("urls.txt", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"invalid --cacert {tmp_path / 'missing.pem'}" in proc.stderr.decode()
