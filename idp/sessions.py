"""Sign-in sessions: a random id in the signed cookie, the state in the database.

Keeping the state server-side lets sign-out, a disabled account or a timeout end a session at
once, and lets a fresh sign-in replace the id (no session fixation, ASVS 7.2.4).
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode

from flask import current_app
from flask import g
from flask import request
from flask import session
from flask import url_for

from .models import LoginSession
from .models import User
from .models import db
from .models import utcnow
from .models.login_session import USER_AGENT_LENGTH
from .oauth import backchannel
from .oauth.token_store import revoke_user_tokens
from .security import audit
from .security import mailed_links
from .security.hashing import hash_secret
from .security.hashing import new_secret

# Authentication context classes (the `acr` claim, and what `acr_values` may ask for).
ACR_PASSWORD = "1"
ACR_MFA = "2"
ACR_VALUES = [ACR_PASSWORD, ACR_MFA]

# Session keys that survive a sign-in: the authorization request the user is in the middle of,
# or the account page that sent them to sign in.
CARRIED_OVER = ("pending_authz", "after_login")
# Writing last_seen_at on every request would turn each page view into a database write.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# What the Set-Cookie header holds besides the cookie's value: its name, Expires, Path, Domain,
# Secure, HttpOnly and SameSite.
COOKIE_ATTRIBUTES_BYTES = 160


def session_would_fit(with_values: dict) -> bool:
    """Whether this browser's session, given `with_values` and what a sign-in then adds (a
    session id and a CSRF token), still fits in one cookie (Flask's MAX_COOKIE_SIZE, 4093 bytes
    as browsers keep them). A browser silently drops a larger cookie, and with it the
    authorization request parked there: the user would be asked to sign in again and again."""
    signed = current_app.session_interface.get_signing_serializer(current_app).dumps({
        **session, "sid": new_secret(), "csrf_token": secrets.token_hex(20), **with_values})
    return len(signed) + COOKIE_ATTRIBUTES_BYTES <= current_app.config["MAX_COOKIE_SIZE"]


def current_login() -> LoginSession | None:
    """The live sign-in of this browser, or None (expired, ended, or user disabled)."""
    if "login" in g:
        return g.login
    g.login = None
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    login = db.session.execute(
        db.select(LoginSession).filter_by(sid_hash=hash_secret(sid))
    ).scalar_one_or_none()
    if login is None or login.ended_at is not None or login.user.disabled:
        return None
    now = utcnow()
    config = current_app.config
    idle = timedelta(seconds=config["SESSION_IDLE_TIMEOUT_SECONDS"])
    absolute = timedelta(seconds=config["SESSION_ABSOLUTE_TIMEOUT_SECONDS"])
    if now - login.last_seen_at > idle or now - login.created_at > absolute:
        login.ended_at = now
        backchannel.sessions_ending([login])
        db.session.commit()
        audit.log("session.expired", user_id=login.user_id)
        return None
    if now - login.last_seen_at > LAST_SEEN_RESOLUTION:
        login.last_seen_at = now
        db.session.commit()
    g.login = login
    return login


def current_user() -> User | None:
    login = current_login()
    return login.user if login else None


def start_login(user: User, amr: list[str], acr: str | None = None) -> LoginSession:
    """Begin a new session for `user`, ending this browser's previous one."""
    previous = current_login()
    oidc_sid = None
    if previous is not None:
        previous.ended_at = utcnow()
        if previous.user_id == user.id:  # signing in again: to the relying parties, the same
            oidc_sid = previous.oidc_sid
        else:
            backchannel.sessions_ending([previous])
    carried = {key: session[key] for key in CARRIED_OVER if key in session}
    session.clear()  # new cookie content, new CSRF token
    session.update(carried)
    session.permanent = True
    sid = new_secret()
    session["sid"] = sid
    login = LoginSession(
        sid_hash=hash_secret(sid), user_id=user.id, auth_time=int(time.time()), amr=amr, acr=acr,
        oidc_sid=oidc_sid or new_secret(),
        ip=request.remote_addr, user_agent=_printable(request.user_agent.string)[
            :USER_AGENT_LENGTH] or None,
    )
    db.session.add(login)
    db.session.commit()
    g.login = login
    audit.log("login.succeeded", user_id=user.id, amr=amr)
    return login


def end_login_session(reason: str = "logout") -> None:
    login = current_login()
    if login is not None:
        login.ended_at = utcnow()
        backchannel.sessions_ending([login])
        db.session.commit()
        audit.log("session.ended", user_id=login.user_id, reason=reason)
    session.clear()
    g.login = None


def end_all_sessions_of(user: User, keep: LoginSession | None = None,
                        only: int | None = None) -> int:
    """End every session of `user` (disabled, password changed, signed out by an
    administrator or by the user elsewhere), except `keep`; or, with `only`, that one."""
    stmt = db.select(LoginSession).where(LoginSession.user_id == user.id,
                                         LoginSession.ended_at.is_(None))
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep.id)
    if only is not None:
        stmt = stmt.where(LoginSession.id == only)
    ending = db.session.execute(stmt).scalars().all()
    now = utcnow()
    for login in ending:
        login.ended_at = now
    backchannel.sessions_ending(ending)
    return len(ending)


def sign_out_everywhere(user: User, reason: str, keep: LoginSession | None = None) -> dict:
    """After a change to how `user` signs in (password, second factor, recovery codes): whoever
    signed in with what came before keeps nothing. Every session but `keep` ends, every
    refresh token, with its access tokens, is revoked for `reason` (REFERENCE 28, ASVS 7.4.3),
    and every link mailed to the user (a reset, a change of address) stops working.
    The caller commits; the counts are for the audit log and the CLI."""
    mailed_links.retire(user)
    return {"sessions_ended": end_all_sessions_of(user, keep=keep),
            "token_families_revoked": revoke_user_tokens(user, reason)}


def delete_account(user: User) -> dict:
    """Sign the user out everywhere (their applications are told), then delete them: the
    database's ON DELETE CASCADE removes every row that names them. The caller commits."""
    signed_out = sign_out_everywhere(user, "user_deleted")
    db.session.execute(db.delete(User).where(User.id == user.id))
    return signed_out


def live_sessions_of(user: User) -> list[LoginSession]:
    """The sessions of `user` that have neither ended nor timed out, latest activity first."""
    now = utcnow()
    config = current_app.config
    return db.session.execute(
        db.select(LoginSession).where(
            LoginSession.user_id == user.id,
            LoginSession.ended_at.is_(None),
            LoginSession.last_seen_at
            > now - timedelta(seconds=config["SESSION_IDLE_TIMEOUT_SECONDS"]),
            LoginSession.created_at
            > now - timedelta(seconds=config["SESSION_ABSOLUTE_TIMEOUT_SECONDS"]),
        ).order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    ).scalars().all()


def _printable(text: str) -> str:
    """A header as the account page may show it: no control characters."""
    return "".join(c for c in text if c.isprintable()).strip()


def parked_authorization_url() -> str | None:
    """The /authorize URL that resumes the request parked while the user signs in, enrols a
    factor or consents; None when nothing is parked. Its parameters are named by whoever wrote
    the link, so they go into the query string as they are: as url_for's keyword arguments,
    `endpoint` or `_method` would break the URL and `_external` would vanish from it."""
    pending = session.get("pending_authz")
    if not pending:
        return None
    return url_for("oauth.authorize") + "?" + urlencode(pending["args"], doseq=True)
