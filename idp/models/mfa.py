"""Second factors: a TOTP authenticator (RFC 6238) and single-use recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class TotpFactor(db.Model):
    """One authenticator per user. Its secret is stored encrypted (security/mfa.py); it counts
    only once `confirmed_at` is set, that is once the user has typed a code it produced."""

    __tablename__ = "totp_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    secret_encrypted: Mapped[str] = mapped_column(db.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column()
    # The 30-second step of the last code accepted: a code is good once (no replay).
    last_used_step: Mapped[int | None] = mapped_column(db.BigInteger)

    user = relationship("User", back_populates="totp")


class RecoveryCode(db.Model):
    """A single-use code for when the authenticator is lost; only its keyed hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(db.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column()
