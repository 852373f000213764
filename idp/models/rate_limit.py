"""Fixed-window failure counters shared by every worker through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import db


class RateLimitCounter(db.Model):
    __tablename__ = "rate_limit_counters"

    # e.g. "login:user:alice" or "login:ip:203.0.113.9" — never a secret.
    key: Mapped[str] = mapped_column(db.String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(default=0)
