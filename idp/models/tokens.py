"""What the provider remembers about the tokens it issued.

A JWT access token is self-contained; no row is written for one issued by client credentials
(the hot path). Tokens issued to a user belong to a family: everything descended from one
authorization code exchange. Revoking the family (refresh token reuse, code reuse, sign-out of
the app, a disabled user) ends every token in it at once. A single access token is revoked by
putting its `jti` on the deny-list until it would have expired anyway.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from flask import current_app
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class TokenFamily(db.Model):
    """One authorization of a client by a user, and every token issued from it."""

    __tablename__ = "token_families"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(
        db.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(db.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    authorization_code_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("authorization_codes.id", ondelete="SET NULL"), index=True
    )
    # The scope the user granted; refreshed access tokens may ask for less, never more.
    scope: Mapped[str] = mapped_column(db.Text, default="")
    # The resources (RFC 8707) the authorization asked for, the same way; empty: none asked.
    resources: Mapped[list] = mapped_column(db.JSON, default=list)
    # RFC 9449 §5: a public client's refresh tokens work only with a proof by this DPoP key.
    dpop_jkt: Mapped[str | None] = mapped_column(db.String(43))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Absolute end of the family: no refresh token of it is accepted after this.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(db.String(40))

    client = relationship("Client", lazy="joined")
    user = relationship("User", lazy="joined")
    # The sign-in behind the family (auth_time, acr, amr), for ID tokens renewed at a refresh.
    authorization_code = relationship("AuthorizationCode", lazy="select")

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()


def refresh_reuse_grace() -> timedelta:
    """How long a used refresh token may be used again (REFRESH_TOKEN_REUSE_GRACE_SECONDS)."""
    return timedelta(seconds=current_app.config["REFRESH_TOKEN_REUSE_GRACE_SECONDS"])


class RefreshToken(db.Model):
    """An opaque refresh token (only its keyed hash is kept). Each one is good for one use: the
    use sets `used_at` and issues its successor; a second use is a replay. Where the operator
    allows a reuse grace window, uses within it of the first use issue further successors."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    family_id: Mapped[int] = mapped_column(
        db.ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The idle limit, capped by the family's absolute end.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()

    family = relationship(TokenFamily, lazy="joined")

    # --- what Authlib's RefreshTokenGrant and endpoints ask of a token ---------------------
    def check_client(self, client) -> bool:
        return self.family.client_id == client.client_id

    def get_scope(self) -> str:
        return self.family.scope

    def is_expired(self) -> bool:
        return self.expires_at <= utcnow() or self.family.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.is_spent() or self.family.revoked_at is not None

    def is_spent(self) -> bool:
        """Used, and past the reuse grace window. Without a window, any use spends it, even one
        that another host's clock dates a little ahead of ours."""
        if self.used_at is None:
            return False
        grace = refresh_reuse_grace()
        return not grace or self.used_at <= utcnow() - grace


class AccessTokenRecord(db.Model):
    """An access token issued to a user, so that its family's revocation reaches it."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(db.String(64), unique=True)
    family_id: Mapped[int] = mapped_column(
        db.ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    family = relationship(TokenFamily, lazy="joined")


class RevokedAccessToken(db.Model):
    """The deny-list: access tokens revoked one by one (RFC 7009), kept until they expire."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
