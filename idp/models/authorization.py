"""Authorization codes: the one-time proof of a user's consent that a client exchanges for
tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class AuthorizationCode(db.Model):
    """RFC 6749 §4.1.2: short-lived, single-use, bound to client, redirect URI and PKCE challenge.

    Only the SHA-256 of the code is stored; `used_at` is set atomically on exchange and the row is
    kept until expiry so that a second use can be recognised and its tokens revoked.
    """

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        db.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(db.ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(db.Text)
    scope: Mapped[str] = mapped_column(db.Text, default="")
    nonce: Mapped[str | None] = mapped_column(db.Text)
    code_challenge: Mapped[str] = mapped_column(db.String(128))
    code_challenge_method: Mapped[str] = mapped_column(db.String(10), default="S256")
    auth_time: Mapped[int] = mapped_column(db.BigInteger)
    amr: Mapped[list] = mapped_column(db.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(db.String(100))
    # The `sid` of the sign-in session it was issued in (back-channel logout finds it by this).
    sid: Mapped[str | None] = mapped_column(db.String(64), index=True)
    # RFC 8707 resources the request asked for; empty: none asked.
    resources: Mapped[list] = mapped_column(db.JSON, default=list)
    # RFC 9449 §10: the thumbprint of the DPoP key the code may be exchanged with, if bound.
    dpop_jkt: Mapped[str | None] = mapped_column(db.String(43))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()

    user = relationship("User", lazy="joined")

    # --- Authlib AuthorizationCodeMixin ---------------------------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr or [])
