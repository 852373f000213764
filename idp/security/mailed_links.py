"""Links mailed to a user (models/mailed_link.py): issued, found while live, spent once.

The token is 256 random bits, kept only as its keyed hash; it travels in the link's query
string, which the access log leaves out, and never in the audit log. A link is at the
configured issuer, never at the request's Host header: a forged Host would otherwise have the
user mailed a working link to someone else's site.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import current_app
from flask import request
from sqlalchemy import update

from ..models import MailedLink
from ..models import User
from ..models import db
from ..models import utcnow
from . import audit
from .hashing import hash_secret
from .hashing import new_secret

PASSWORD_RESET = "password_reset"
VERIFY_EMAIL = "verify_email"


def issue(user: User, purpose: str, path: str, ttl_seconds: int,
          email: str | None = None) -> str:
    """A new link for `user` at `path`, sent to their current address (or, to confirm a new
    one, to `email`); it replaces their earlier links of the same purpose. The caller
    commits, then mails the link."""
    token = new_secret()
    retire(user, purpose)
    db.session.add(MailedLink(purpose=purpose, token_hash=hash_secret(token), user_id=user.id,
                              email=email or user.email,
                              expires_at=utcnow() + timedelta(seconds=ttl_seconds)))
    return f"{current_app.config['ISSUER']}{path}?{urlencode({'token': token})}"


def from_request(purpose: str) -> tuple[str, MailedLink | None]:
    """The token the request carries (the link's query, or the form it led to) and its live
    link, if any; a token without one is audited."""
    token = request.values.get("token", "")
    link = find_live(token, purpose)
    if link is None:
        audit.log("mailed_link.refused", purpose=purpose)
    return token, link


def find_live(token: str, purpose: str) -> MailedLink | None:
    """The link of `token` if it can still be used: unused, unexpired, its user enabled and,
    but for a confirmation of a new address, still at the address it went to."""
    if not token or len(token) > 100:
        return None
    link = db.session.execute(
        db.select(MailedLink).filter_by(token_hash=hash_secret(token), purpose=purpose)
    ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    if link.user.disabled or (purpose != VERIFY_EMAIL and link.user.email != link.email):
        return None
    return link


def spend(link: MailedLink) -> bool:
    """Use the link up; False if another request did first. The caller commits."""
    return db.session.execute(
        update(MailedLink)
        .where(MailedLink.id == link.id, MailedLink.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount == 1


def retire(user: User, purpose: str | None = None) -> None:
    """Spend the user's unused links (of one purpose, or all: their address changed)."""
    stmt = update(MailedLink).where(MailedLink.user_id == user.id, MailedLink.used_at.is_(None))
    if purpose is not None:
        stmt = stmt.where(MailedLink.purpose == purpose)
    db.session.execute(stmt.values(used_at=utcnow()))
