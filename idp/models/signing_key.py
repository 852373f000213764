"""The provider's RS256 signing keys, shared by every worker and host through the database.

A key is `next` (published in the JWKS, not signing yet), then `active` (the one that signs),
then `retired` (published until every token it signed has expired, then deleted). The private
half is stored only as encrypted PKCS#8 under KEYS_PASSPHRASE, which lives in configuration,
never in the database. The lifecycle itself is in idp/keys/.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import db
from . import utcnow

NEXT = "next"
ACTIVE = "active"
RETIRED = "retired"
# At most one active and one next key: the partial unique index below makes the database, not
# the workers' timing, decide which of two racing rotations wins.
ONE_PER_STATE = db.text("state != 'retired'")


class SigningKeyRecord(db.Model):
    __tablename__ = "signing_keys"
    __table_args__ = (
        db.CheckConstraint("state IN ('next', 'active', 'retired')", name="state"),
        db.Index("uq_signing_keys_active_next", "state", unique=True,
                 sqlite_where=ONE_PER_STATE, postgresql_where=ONE_PER_STATE),
    )

    # RFC 7638 thumbprint of the public key: unique, and the same on every host.
    kid: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    state: Mapped[str] = mapped_column(db.String(8))
    # PEM "ENCRYPTED PRIVATE KEY" (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC).
    encrypted_private_key: Mapped[str] = mapped_column(db.Text)
    # In the JWKS from then on (every worker publishes it within KEYS_REFRESH_SECONDS).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()
    retired_at: Mapped[datetime | None] = mapped_column()
