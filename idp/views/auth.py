"""Sign-in and sign-out pages."""

from __future__ import annotations

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
from ..security import rate_limit
from ..security.passwords import hash_password
from ..security.passwords import needs_rehash
from ..security.passwords import verify_password
from ..sessions import current_user
from ..sessions import end_login_session
from ..sessions import start_login

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Invalid username or password."
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait a few minutes and try again."


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
    account_key = f"login:user:{User.normalize_username(username)}"
    ip_key = f"login:ip:{request.remote_addr}"
    # Count first, check the password second: parallel guesses cannot outrun the counter.
    over_account = rate_limit.count_attempt(account_key, window) > config[
        "LOGIN_MAX_FAILURES_PER_ACCOUNT"
    ]
    over_ip = rate_limit.count_attempt(ip_key, window) > config["LOGIN_MAX_FAILURES_PER_IP"]
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
    if needs_rehash(user.password_hash):  # argon2 parameters were raised since it was set
        user.password_hash = hash_password(password)
        db.session.commit()
    start_login(user, amr=["pwd"])
    if "pending_authz" in session:
        session["pending_authz"] = {**session["pending_authz"], "authenticated": True}
    return redirect(_after_login_url(), code=303)  # RFC 9700 §4.12: 303 after a credential POST


def _after_login_url() -> str:
    pending = session.get("pending_authz")
    if pending:
        return url_for("oauth.authorize", **pending["args"])
    return url_for("auth.home")


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """The user's own sign-out: GET asks, POST (with CSRF token) signs out."""
    if request.method == "GET":
        return render_template("auth/logout.html", user=current_user())
    end_login_session(reason="logout")
    return render_template("auth/logged_out.html")
