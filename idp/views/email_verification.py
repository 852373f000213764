"""The user's e-mail address, which RPs read as the `email` and `email_verified` claims.

Confirming it: the account page mails a link to the address. Opening the link shows a button,
so a mail scanner that follows it confirms nothing. Changing it: the user confirms who they are
(password or a current code), and a link goes to the new address, which replaces the old one
only when that link is used; the old address is told twice, at the request and at the change.
Without mail, a new address replaces the old one at once, unconfirmed. An address the
administrator changes is unconfirmed again, and the links sent to the old one stop working
(security/mailed_links.py).
"""

from __future__ import annotations

import functools

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from flask import request

from ..models import User
from ..models import db
from ..models.user import problem_with_email
from ..security import audit
from ..security import mailed_links
from ..security import notices
from ..security import rate_limit
from .account import WRONG_CONFIRMATION
from .account import confirms_identity
from .account import index
from .account import login_required

bp = Blueprint("email_verification", __name__)

TOO_MANY_LINKS = "Too many links asked for. Wait a few minutes and try again."
LINK_INVALID = ("This link is not valid any more: it was used, or it expired, or a newer one "
                "was sent, or the address changed. Ask for a new one from your account page.")


def only_with_mail(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not notices.enabled():
            abort(404)
        return view(*args, **kwargs)
    return wrapped


@bp.post("/account/email/verify")
@login_required
@only_with_mail
def send_link(login):
    user = login.user
    if not user.email or user.email_verified:
        return index(notice="Nothing to confirm.")
    if _too_many_links(user):
        return index(error=TOO_MANY_LINKS), 429
    return index(notice=_mail_confirmation_link(user, user.email))


@bp.post("/account/email")
@login_required
def change_address(login):
    user = login.user
    address = request.form.get("email", "").strip()
    if problem := problem_with_email(address):
        return index(error=f"The new address {problem}."), 400
    if address == user.email:
        return index(notice="That is already your address.")
    if not confirms_identity(user):
        audit.log("email.change_refused", user_id=user.id)
        return index(error=WRONG_CONFIRMATION), 400
    if notices.enabled():
        if _too_many_links(user):
            return index(error=TOO_MANY_LINKS), 429
        notice = _mail_confirmation_link(user, address)
        if user.email:
            notices.send(user, "email_change_requested")
        return index(notice=f"{notice} Your address changes when you open it.")
    _take_address(user, address, confirmed=False)
    db.session.commit()
    audit.log("email.changed", user_id=user.id, confirmed=False)
    return index(notice="Your e-mail address has been changed. It is not confirmed: "
                        "applications you sign in to will see that.")


def _too_many_links(user: User) -> bool:
    config = current_app.config
    return rate_limit.count_attempt(f"verify:user:{user.id}", config["LOGIN_WINDOW_SECONDS"]) \
        > config["MAILED_LINK_MAX_REQUESTS"]


def _mail_confirmation_link(user: User, address: str) -> str:
    """Mail `address` a link that confirms it as the user's; returns what to tell the user."""
    ttl = current_app.config["EMAIL_VERIFICATION_TTL_SECONDS"]
    link = mailed_links.issue(user, mailed_links.VERIFY_EMAIL, "/email/verify", ttl,
                              email=address)
    db.session.commit()
    audit.log("email.verification_sent", user_id=user.id, new_address=address != user.email)
    notices.send_link(user, mailed_links.VERIFY_EMAIL, link, ttl, to=address)
    return f"A link is on its way to {address}. It works once, for {notices.duration(ttl)}."


def _take_address(user: User, address: str, confirmed: bool) -> None:
    """`address` becomes the user's; links sent to the old one stop working."""
    user.email = address
    user.email_verified = confirmed
    mailed_links.retire(user)


@bp.route("/email/verify", methods=["GET", "POST"])
@only_with_mail
def verify():
    token, link = mailed_links.from_request(mailed_links.VERIFY_EMAIL)
    if link is None:
        return render_template("auth/verify_email.html", invalid=LINK_INVALID), 400
    if request.method == "GET":
        return render_template("auth/verify_email.html", token=token, link=link)
    if not mailed_links.spend(link):  # another request used it first
        db.session.rollback()
        return render_template("auth/verify_email.html", invalid=LINK_INVALID), 400
    user, old_address = link.user, link.user.email
    changed = link.email != old_address
    if changed:
        _take_address(user, link.email, confirmed=True)
    else:
        user.email_verified = True
    db.session.commit()
    audit.log("email.changed" if changed else "email.verified", user_id=link.user_id,
              confirmed=True)
    if changed and old_address:
        notices.send(user, "email_changed_by_user", to=old_address)
    return render_template("auth/verify_email.html", done=link.email)
