"""Server-side sign-in sessions. The browser holds only a random id; we keep its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow

USER_AGENT_LENGTH = 200


class LoginSession(db.Model):
    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        db.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Unix seconds of the last interactive authentication (OIDC `auth_time`).
    auth_time: Mapped[int] = mapped_column(db.BigInteger)
    amr: Mapped[list] = mapped_column(db.JSON, default=list)
    acr: Mapped[str | None] = mapped_column(db.String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    # The session's public identifier, the ID tokens' `sid` (OIDC Back-Channel Logout §2.1):
    # not a credential, and kept when the same user signs in again in the same browser.
    oidc_sid: Mapped[str | None] = mapped_column(db.String(64))
    # Where the sign-in came from, shown to the user on the account page (ASVS 7.5.2).
    ip: Mapped[str | None] = mapped_column(db.String(45))
    user_agent: Mapped[str | None] = mapped_column(db.String(USER_AGENT_LENGTH))

    user = relationship("User", lazy="joined")
