"""Random secrets and their keyed hashes, for values that are already high-entropy: client
secrets, refresh tokens, authorization codes, session ids.

HMAC-SHA-256 under HASH_KEY (configuration, never the database). A slow password hash buys
nothing for a 256-bit random value — there is nothing to brute-force — and would cap the token
endpoint at a few dozen requests a second. The key means a copy of the database alone cannot
even confirm a guess. Human passwords go to passwords.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string carrying `nbytes` bytes of entropy from the OS CSPRNG."""
    return secrets.token_urlsafe(nbytes)


def init_app(app) -> None:
    """Key the hash once; every call copies the keyed state instead of re-keying."""
    app.extensions["idp.hash"] = hmac.new(app.config["HASH_KEY"].encode(), digestmod=hashlib.sha256)


def hash_secret(value: str) -> str:
    keyed = current_app.extensions["idp.hash"].copy()
    keyed.update(value.encode("utf-8", "surrogatepass"))
    return keyed.hexdigest()


def secret_matches(stored_hash: str | None, presented: str | None) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    if not stored_hash or not presented:
        return False
    return hmac.compare_digest(stored_hash, hash_secret(presented))
