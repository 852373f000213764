"""Fixed-window attempt counters in the database, shared by every worker and host.

An attempt is counted *before* the credential is checked, with one atomic UPDATE, so parallel
requests cannot slip past the limit while a slow password hash runs (GHSA-7h8m-vrxx-vr4m).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..models import RateLimitCounter
from ..models import db
from ..models import utcnow


def count_attempt(key: str, window_seconds: int) -> int:
    """Add one attempt under `key` and return the attempts in the current window, this one
    included."""
    now = utcnow()
    expired = RateLimitCounter.window_start <= now - timedelta(seconds=window_seconds)
    stmt = (
        update(RateLimitCounter)
        .where(RateLimitCounter.key == key)
        .values(
            count=case((expired, 1), else_=RateLimitCounter.count + 1),
            window_start=case((expired, now), else_=RateLimitCounter.window_start),
        )
        .returning(RateLimitCounter.count)
    )
    count = db.session.execute(stmt).scalar_one_or_none()
    if count is None:
        try:
            with db.session.begin_nested():
                db.session.add(RateLimitCounter(key=key, window_start=now, count=1))
            count = 1
        except IntegrityError:  # another worker inserted it first: count on its row
            count = db.session.execute(stmt).scalar_one()
    db.session.commit()
    return count


def refund(key: str) -> None:
    """Take back one attempt that turned out to succeed: the counter then counts failures,
    though it was raised before the check."""
    db.session.execute(
        update(RateLimitCounter)
        .where(RateLimitCounter.key == key, RateLimitCounter.count > 0)
        .values(count=RateLimitCounter.count - 1)
    )
    db.session.commit()


def reset(key: str) -> None:
    db.session.execute(db.delete(RateLimitCounter).where(RateLimitCounter.key == key))
    db.session.commit()
