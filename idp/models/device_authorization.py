"""Device authorizations (RFC 8628): a device without a browser, or without a keyboard, asks
for tokens; the user approves it on another device by typing a short code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db
from . import utcnow


class DeviceAuthorization(db.Model):
    """One request of a device: its device_code (256 bits, which the device polls with) and
    its user_code (which the user types), both kept only as keyed hashes. Until `expires_at`
    the user may answer it (`decision`); an approval is recorded as an authorization code that
    is never handed out (`authorization_code`: who, when, how they signed in), from which the
    device's one token response is built (`used_at`)."""

    __tablename__ = "device_authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    user_code_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        db.ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(db.Text, default="")
    # RFC 8707 resources the device asked for; empty: none asked.
    resources: Mapped[list] = mapped_column(db.JSON, default=list)
    # Seconds the device must wait between polls; RFC 8628 §3.5 adds 5 at each slow_down.
    interval: Mapped[int] = mapped_column(default=5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_polled_at: Mapped[datetime | None] = mapped_column()
    decision: Mapped[str | None] = mapped_column(db.String(10))  # "allow" or "deny"
    authorization_code_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("authorization_codes.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None] = mapped_column()

    client = relationship("Client", lazy="joined")
    authorization_code = relationship("AuthorizationCode", lazy="joined")
