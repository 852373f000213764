"""Issuing tokens: RFC 9068 JWT access tokens, and opaque refresh tokens that rotate.

Client credentials write nothing: the signed JWT is the whole token (the hot path is one client
lookup and one signature). A user's tokens are recorded in their family so that revoking the
family reaches them.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import current_app

from ..models import AccessTokenRecord
from ..models import RefreshToken
from ..models import TokenFamily
from ..models import db
from ..models import utcnow
from ..security.hashing import hash_secret
from ..security.hashing import new_secret
from .subjects import subject_for
from .token_store import to_datetime


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed for the client."""

    error = "invalid_target"


def requested_audience(resources: list[str], client, granted: list[str] = ()) -> list[str]:
    """RFC 8707 §2: every `resource` must be one of the client's registered audiences (absolute
    URIs without a fragment, checked at registration) and, at the token endpoint, among those
    the authorization asked for (`granted`), if it asked for any. None asked: those granted,
    still registered (an operator may have removed one since), else the client's default
    audience."""
    resources = resources or list(granted)
    if not resources:
        return client.default_audience()
    if any(resource not in client.allowed_audiences() for resource in resources):
        raise InvalidTargetError("The resource is not registered for this client.")
    if granted and any(resource not in granted for resource in resources):
        raise InvalidTargetError("The resource was not in the authorization request.")
    return list(dict.fromkeys(resources))


def access_token_claims(client, user, scope: str, audience: list[str],
                        lifetime: int) -> dict[str, Any]:
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti (and scope)."""
    now = int(time.time())
    return {
        "iss": current_app.config["ISSUER"],
        # For a user the subject is the user (as this client knows them: subjects.py); for
        # client credentials it is the client.
        "sub": subject_for(user, client) if user is not None else client.client_id,
        "aud": audience[0] if len(audience) == 1 else audience,
        "client_id": client.client_id,
        "scope": scope or "",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime,
    }


def token_response(client, user, scope: str, audience: list[str], with_refresh_token: bool,
                   dpop_jkt: str | None = None) -> dict[str, Any]:
    """The body of a successful token response (RFC 6749 §5.1). With the thumbprint of a DPoP
    key, the access token is bound to that key (RFC 9449 §6.1)."""
    lifetime = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    claims = access_token_claims(client, user, scope, audience, lifetime)
    if dpop_jkt is not None:
        claims["cnf"] = {"jkt": dpop_jkt}
    response = {
        "token_type": "DPoP" if dpop_jkt is not None else "Bearer",
        "access_token": current_app.extensions["idp.keys"].sign(claims, typ="at+jwt"),
        "expires_in": lifetime,
        "scope": scope or "",
    }
    if with_refresh_token:
        response["refresh_token"] = new_secret()
    return response


def start_family(client, user, authorization_code, dpop_jkt: str | None = None) -> TokenFamily:
    """A new family for a code exchange; it ends REFRESH_TOKEN_ABSOLUTE_SECONDS from now. A
    public client that proved a DPoP key has its refresh tokens bound to that key (RFC 9449
    §5); a confidential client's are bound to its own credentials already."""
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_ABSOLUTE_SECONDS"])
    family = TokenFamily(client_id=client.client_id, user_id=user.id,
                         dpop_jkt=dpop_jkt if client.is_public else None,
                         authorization_code_id=authorization_code.id,
                         scope=authorization_code.scope,
                         resources=list(authorization_code.resources),
                         expires_at=utcnow() + lifetime)
    db.session.add(family)
    return family


def record_user_tokens(token: dict[str, Any], family: TokenFamily) -> None:
    """Remember a user's access token (its jti) and refresh token (its keyed hash). Commits."""
    claims = unverified_claims(token["access_token"])
    db.session.add(AccessTokenRecord(jti=claims["jti"], family=family,
                                     issued_at=to_datetime(claims["iat"]),
                                     expires_at=to_datetime(claims["exp"])))
    if "refresh_token" in token:
        idle = timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_SECONDS"])
        db.session.add(RefreshToken(token_hash=hash_secret(token["refresh_token"]), family=family,
                                    expires_at=min(utcnow() + idle, family.expires_at)))
    db.session.commit()


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a JWT we have just signed ourselves; never use on a token from outside."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
