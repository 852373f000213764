"""OpenID Connect on the code grant: the ID token (OIDC Core §2, §3.1.3.6)."""

from __future__ import annotations

import time

from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from flask import current_app

from ..keys import ALGORITHM
from ..models import AuthorizationCode
from ..models import db
from ..models import utcnow
from .claims import generate_user_info


class OpenIDCode(_OpenIDCode):
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

    def exists_nonce(self, nonce: str, request) -> bool:
        """A nonce seen with a live code of the same client is a replayed request."""
        stmt = db.select(AuthorizationCode.id).where(
            AuthorizationCode.client_id == request.payload.client_id,
            AuthorizationCode.nonce == nonce,
            AuthorizationCode.expires_at > utcnow(),
        )
        return db.session.execute(stmt.limit(1)).first() is not None

    def generate_user_info(self, user, scope):
        return generate_user_info(user, scope)
