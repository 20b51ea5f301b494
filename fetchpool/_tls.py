"""Whom a run trusts over TLS: the client `ssl.SSLContext`, and certificate errors in words.

With verification on, a run trusts:

* OpenSSL's default verify paths, as OpenSSL and curl use them: the CA bundle file and
  the hashed certificate directory the system's OpenSSL was built with, or `SSL_CERT_FILE`
  and `SSL_CERT_DIR` in their place when set;
* certifi's bundle as well, only when neither variable is set and the default bundle file
  yields no CA certificate (a machine or container without a system store), so such
  machines keep working;
* and the CA certificates of `--cacert FILE`, in addition to all of the above.

Loading a CA store costs about 15 ms, so a context is built only when the first https
URL needs one: callers hand `context_factory()` to the transport rather than a context.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import Callable

from ._config import Settings
from ._errors import SettingError

__all__ = ["check_cacert", "client_context", "context_factory", "describe_verify_error"]

HINT = "trust a private CA with --cacert FILE, or skip verification with --insecure"

# OpenSSL's verify codes (X509_V_ERR_*) whose text fetchpool words itself, so it reads the
# same whatever the OpenSSL version ("self signed" became "self-signed" in 3.0).
_VERIFY_TEXT = {
    2: "unable to get issuer certificate",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    23: "certificate revoked",
}
_HOST_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# Python words a host mismatch itself: "Hostname mismatch, certificate is not valid for 'x'."
_MISMATCH_HOST = re.compile(r"not valid for '(.*)'\.?$")


def check_cacert(path: str) -> None:
    """Raise `SettingError` (for `cacert`) unless `path` is a readable PEM file of
    certificates."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # bare: no default store to load
    try:
        probe.load_verify_locations(cafile=path)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            if exc.reason == "NO_CERTIFICATE_OR_CRL_FOUND":
                problem = "no PEM certificate in it"
            else:
                problem = "not a valid PEM file of certificates"
        else:
            problem = (exc.strerror or str(exc)).lower()
        raise SettingError("cacert", path, problem) from None


def client_context(*, verify: bool = True, cacert: str | None = None) -> ssl.SSLContext:
    """A new client context with the run's trust (see the module docstring).

    No ALPN is set: fetchpool's own transport sets http/1.1 on its context, and httpx's
    transports set theirs on every connection, so each gets a context of its own.
    """
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # Loads the default verify paths (SSL_CERT_FILE and SSL_CERT_DIR honoured by OpenSSL
    # itself) and takes SSLKEYLOGFILE into account.
    context = ssl.create_default_context()
    if (
        "SSL_CERT_FILE" not in os.environ
        and "SSL_CERT_DIR" not in os.environ
        and not context.cert_store_stats()["x509_ca"]
    ):
        # A hashed directory's certificates are looked up on demand and not counted here,
        # so a store that is only a directory also gets certifi's bundle: more trust of the
        # same public CAs, never less.
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    if cacert is not None:
        context.load_verify_locations(cafile=cacert)
    return context


def context_factory(settings: Settings) -> Callable[[], ssl.SSLContext]:
    """Builds contexts with the run's trust; the `--cacert` file is checked now, loaded later.

    Raises:
        SettingError: when `settings.cacert` is not a readable PEM file of certificates.
    """
    if settings.cacert is not None:
        check_cacert(settings.cacert)
    return functools.partial(client_context, verify=settings.verify, cacert=settings.cacert)


def describe_verify_error(exc: ssl.SSLCertVerificationError) -> str:
    """Which certificate check failed, in words, and how to get past it."""
    code = exc.verify_code
    message = exc.verify_message or ""
    if code in _HOST_MISMATCH:
        match = _MISMATCH_HOST.search(message)
        text = (
            f"certificate is not valid for host '{match.group(1)}'"
            if match
            else "certificate is not valid for this host"
        )
    elif code in _VERIFY_TEXT:
        text = _VERIFY_TEXT[code]
    elif message:
        text = message[0].lower() + message[1:]
    else:
        text = "certificate verification failed"
    return f"{text} ({HINT})"
