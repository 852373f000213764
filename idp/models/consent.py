"""What a user has allowed a client to have, remembered so the same scopes are not asked again."""

from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import scope_to_list
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import db
from . import utcnow


class Consent(db.Model):
    __tablename__ = "consents"
    __table_args__ = (db.UniqueConstraint("user_id", "client_id", name="uq_consents_user_client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(db.ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        db.ForeignKey("clients.client_id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(db.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @classmethod
    def find(cls, user_id: int, client_id: str) -> Consent | None:
        stmt = db.select(cls).filter_by(user_id=user_id, client_id=client_id)
        return db.session.execute(stmt).scalar_one_or_none()

    def covers(self, scope: str) -> bool:
        return set(scope_to_list(scope) or []) <= set(scope_to_list(self.scope) or [])

    @classmethod
    def grant(cls, user_id: int, client_id: str, scope: str) -> Consent:
        """Remember the scopes allowed, adding to what was allowed before."""
        consent = cls.find(user_id, client_id)
        if consent is None:
            consent = cls(user_id=user_id, client_id=client_id, scope="")
            db.session.add(consent)
        merged = set(scope_to_list(consent.scope) or []) | set(scope_to_list(scope) or [])
        consent.scope = " ".join(sorted(merged))
        return consent
