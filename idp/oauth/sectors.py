"""A pairwise client's `sector_identifier_uri` (OIDC Core §8.1, OIDC Dynamic Registration §5):
the https URL of a JSON array of redirect URIs, published by the organisation the client
belongs to. Its host is the client's sector, so that apps on several hosts (www.example.com,
app.example.net) may share one, and each of the client's redirect URIs must be in the array:
no client can claim the sector of a host that does not list it.

The array is fetched when the client is registered, and again at each change to its
registration (RFC 7592, `idp clients update`); as any URL a client names, through
outbound.fetch_from_outside (https, public addresses only, MAX_BYTES within
TIMEOUT_SECONDS).
"""

from __future__ import annotations

import json

from . import outbound

MAX_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5


def problem_with_sector_uri(uri: str, redirect_uris) -> str | None:
    """What keeps `uri` from being the sector of a client with these redirect URIs, after
    "sector_identifier_uri", or None."""
    try:
        body = outbound.fetch_from_outside(uri, max_bytes=MAX_BYTES,
                                           timeout=TIMEOUT_SECONDS).body
    except outbound.FetchFailed as error:
        return f"cannot be fetched: {error}"
    try:
        listed = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the parser's depth
        listed = None
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        return "must serve a JSON array of redirect URIs"
    missing = [uri for uri in redirect_uris if uri not in listed]
    if missing:
        return f"does not list {len(missing)} of the client's redirect URIs"
    return None
