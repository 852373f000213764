"""End users: the people who sign in."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow

NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 320


def problem_with_text(value: str, max_length: int) -> str | None:
    """Names and e-mail addresses are shown in pages, ID tokens and tab-separated CLI output:
    1 to `max_length` characters, no control characters, no line or tab breaks."""
    if not value or len(value) > max_length:
        return f"must be 1 to {max_length} characters"
    if not value.isprintable():
        return "must not contain control characters or line breaks"
    return None


def problem_with_email(email: str) -> str | None:
    problem = problem_with_text(email, EMAIL_MAX_LENGTH)
    if problem is None and ("@" not in email or any(character.isspace() for character in email)):
        problem = "is not an email address"
    return problem


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The OIDC `sub`: random and stable, so renaming a user never changes who they are to an RP.
    subject: Mapped[str] = mapped_column(
        db.String(64), unique=True, default=lambda: str(uuid.uuid4())
    )
    # Stored lower-cased: "Alice" and "alice" are one account.
    username: Mapped[str] = mapped_column(db.String(150), unique=True)
    email: Mapped[str | None] = mapped_column(db.String(320))
    email_verified: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str | None] = mapped_column(db.String(200))
    password_hash: Mapped[str] = mapped_column(db.String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    totp = relationship("TotpFactor", back_populates="user", uselist=False, lazy="select")

    @property
    def has_totp(self) -> bool:
        return self.totp is not None and self.totp.confirmed_at is not None

    def get_user_id(self) -> str:
        return self.subject

    @staticmethod
    def normalize_username(username: str) -> str:
        return username.strip().lower()

    @classmethod
    def by_username(cls, username: str) -> User | None:
        stmt = db.select(cls).filter_by(username=cls.normalize_username(username))
        return db.session.execute(stmt).scalar_one_or_none()

    @classmethod
    def by_subject(cls, subject: str) -> User | None:
        return db.session.execute(db.select(cls).filter_by(subject=subject)).scalar_one_or_none()
