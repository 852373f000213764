"""OpenID Connect on the token endpoint: the ID token of the code grant (OIDC Core §2,
§3.1.3.6), renewed by the refresh grant (§12.2)."""

from __future__ import annotations

import time

from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken
from flask import current_app

from ..keys import ALGORITHM
from ..models import AuthorizationCode
from ..models import db
from ..models import utcnow
from .claims import generate_user_info
from .subjects import UserAsKnownBy
from .subjects import subject_for


class SignsIdTokens:
    """What the ID tokens of both grants share: the active signing key and the claims."""

    def resolve_client_private_key(self, client):
        return current_app.extensions["idp.keys"].signing_key().private

    def get_client_algorithm(self, client) -> str:
        return ALGORITHM

    def get_encode_header(self, client) -> dict:
        key = current_app.extensions["idp.keys"].signing_key()
        return {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(time.time())
        return {
            "iss": current_app.config["ISSUER"],
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + current_app.config["ID_TOKEN_TTL_SECONDS"],
        }

    def generate_user_info(self, user, scope):
        return generate_user_info(user, scope)

    def encode_id_token(self, token, request):
        """The ID token's `sub` is the one this client knows the user by (subjects.py). The
        tokens are stored by now: request.user is read only for the claims from here on."""
        request.user = UserAsKnownBy(request.user, subject_for(request.user, request.client))
        return super().encode_id_token(token, request)

    def get_authorization_code_claims(self, authorization_code) -> dict:
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:  # the sign-in session, for back-channel logout (§2.1)
            claims["sid"] = authorization_code.sid
        return claims


class OpenIDCode(SignsIdTokens, _OpenIDCode):
    def exists_nonce(self, nonce: str, request) -> bool:
        """A nonce seen with a live code of the same client is a replayed request."""
        stmt = db.select(AuthorizationCode.id).where(
            AuthorizationCode.client_id == request.payload.client_id,
            AuthorizationCode.nonce == nonce,
            AuthorizationCode.expires_at > utcnow(),
        )
        return db.session.execute(stmt.limit(1)).first() is not None


class OpenIDRefresh(SignsIdTokens, OpenIDToken):
    """A refresh renews the ID token too, when the refreshed scope holds `openid` (§12.2):
    relying parties that present the ID token itself (kubectl oidc-login, Grafana, Vault)
    would otherwise send the user back to sign in each time it expires. Same iss, sub, aud and
    azp; a new iat; auth_time, acr and amr of the original sign-in, read from its code."""

    def process_token(self, grant, response):
        original = grant.request.refresh_token.family.authorization_code
        if original is None:  # pruned; retention keeps it as long as its family, so never
            return response[1]
        grant.request.authorization_code = original
        return super().process_token(grant, response)

    def get_authorization_code_claims(self, authorization_code) -> dict:
        claims = super().get_authorization_code_claims(authorization_code)
        # The nonce belongs to the authentication request; a refresh is not one, and echoing it
        # would hand the client a second token with a nonce it has already seen.
        claims.pop("nonce", None)
        return claims
