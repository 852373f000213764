"""Links mailed to a user: to choose a new password (ASVS 6.4), or to confirm an address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class MailedLink(db.Model):
    """One link: a 256-bit random token, of which only the keyed hash is kept, for one
    `purpose`, sent to `email`. It works once, until `expires_at`, while the user's address is
    still the one it went to; a newer link of the same purpose for the same user replaces it."""

    __tablename__ = "mailed_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(db.String(20))
    token_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(db.String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()

    user = relationship("User", lazy="joined")
