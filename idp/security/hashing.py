"""Random secrets and their hashes, for values that are already high-entropy (codes, tokens).

SHA-256 is enough for a 256-bit random value: there is nothing to brute-force, and a slow
password hash would only cap the endpoints that check it. Human passwords go to passwords.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string carrying `nbytes` bytes of entropy from the OS CSPRNG."""
    return secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str | None, presented: str | None) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    if not stored_hash or not presented:
        return False
    return hmac.compare_digest(stored_hash, hash_secret(presented))
