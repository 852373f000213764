"""Pushed authorization requests (RFC 9126): an authorization request a client sent straight
to the provider, which the browser then names by its `request_uri` alone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import db
from . import utcnow


class PushedRequest(db.Model):
    """One pushed request: its parameters, for one client, named by a 256-bit random handle
    of which only the keyed hash is kept. It can be named until `expires_at`, and until an
    authorization has been answered from it (`used_at`)."""

    __tablename__ = "pushed_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        db.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    # The authorization request's parameters: a name to a string, or to a list (`resource`).
    params: Mapped[dict] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()
