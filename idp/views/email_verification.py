"""Confirming an e-mail address, which RPs read as the `email_verified` claim: from the account
page, a link mailed to the address. Opening the link shows a button, so a mail scanner that
follows it confirms nothing. An address the administrator changes is unconfirmed again, and the
links sent to the old one stop working (security/mailed_links.py)."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from flask import request

from ..models import db
from ..security import audit
from ..security import mailed_links
from ..security import notices
from ..security import rate_limit
from .account import index
from .account import login_required

bp = Blueprint("email_verification", __name__)

LINK_INVALID = ("This link is not valid any more: it was used, or it expired, or a newer one "
                "was sent, or the address changed. Ask for a new one from your account page.")


@bp.before_request
def only_with_mail():
    if not notices.enabled():
        abort(404)


@bp.post("/account/email/verify")
@login_required
def send_link(login):
    user = login.user
    if not user.email or user.email_verified:
        return index(notice="Nothing to confirm.")
    config = current_app.config
    if rate_limit.count_attempt(f"verify:user:{user.id}", config["LOGIN_WINDOW_SECONDS"]) \
            > config["MAILED_LINK_MAX_REQUESTS"]:
        return index(error="Too many links asked for. Wait a few minutes and try again."), 429
    ttl = config["EMAIL_VERIFICATION_TTL_SECONDS"]
    link = mailed_links.issue(user, mailed_links.VERIFY_EMAIL, "/email/verify", ttl)
    db.session.commit()
    audit.log("email.verification_sent", user_id=user.id)
    notices.send_link(user, mailed_links.VERIFY_EMAIL, link, ttl)
    return index(notice=f"A link is on its way to {user.email}. It works once, "
                        f"for {notices.duration(ttl)}.")


@bp.route("/email/verify", methods=["GET", "POST"])
def verify():
    token, link = mailed_links.from_request(mailed_links.VERIFY_EMAIL)
    if link is None:
        return render_template("auth/verify_email.html", invalid=LINK_INVALID), 400
    if request.method == "GET":
        return render_template("auth/verify_email.html", token=token, link=link)
    if not mailed_links.spend(link):  # another request used it first
        db.session.rollback()
        return render_template("auth/verify_email.html", invalid=LINK_INVALID), 400
    link.user.email_verified = True
    db.session.commit()
    audit.log("email.verified", user_id=link.user_id)
    return render_template("auth/verify_email.html", done=link.email)
