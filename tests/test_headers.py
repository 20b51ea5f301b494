"""The header sets of a run: what every request carries, and what stays on the input's origin."""

from __future__ import annotations

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
