"""The authorization code grant (RFC 6749 §4.1) with hashed, single-use, 60-second codes."""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from flask import current_app
from sqlalchemy import update

from ..models import AuthorizationCode
from ..models import Token
from ..models import db
from ..models import utcnow
from ..security import audit
from ..security.hashing import hash_secret


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    @staticmethod
    def validate_authorization_redirect_uri(request, client) -> str:
        """OIDC Core §3.1.2.1: required, and registered character for character. The message
        never echoes the URI: it is attacker-chosen text (and Authlib refuses non-ASCII)."""
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        return redirect_uri

    def save_authorization_code(self, code: str, request) -> None:
        # `auth_context` is put on the request by views/oauth.py from the sign-in session.
        context = request.auth_context
        data = request.payload.data
        db.session.add(
            AuthorizationCode(
                code_hash=hash_secret(code),
                client_id=request.client.client_id,
                user_id=request.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=context["auth_time"],
                amr=context["amr"],
                acr=context.get("acr"),
                expires_at=utcnow()
                + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_TTL_SECONDS"]),
            )
        )
        db.session.commit()

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        """Consume the code atomically: of two racing requests exactly one wins (RFC 6749
        §4.1.2). A code presented again revokes every token issued from it."""
        now = utcnow()
        code_hash = hash_secret(code)
        consumed_id = db.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == code_hash,
                AuthorizationCode.client_id == client.client_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(used_at=now)
            .returning(AuthorizationCode.id)
        ).scalar_one_or_none()
        db.session.commit()
        if consumed_id is not None:
            return db.session.get(AuthorizationCode, consumed_id)
        self._explain_rejected_code(code_hash, client)
        return None

    def _explain_rejected_code(self, code_hash: str, client) -> None:
        row = db.session.execute(
            db.select(AuthorizationCode).filter_by(code_hash=code_hash)
        ).scalar_one_or_none()
        if row is None:
            reason = "unknown_code"
        elif row.client_id != client.client_id:
            reason = "code_of_another_client"
        elif row.used_at is not None:
            reason = "code_reused"
            revoked = revoke_tokens_of_code(row.id)
            audit.log("token.code_reuse_revoked", client_id=client.client_id,
                      user_id=row.user_id, revoked_tokens=revoked)
        else:
            reason = "code_expired"
        audit.log("token.rejected", client_id=client.client_id, reason=reason)

    def delete_authorization_code(self, authorization_code) -> None:
        # Kept (marked used) until it expires, so that a replay can be detected.
        pass

    def authenticate_user(self, authorization_code: AuthorizationCode):
        user = authorization_code.user
        if user is None or user.disabled:
            return None
        return user


def revoke_tokens_of_code(code_id: int) -> int:
    result = db.session.execute(
        update(Token)
        .where(Token.authorization_code_id == code_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
    return result.rowcount
