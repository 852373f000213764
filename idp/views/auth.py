"""Sign-in (password, then the second factor of users who have one) and sign-out pages."""

from __future__ import annotations

import time

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from ..models import User
from ..models import db
from ..security import audit
from ..security import mfa
from ..security import notices
from ..security import rate_limit
from ..security.passwords import needs_rehash
from ..security.passwords import rehash_password
from ..security.passwords import verify_password
from ..sessions import ACR_MFA
from ..sessions import ACR_PASSWORD
from ..sessions import current_login
from ..sessions import current_user
from ..sessions import end_login_session
from ..sessions import parked_authorization_url
from ..sessions import start_login

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Invalid username or password."
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait a few minutes and try again."
CODE_FAILED = "That code is not valid. Enter the current code from your app, or a recovery code."
TOO_MANY_CODES = "Too many wrong codes. Wait a few minutes and try again."
# Wrong passwords before a successful sign-in that make it worth telling the owner (ASVS 6.3.5).
SUSPICIOUS_FAILURES = 3


@bp.get("/")
def home():
    return render_template("home.html", user=current_user())


@bp.route("/login", methods=["GET", "POST"])
def login():
    pending = session.get("pending_authz") or {}
    if request.method == "GET":
        hint = (pending.get("args") or {}).get("login_hint", "")
        return render_template("auth/login.html", username=hint[:150])

    username = request.form.get("username", "")[:150]
    password = request.form.get("password", "")
    if not username or not password:
        return render_template("auth/login.html", username=username, error=LOGIN_FAILED), 400

    config = current_app.config
    window = config["LOGIN_WINDOW_SECONDS"]
    account_key = login_counter_key(username)
    ip_key = f"login:ip:{request.remote_addr}"
    # Count first, check the password second: parallel guesses cannot outrun the counter.
    account_attempts = rate_limit.count_attempt(account_key, window)
    over_account = account_attempts > config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    over_ip = rate_limit.count_attempt(ip_key, window) > config["LOGIN_MAX_FAILURES_PER_IP"]
    if account_attempts == config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] + 1:
        _tell_the_owner(username, "sign_in_locked")  # the first refusal of the window
    if over_account or over_ip:
        audit.log("login.throttled", username=User.normalize_username(username),
                  by="account" if over_account else "ip")
        return render_template("auth/login.html", username=username, error=TOO_MANY_ATTEMPTS), 429

    user = User.by_username(username)
    valid = verify_password(user.password_hash if user else None, password)
    if not valid or user is None or user.disabled:
        reason = "unknown_user" if user is None else ("disabled" if user.disabled else "password")
        audit.log("login.failed", username=User.normalize_username(username), reason=reason)
        return render_template("auth/login.html", username=username, error=LOGIN_FAILED), 401

    rate_limit.reset(account_key)
    rate_limit.refund(ip_key)  # an address shared by many users is limited on failures only
    if account_attempts - 1 >= SUSPICIOUS_FAILURES:
        notices.send(user, "signed_in_after_failures")
    if needs_rehash(user.password_hash):  # argon2 parameters were raised since it was set
        user.password_hash = rehash_password(password)
        db.session.commit()
    if user.has_totp:  # not signed in yet: the second factor decides
        session["mfa_pending"] = {"user_id": user.id, "since": int(time.time())}
        return redirect(url_for("auth.second_factor"), code=303)
    return signed_in(user, amr=["pwd"], acr=ACR_PASSWORD, fresh=True)


@bp.route("/login/mfa", methods=["GET", "POST"])
def second_factor():
    """The code of an authenticator app, or a recovery code: after the password, or to step
    up a password-only session when a client or a request asks for more."""
    user, stepping_up = _awaiting_second_factor()
    if user is None:
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/mfa.html")
    # The right password, then wrong codes until locked: the password is likely known.
    if not mfa.count_attempt(user, notice_when_locked=None if stepping_up
                             else "second_factor_locked"):
        audit.log("mfa.throttled", user_id=user.id)
        return render_template("auth/mfa.html", error=TOO_MANY_CODES), 429
    method = mfa.verify_second_factor(user, request.form.get("otp"))
    if method is None:
        audit.log("mfa.failed", user_id=user.id)
        return render_template("auth/mfa.html", error=CODE_FAILED), 401
    mfa.reset_attempts(user)
    session.pop("mfa_pending", None)
    audit.log("mfa.succeeded", user_id=user.id, method=method, step_up=stepping_up or None)
    if method == "recovery":
        notices.send(user, "recovery_code_used")
    return signed_in(user, amr=["pwd", "otp"], acr=ACR_MFA, fresh=not stepping_up)


def _awaiting_second_factor() -> tuple[User | None, bool]:
    """(user, stepping_up): the user whose password was just accepted, or the signed-in user
    of a password-only session; (None, False) when nobody is waiting for a code."""
    pending = session.get("mfa_pending")
    if isinstance(pending, dict):
        fresh = time.time() - pending.get("since", 0) <= current_app.config["MFA_PENDING_SECONDS"]
        user = db.session.get(User, pending.get("user_id")) if fresh else None
        if user is not None and not user.disabled and user.has_totp:
            return user, False
        session.pop("mfa_pending", None)
    login = current_login()
    if login is not None and login.user.has_totp and login.acr != ACR_MFA:
        return login.user, True
    return None, False


def _tell_the_owner(username: str, notice: str) -> None:
    """Mail the account's owner, if the name is an account's: the page says the same either
    way, so nobody learns from it whether the account exists."""
    user = User.by_username(username)
    if user is not None and not user.disabled:
        notices.send(user, notice)


def login_counter_key(username: str) -> str:
    """The account's sign-in attempt counter. Cut after normalizing: lower() can lengthen a
    name ("İ" is two characters in lower case), and the key must fit its column."""
    return f"login:user:{User.normalize_username(username)[:150]}"


def signed_in(user: User, amr: list[str], acr: str, fresh: bool):
    """Start the session and go where the user was going. `fresh`: the password was entered
    just now, which satisfies prompt=login and max_age of the waiting authorization."""
    start_login(user, amr=amr, acr=acr)
    if fresh and "pending_authz" in session:
        session["pending_authz"] = {**session["pending_authz"], "authenticated": True}
    return redirect(_after_login_url(), code=303)  # RFC 9700 §4.12: 303 after a credential POST


def _after_login_url() -> str:
    return (parked_authorization_url() or session.pop("after_login", None)
            or url_for("auth.home"))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """The user's own sign-out: GET asks, POST (with CSRF token) signs out."""
    if request.method == "GET":
        return render_template("auth/logout.html", user=current_user())
    end_login_session(reason="logout")
    return render_template("auth/logged_out.html")
