"""The state of issued tokens: is this token live, and revoking it, its family, or everything
of a user or a client. The userinfo, introspection and revocation endpoints all ask here, so
that a token is either live everywhere or nowhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..models import AccessTokenRecord
from ..models import Client
from ..models import RefreshToken
from ..models import RegisteredClient
from ..models import RevokedAccessToken
from ..models import TokenFamily
from ..models import User
from ..models import db
from ..models import utcnow
from ..models.hot_read import HotRead
from ..security.hashing import hash_secret
from .subjects import UserAsKnownBy

# Claims every access token of ours carries (RFC 9068 §2.2), with their JSON types.
REQUIRED_CLAIMS = {"iss": str, "sub": str, "client_id": str, "jti": str, "iat": int, "exp": int}


@dataclass
class AccessToken:
    """A verified, live JWT access token. `family` is None for client credentials."""

    claims: dict[str, Any]
    family: TokenFamily | None

    @property
    def scope(self) -> str:
        return self.claims.get("scope", "")

    @property
    def user(self) -> User | None:
        return self.family.user if self.family is not None else None

    @property
    def dpop_jkt(self) -> str | None:
        """The thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1), if any."""
        confirmation = self.claims.get("cnf")
        return confirmation.get("jkt") if isinstance(confirmation, dict) else None

    # --- what Authlib's resource protector and endpoints ask of a token --------------------
    def get_scope(self) -> str:
        return self.scope

    def get_client(self) -> RegisteredClient:
        client = RegisteredClient.find(self.claims["client_id"])  # only /userinfo asks
        if client is None:  # deleted since the token was checked, within this request
            raise InvalidTokenError()
        return client

    def get_user(self) -> UserAsKnownBy | None:
        """For /userinfo: the user, known by the token's own `sub` (subjects.py)."""
        return UserAsKnownBy(self.user, self.claims["sub"]) if self.user is not None else None

    def check_client(self, client) -> bool:
        return self.claims["client_id"] == client.client_id

    def is_expired(self) -> bool:
        return False  # checked when loaded

    def is_revoked(self) -> bool:
        return False  # checked when loaded


def to_datetime(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


def to_timestamp(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def looks_like_jwt(token: str) -> bool:
    # Refresh tokens are base64url without dots; a compact JWS has exactly two.
    return token.count(".") == 2


def load_access_token(token: str) -> AccessToken | None:
    """The token if we signed it and it is live now; None for anything else."""
    try:
        jwt = current_app.extensions["idp.keys"].verify(token)
    except Exception:  # malformed, foreign or forged: simply not one of our tokens
        return None
    claims = jwt.claims
    if jwt.header.get("typ") != "at+jwt" or not _has_required_claims(claims):
        return None
    if claims["iss"] != current_app.config["ISSUER"] or claims["exp"] <= time.time():
        return None
    if _revoked(claims):
        return None
    if claims["sub"] == claims["client_id"]:
        # Client credentials (RFC 9068 §2.2: the client is the subject). A user's `sub` is a
        # UUID, or 64 hex digits (pairwise), never a client_id (32), so a user's token cannot
        # pass for one.
        return AccessToken(claims, family=None)
    record = db.session.execute(
        db.select(AccessTokenRecord).filter_by(jti=claims["jti"])
    ).scalar_one_or_none()
    if record is None or not _family_is_usable(record.family):
        return None
    return AccessToken(claims, family=record.family)


def _has_required_claims(claims: dict) -> bool:
    return all(
        isinstance(claims.get(name), kind) and not isinstance(claims.get(name), bool)
        for name, kind in REQUIRED_CLAIMS.items()
    )


# Whether a token's client still exists, when its tokens were last revoked wholesale, and
# whether this one token is on the deny-list: one read on every introspection and userinfo call.
_REVOCATION_STATE = HotRead(
    sa.select(Client.tokens_revoked_at,
              sa.exists().where(RevokedAccessToken.jti == sa.bindparam("jti")).label("denied"))
    .where(Client.client_id == sa.bindparam("client_id")))


def _revoked(claims: dict[str, Any]) -> bool:
    state = _REVOCATION_STATE.one_or_none(db.engine, client_id=claims["client_id"],
                                          jti=claims["jti"])
    if state is None or state["denied"]:  # client deleted, or this token revoked (RFC 7009)
        return True
    # `idp tokens revoke --client`. Second resolution, as `iat`: a token issued in the very
    # second of the revocation is revoked too, rather than one issued just before it surviving.
    revoked_at = state["tokens_revoked_at"]
    return revoked_at is not None and claims["iat"] <= to_timestamp(revoked_at)


def _family_is_usable(family: TokenFamily) -> bool:
    return family.revoked_at is None and not family.user.disabled


def find_refresh_token(token: str) -> RefreshToken | None:
    """The row of a refresh token, whatever its state (used, expired, revoked)."""
    return db.session.execute(
        db.select(RefreshToken).filter_by(token_hash=hash_secret(token))
    ).scalar_one_or_none()


def load_refresh_token(token: str) -> RefreshToken | None:
    """The refresh token if it is live now: unused, unexpired, its family and user intact."""
    row = find_refresh_token(token)
    if row is None or row.is_revoked() or row.is_expired() or not _family_is_usable(row.family):
        return None
    return row


def load_token(token: str) -> AccessToken | RefreshToken | None:
    """Any live token of ours; the shape tells which kind, so no hint is needed."""
    if not isinstance(token, str) or not token:
        return None
    return load_access_token(token) if looks_like_jwt(token) else load_refresh_token(token)


# --- revocation ---------------------------------------------------------------------------

def revoke_families(reason: str, *criteria) -> int:
    """Revoke every live family matching `criteria`: their refresh tokens stop working and
    their access tokens become inactive. The caller commits."""
    result = db.session.execute(
        db.update(TokenFamily)
        .where(TokenFamily.revoked_at.is_(None), *criteria)
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return result.rowcount


def revoke_family(family: TokenFamily, reason: str) -> int:
    return revoke_families(reason, TokenFamily.id == family.id)


def revoke_user_tokens(user: User, reason: str) -> int:
    return revoke_families(reason, TokenFamily.user_id == user.id)


def revoke_client_tokens(client: Client, reason: str) -> int:
    """Every family of the client, and every client-credentials token issued until now."""
    client.tokens_revoked_at = utcnow()
    return revoke_families(reason, TokenFamily.client_id == client.client_id)


def deny_access_token(token: AccessToken) -> None:
    """Put one access token on the deny-list until it expires (RFC 7009), and drop entries
    whose tokens have expired meanwhile. Commits."""
    now = utcnow()
    db.session.execute(db.delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))
    db.session.add(RevokedAccessToken(jti=token.claims["jti"],
                                      expires_at=to_datetime(token.claims["exp"])))
    try:
        db.session.commit()
    except IntegrityError:  # revoked concurrently by another request: already denied
        db.session.rollback()
