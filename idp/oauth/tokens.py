"""JWT access tokens (RFC 9068): what a resource server can validate with the JWKS alone."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from flask import current_app


def access_token_claims(client, user, scope: str, expires_in: int) -> dict[str, Any]:
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti (and scope)."""
    now = int(time.time())
    return {
        "iss": current_app.config["ISSUER"],
        # §2.2: for a user the subject is the user; for client credentials it is the client.
        "sub": user.subject if user is not None else client.client_id,
        "aud": client.client_id,
        "client_id": client.client_id,
        "scope": scope or "",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + expires_in,
    }


def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                   include_refresh_token=True) -> dict[str, Any]:
    """Authlib token generator: a signed JWT access token, Bearer, no refresh token yet."""
    lifetime = expires_in or current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    claims = access_token_claims(client, user, scope, lifetime)
    keystore = current_app.extensions["idp.keys"]
    return {
        "token_type": "Bearer",
        "access_token": keystore.sign(claims, typ="at+jwt"),
        "expires_in": lifetime,
        "scope": scope or "",
    }


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a JWT we have just signed ourselves; never use on a token from outside."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
