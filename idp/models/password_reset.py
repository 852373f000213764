"""Links that let a user who forgot their password set a new one (ASVS 6.4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class PasswordReset(db.Model):
    """One link, mailed to the user: a 256-bit random token, of which only the keyed hash is
    kept. It works once, until `expires_at`, and a newer link for the same user replaces it."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()

    user = relationship("User", lazy="joined")
