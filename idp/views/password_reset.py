"""A forgotten password (ASVS 6.4): the sign-in page offers a link by e-mail, which lets the
user choose a new password once, within PASSWORD_RESET_TTL_SECONDS. Offered only where mail is
set up (IDP_MAIL_SMTP_URL).

Nothing tells whether an account exists: every request gets the same answer, in about the same
time (the mail goes out after the response), and the request limits count what was typed, not
the account. Opening the link only shows the form, so a mail scanner that follows it spends
nothing (security/mailed_links.py keeps the token). Choosing the new password ends every
session and revokes every refresh token of the user: whoever knew the old password keeps
nothing. A second factor is still asked at the next sign-in.
"""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from sqlalchemy import func

from ..models import User
from ..models import db
from ..models import utcnow
from ..security import audit
from ..security import mailed_links
from ..security import notices
from ..security import rate_limit
from ..security.hashing import hash_secret
from ..security.passwords import PasswordPolicyError
from ..security.passwords import hash_password
from ..sessions import sign_out_everywhere
from .auth import login_counter_key

bp = Blueprint("password_reset", __name__, url_prefix="/password")

LINK_SENT = ("If an account has that username or e-mail address, a link to choose a new "
             "password is on its way there. It works once, for {ttl}.")
TOO_MANY_REQUESTS = "Too many requests. Wait a few minutes and try again."
LINK_INVALID = ("This link is not valid any more: it was used, or it expired, or a newer one "
                "was sent. Ask for a new one.")
# Accounts one request may reach through a shared e-mail address.
MAX_ACCOUNTS_PER_ADDRESS = 5


@bp.before_request
def only_with_mail():
    if not notices.enabled():
        abort(404)


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    if request.method == "GET":
        return render_template("auth/forgot.html")
    typed = request.form.get("login", "").strip()[:320]
    if not typed:
        return render_template("auth/forgot.html", error="Enter your username or e-mail."), 400
    config = current_app.config
    window = config["LOGIN_WINDOW_SECONDS"]
    over_typed = rate_limit.count_attempt(f"reset:login:{hash_secret(typed.lower())}",
                                          window) > config["MAILED_LINK_MAX_REQUESTS"]
    over_ip = rate_limit.count_attempt(f"reset:ip:{request.remote_addr}",
                                       window) > config["LOGIN_MAX_FAILURES_PER_IP"]
    if over_typed or over_ip:
        audit.log("password_reset.throttled", by="login" if over_typed else "ip")
        return render_template("auth/forgot.html", error=TOO_MANY_REQUESTS), 429

    ttl = config["PASSWORD_RESET_TTL_SECONDS"]
    for user in _accounts_for(typed):
        link = mailed_links.issue(user, mailed_links.PASSWORD_RESET, "/password/reset", ttl)
        db.session.commit()
        audit.log("password_reset.requested", user_id=user.id)
        notices.send_link(user, mailed_links.PASSWORD_RESET, link, ttl)
    return render_template("auth/forgot.html", sent=LINK_SENT.format(ttl=notices.duration(ttl)))


@bp.route("/reset", methods=["GET", "POST"])
def reset():
    token, link = mailed_links.from_request(mailed_links.PASSWORD_RESET)
    if link is None:
        return render_template("auth/reset.html", invalid=LINK_INVALID), 400
    if request.method == "GET":
        return render_template("auth/reset.html", token=token, user=link.user)

    user = link.user
    form = request.form
    error = None
    if form.get("new_password", "") != form.get("confirm_password", ""):
        error = "The new passwords do not match."
    else:
        try:
            password_hash = hash_password(form.get("new_password", ""))
        except PasswordPolicyError as exc:
            error = str(exc)
    if error:
        return render_template("auth/reset.html", token=token, user=user, error=error), 400
    if not mailed_links.spend(link):  # another request used it first
        db.session.rollback()
        return render_template("auth/reset.html", invalid=LINK_INVALID), 400
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    user.email_verified = True  # the link reached the address: it is the user's
    signed_out = sign_out_everywhere(user, "password_reset")
    db.session.commit()
    rate_limit.reset(login_counter_key(user.username))  # a sign-in lockout ends with it
    audit.log("account.password_reset", user_id=user.id, **signed_out)
    notices.send(user, "password_reset")
    return render_template("auth/reset.html", done=True)


def _accounts_for(typed: str) -> list[User]:
    """The enabled accounts, with an e-mail address, named by a username or an address."""
    user = User.by_username(typed)
    if user is not None:
        users = [user]
    else:
        users = db.session.execute(
            db.select(User).where(func.lower(User.email) == typed.lower())
            .order_by(User.id).limit(MAX_ACCOUNTS_PER_ADDRESS)
        ).scalars().all()
    return [user for user in users if user.email and not user.disabled]
