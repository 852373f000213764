"""Failed client authentications (at /token, /introspect and /revoke), throttled per client_id
and client address.

Only a failure touches the database: it is counted on the counter every worker shares
(rate_limit.py). Once a pair has failed more than CLIENT_AUTH_MAX_FAILURES times within
CLIENT_AUTH_WINDOW_SECONDS, the worker that counted it refuses that pair with 429 for a whole
window, from memory, before any secret is checked; so does every other worker at the pair's next
failure. A successful authentication does no work here: the hot path stays one lookup and one
signature. Keying on the pair, not the address alone, keeps one misconfigured service behind a
shared NAT address from locking out its neighbours.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import current_app

from . import rate_limit

# A worker's memory of blocked pairs is pruned of expired entries past this size.
MAX_REMEMBERED = 10_000


def throttle_key(client_id: str, address: str | None) -> str:
    # A metadata document's URL may be 255 characters, as long as the whole key may be: such
    # an id is counted by its digest, so that two URLs alike in their first part stay apart.
    name = client_id if len(client_id) <= 64 else hashlib.sha256(client_id.encode()).hexdigest()
    return f"client_auth:{name}:{address or '-'}"


def _blocked() -> dict[str, float]:
    return current_app.extensions.setdefault("idp.client_auth_blocked", {})


def seconds_blocked(key: str) -> int:
    """How long this pair must still wait, or 0."""
    blocked = _blocked()
    remaining = blocked.get(key, 0.0) - time.monotonic()
    if remaining <= 0:
        blocked.pop(key, None)
        return 0
    return math.ceil(remaining)


def count_failure(key: str) -> int:
    """Count one failure; past the limit, block the pair and return the seconds to wait."""
    config = current_app.config
    window = config["CLIENT_AUTH_WINDOW_SECONDS"]
    if rate_limit.count_attempt(key, window) <= config["CLIENT_AUTH_MAX_FAILURES"]:
        return 0
    blocked = _blocked()
    if len(blocked) >= MAX_REMEMBERED:
        now = time.monotonic()
        for stale in [k for k, until in blocked.items() if until <= now]:
            del blocked[stale]
    blocked[key] = time.monotonic() + window
    return window
