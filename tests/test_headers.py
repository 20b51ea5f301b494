"""The header sets of a run: what every request carries, and what stays on the input's origin."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

from clihelpers import run_fetchpool, write_lines
from httpserver import HTTPTestServer

from fetchpool._config import Settings
from fetchpool._headers import RequestHeaders


def test_secrets_go_only_while_the_chain_is_on_its_origin() -> None:
    headers = RequestHeaders(
        Settings(headers=(("X-Plain", "1"),), bearer="t", cookies=(("a", "1"),))
    )
    on = headers.for_hop(True)
    off = headers.for_hop(False)
    assert (on["authorization"], on["cookie"], on["x-plain"]) == ("Bearer t", "a=1", "1")
    assert "authorization" not in off
    assert "cookie" not in off
    assert off["x-plain"] == "1"


def test_a_chains_cookies_come_after_the_runs_own_and_a_urls_credentials_only_on_origin() -> None:
    headers = RequestHeaders(Settings(headers=(("Cookie", "run=1"),)))
    assert not headers.has_authorization
    hop = headers.for_hop(True, "Basic dTpw", "chain=2")
    assert (hop["cookie"], hop["authorization"]) == ("run=1; chain=2", "Basic dTpw")
    assert "authorization" not in headers.for_hop(False, "Basic dTpw", "chain=2")


def test_the_runs_own_authorization_is_known_so_a_urls_credentials_give_way() -> None:
    assert RequestHeaders(Settings(user="u:p")).has_authorization
    assert RequestHeaders(Settings(headers=(("Authorization", "x"),))).has_authorization


# -- credentials --------------------------------------------------------------------------------


def _header_of(server: HTTPTestServer, path: str, name: str) -> str | None:
    (request,) = [r for r in server.requests if r.path == path]
    return request.header(name)


def test_credentials_go_to_the_input_origin_but_never_after_a_cross_origin_redirect(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    elsewhere = fresh_server.url("/headers/elsewhere").replace("127.0.0.1", "localhost")
    urls = [
        fresh_server.url("/headers/direct"),
        fresh_server.url(f"/redirect-to?url={quote(elsewhere, safe='')}"),
    ]
    path = write_lines(tmp_path / "urls.txt", urls)
    done = run_fetchpool(
        path, "--user", "alice:s3cret", "--cookie", "session=abc", "--cookie", "b=2"
    )
    assert done.returncode == 0
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert _header_of(fresh_server, "/headers/direct", "Authorization") == basic
    assert _header_of(fresh_server, "/headers/direct", "Cookie") == "session=abc; b=2"
    assert _header_of(fresh_server, "/redirect-to", "Authorization") == basic
    assert _header_of(fresh_server, "/headers/elsewhere", "Authorization") is None
    assert _header_of(fresh_server, "/headers/elsewhere", "Cookie") is None


def test_bearer_token_can_come_from_the_environment(
    tmp_path: Path, fresh_server: HTTPTestServer
) -> None:
    path = write_lines(tmp_path / "urls.txt", [fresh_server.url("/headers/bearer")])
    done = run_fetchpool(path, env={"FETCHPOOL_BEARER": "t0ken"})
    assert done.returncode == 0
    assert _header_of(fresh_server, "/headers/bearer", "Authorization") == "Bearer t0ken"
