"""The public keys of a `private_key_jwt` client: what they must be, and, for a client
registered with a `jwks_uri` (OIDC Dynamic Registration §2, RFC 7591), fetching them. Such a
client publishes its keys itself, so it rotates them without the operator. Each worker keeps
what it fetched:

- for CACHE_SECONDS, then fetches again at the next assertion;
- sooner when an assertion names a `kid` the keys lack (the client has just rotated), but at
  most once each REFETCH_MIN_SECONDS per URI, so assertions with made-up kids cannot make this
  provider hammer the client's server;
- when a fetch fails, the keys fetched before keep working until STALE_MAX_SECONDS after they
  were: a client's web server that is briefly down does not lock the client out; and the next
  try waits REFETCH_MIN_SECONDS, so that a server that is down does not hold up every request
  for a timeout.

A fetch has a timeout, follows no redirect, reads at most MAX_BYTES, and must give a JWKS
that passes the rules of registered keys (problem_with_jwks). A jwks_uri a client named
itself (at /register, or in its metadata document) is fetched as any URL anyone may name is:
https, to public addresses only (outbound.fetch_from_outside).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass

from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey
from joserfc.jwk import JWKRegistry
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey

from . import outbound

CACHE_SECONDS = 300
REFETCH_MIN_SECONDS = 10
STALE_MAX_SECONDS = 3600
TIMEOUT_SECONDS = 5
MAX_BYTES = 64 * 1024


class KeysUnavailable(Exception):
    """No usable keys: the fetch failed (the message says why) and none are kept."""


@dataclass(frozen=True)
class Kept:
    """What this worker holds for one jwks_uri (times are time.monotonic())."""

    jwks: dict | None  # None: no fetch has succeeded yet
    fetched_at: float  # when `jwks` was fetched
    tried_at: float  # the last fetch, whether or not it succeeded
    problem: str | None = None  # why the last fetch failed

    def lacks(self, kid: str | None) -> bool:
        return kid is not None and kid not in {key.get("kid") for key in self.jwks["keys"]}


# By (URI, whether the client named it itself): the two are fetched differently.
_kept: dict[tuple[str, bool], Kept] = {}
_lock = threading.Lock()  # one fetch at a time (gthread workers)


def keys_at(uri: str, kid: str | None, named_by_client: bool = False) -> dict:
    """The JWKS at `uri`, from this worker's cache unless it is time to fetch it again.
    `named_by_client`: the client registered the URI itself, not the operator (fetch)."""
    now = time.monotonic()
    key = (uri, named_by_client)
    kept = _kept.get(key)
    if kept is None or _worth_fetching(kept, kid, now):
        with _lock:
            if _kept.get(key) is kept:  # no other thread fetched it meanwhile
                _kept[key] = _fetch_again(uri, named_by_client, kept, now)
            kept = _kept[key]
    if kept.jwks is None or now - kept.fetched_at >= STALE_MAX_SECONDS:
        raise KeysUnavailable(kept.problem or "the keys fetched last are too old")
    return kept.jwks


def _worth_fetching(kept: Kept, kid: str | None, now: float) -> bool:
    if now - kept.tried_at < REFETCH_MIN_SECONDS:  # whatever happened then, not again so soon
        return False
    return kept.jwks is None or now - kept.fetched_at >= CACHE_SECONDS or kept.lacks(kid)


def _fetch_again(uri: str, named_by_client: bool, kept: Kept | None, now: float) -> Kept:
    try:
        return Kept(fetch(uri, named_by_client), fetched_at=now, tried_at=now)
    except KeysUnavailable as error:  # keep what we had, and say why nothing newer came
        return Kept(kept.jwks if kept else None, kept.fetched_at if kept else now, now,
                    str(error))


def fetch(uri: str, named_by_client: bool = False) -> dict:
    """GET the JWKS at `uri` and check it; KeysUnavailable says what went wrong. A URI the
    client named itself may lead only to a public address (outbound.fetch_from_outside)."""
    if named_by_client:
        try:
            body = outbound.fetch_from_outside(uri, max_bytes=MAX_BYTES,
                                               timeout=TIMEOUT_SECONDS).body
        except outbound.FetchFailed as error:
            raise KeysUnavailable(str(error)) from None
    else:
        body = _fetch_registered(uri)
    if len(body) > MAX_BYTES:
        raise KeysUnavailable(f"more than {MAX_BYTES} bytes")
    try:
        jwks = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the parser's depth
        raise KeysUnavailable("not JSON") from None
    if problem := problem_with_jwks(jwks):
        raise KeysUnavailable(problem)
    return jwks


def _fetch_registered(uri: str) -> bytes:
    request = urllib.request.Request(uri, headers={"Accept": "application/json"})
    try:
        with outbound.OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection
        raise KeysUnavailable(f"HTTP {error.code}") from None
    except (OSError, ValueError) as error:  # refused, timed out, unresolvable, bad URL
        raise KeysUnavailable(type(error).__name__) from None


def forget() -> None:
    """Drop every cached key set (tests; a worker forgets them when it restarts)."""
    _kept.clear()


# Members that only private or symmetric keys have (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
PRIVATE_KEY_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def problem_with_jwks(jwks) -> str | None:
    """What is wrong with a client's key set, or None: it must be RFC 7517 public keys, RSA of
    2048 bits or more, EC on P-256, P-384 or P-521, or Ed25519, with distinct kids."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        return 'not a JWKS: {"keys": [...]} with one key or more'
    if not all(isinstance(key, dict) and isinstance(key.get("kid", ""), str)
               and key.get("kid", "").isprintable() for key in keys):
        return "every key must be a JSON object, its kid a string of printable characters"
    kids = [key["kid"] for key in keys if key.get("kid")]
    if len(kids) != len(set(kids)):
        return "two keys have the same kid"
    for number, key in enumerate(keys, 1):
        if PRIVATE_KEY_MEMBERS & key.keys():
            return (f"key {number} holds private or symmetric key material; register only "
                    "the public keys")
        try:
            with warnings.catch_warnings():  # joserfc warns of a small key: refused just below
                warnings.simplefilter("ignore", SecurityWarning)
                imported = JWKRegistry.import_key(key)
        except Exception:  # joserfc raises several kinds for a malformed key
            return f"key {number} cannot be read"
        if not _strong_enough(imported):
            return (f"key {number} is not RSA of 2048 bits or more, EC on P-256, P-384 or "
                    "P-521, or Ed25519")
    return None


def _strong_enough(key) -> bool:
    if isinstance(key, RSAKey):
        return key.raw_value.key_size >= 2048
    if isinstance(key, ECKey):
        return key.curve_name in ("P-256", "P-384", "P-521")
    return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
