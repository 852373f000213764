"""The account page: what a signed-in user manages for themselves — password, second factor,
recovery codes, and the applications they have authorized."""

from __future__ import annotations

import functools
import re
import time
from types import SimpleNamespace

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from ..models import Client
from ..models import Consent
from ..models import TokenFamily
from ..models import db
from ..models import utcnow
from ..models.user import NAME_MAX_LENGTH
from ..models.user import problem_with_text
from ..oauth.claims import SCOPE_DESCRIPTIONS
from ..oauth.token_store import revoke_families
from ..security import audit
from ..security import mfa
from ..security import notices
from ..security.passwords import PasswordPolicyError
from ..security.passwords import hash_password
from ..security.passwords import verify_password
from ..sessions import ACR_MFA
from ..sessions import current_login
from ..sessions import delete_account
from ..sessions import end_all_sessions_of
from ..sessions import live_sessions_of
from ..sessions import parked_authorization_url
from ..sessions import sign_out_everywhere
from ..sessions import start_login

bp = Blueprint("account", __name__, url_prefix="/account")

WRONG_CONFIRMATION = "That password or code is not right."
SIGNED_OUT_ELSEWHERE = ("You were signed out everywhere else, and your applications will ask "
                        "you to sign in again.")


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        login = current_login()
        if login is None:
            if request.method == "GET":
                session["after_login"] = request.path
            return redirect(url_for("auth.login"))
        return view(login, *args, **kwargs)

    return wrapped


@bp.get("")
@login_required
def index(login, **page):
    user = login.user
    rows = db.session.execute(
        db.select(Consent, Client).join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_id == user.id).order_by(Client.name)
    ).all()
    apps = [{"client_id": client.client_id, "name": client.name, "granted": consent.updated_at,
             "scopes": [SCOPE_DESCRIPTIONS.get(s, s) for s in consent.scope.split()]}
            for consent, client in rows]
    return render_template("account/index.html", user=user, login=login, apps=apps,
                           # this browser's first, then the latest active
                           sessions=sorted(live_sessions_of(user), key=lambda s: s.id != login.id),
                           recovery_codes_left=mfa.recovery_codes_left(user), **page)


@bp.post("/sessions/end")
@login_required
def end_sessions(login):
    """Sign out one other session of the user, or all of them (ASVS 7.5.2), once the user has
    confirmed with the password or a current code: a session left open must not be enough."""
    user = login.user
    which = request.form.get("session", "")
    # ASCII digits, and few enough for any database's integer ("²" is a digit to isdigit()).
    if which != "others" and not re.fullmatch(r"[0-9]{1,18}", which):
        return index(error="Choose a session to sign out."), 400
    if which == str(login.id):
        return index(error="That is the session of this browser: use Sign out below."), 400
    if not confirms_identity(user):
        audit.log("session.end_refused", user_id=user.id)
        return index(error=WRONG_CONFIRMATION), 400
    ended = end_all_sessions_of(user, keep=login,
                                only=None if which == "others" else int(which))
    db.session.commit()
    audit.log("session.ended_by_user", user_id=user.id, sessions_ended=ended)
    if which == "others":
        return index(notice="You were signed out everywhere else.")
    return index(notice="That session is signed out." if ended
                 else "That session had already ended.")


@bp.post("/apps/withdraw")
@login_required
def withdraw_consent(login):
    """Forget the consent, and revoke the refresh tokens (and their access tokens) the app
    holds for this user: it has to ask again. The app is named in the form, not the path: a
    client_id may be a URL (a client metadata document's), slashes and all."""
    user_id = login.user_id
    client_id = request.form.get("client_id", "")
    consent = Consent.find(user_id, client_id)
    if consent is not None:
        db.session.delete(consent)
        revoked = revoke_families("consent_withdrawn", TokenFamily.user_id == user_id,
                                  TokenFamily.client_id == client_id)
        db.session.commit()
        audit.log("consent.withdrawn", user_id=user_id, client_id=client_id,
                  revoked_families=revoked)
    return redirect(url_for("account.index"), code=303)


@bp.post("/delete")
@login_required
def delete_own_account(login):
    """The right to erasure, where the operator allows it (ACCOUNT_SELF_DELETION): confirmed
    with the password or a current code, and with a box ticked, since nothing can undo it."""
    if not current_app.config["ACCOUNT_SELF_DELETION"]:
        abort(404)
    user = login.user
    if request.form.get("confirm") != "yes":
        return index(error="Tick the box to confirm that the account is to be deleted."), 400
    if not confirms_identity(user):
        audit.log("account.deletion_refused", user_id=user.id)
        return index(error=WRONG_CONFIRMATION), 400
    # What the notice needs, read before the row goes.
    deleted = SimpleNamespace(id=user.id, username=user.username, email=user.email)
    signed_out = delete_account(user)
    db.session.commit()
    session.clear()
    audit.log("account.deleted", user_id=deleted.id, **signed_out)
    notices.send(deleted, "account_deleted")
    return render_template("account/deleted.html")


@bp.post("/name")
@login_required
def change_name(login):
    name = request.form.get("name", "").strip()
    if problem := problem_with_text(name, NAME_MAX_LENGTH):
        return index(error=f"The name {problem}."), 400
    login.user.name = name
    db.session.commit()
    audit.log("account.name_changed", user_id=login.user_id)
    return index(notice="Your name has been changed. Applications see it the next time they "
                        "read your profile.")


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password(login):
    """The current password is required; every other session of the user ends, and every
    refresh token is revoked: whoever knew the old password keeps nothing (REFERENCE 28)."""
    if request.method == "GET":
        return render_template("account/password.html")
    user = login.user
    form = request.form
    error = None
    if not mfa.count_attempt(user):
        error = "Too many attempts. Wait a few minutes and try again."
    elif not verify_password(user.password_hash, form.get("current_password", "")):
        error = "Your current password is not right."
    elif form.get("new_password", "") != form.get("confirm_password", ""):
        error = "The new passwords do not match."
    else:
        try:
            user.password_hash = hash_password(form.get("new_password", ""))
        except PasswordPolicyError as exc:
            error = str(exc)
    if error:
        audit.log("account.password_change_failed", user_id=user.id)
        return render_template("account/password.html", error=error), 400
    mfa.reset_attempts(user)
    user.password_changed_at = utcnow()
    signed_out = sign_out_everywhere(user, "password_changed", keep=login)
    db.session.commit()
    audit.log("account.password_changed", user_id=user.id, **signed_out)
    notices.send(user, "password_changed")
    return index(notice=f"Your password has been changed. {SIGNED_OUT_ELSEWHERE}")


@bp.route("/mfa/totp", methods=["GET", "POST"])
@login_required
def totp(login):
    """Enrolment: a new secret as a QR code and as text; the factor counts once the user types
    a code it produced. A sign-in older than MFA_PENDING_SECONDS must give the password too,
    so that a session left open cannot bind somebody else's authenticator."""
    user = login.user
    if user.has_totp:
        return redirect(url_for("account.index"))
    needs_password = time.time() - login.auth_time > current_app.config["MFA_PENDING_SECONDS"]
    if request.method == "GET" or user.totp is None:
        return _enrollment_page(user, mfa.start_enrollment(user), needs_password)
    error = None
    if not mfa.count_attempt(user):
        error = "Too many attempts. Wait a few minutes and try again."
    elif needs_password and not verify_password(user.password_hash,
                                                request.form.get("password", "")):
        error = "Your password is not right."
    elif not mfa.accept_totp(user.totp, request.form.get("otp")):
        error = "That code is not valid. Enter the code your app shows now."
    if error:
        audit.log("mfa.enrollment_failed", user_id=user.id)
        secret = mfa.decrypt_secret(user.totp.secret_encrypted)
        return _enrollment_page(user, secret, needs_password, error), 400
    mfa.reset_attempts(user)
    user.totp.confirmed_at = utcnow()
    codes = mfa.new_recovery_codes(user)
    signed_out = sign_out_everywhere(user, "mfa_enrolled", keep=login)
    # The user has just used the factor: this browser's session is replaced by a two-factor
    # one (start_login commits all of the above).
    start_login(user, amr=["pwd", "otp"], acr=ACR_MFA)
    audit.log("mfa.enrolled", user_id=user.id, **signed_out)
    notices.send(user, "totp_enabled")
    return _recovery_codes_page(codes)


def _enrollment_page(user, secret: str, needs_password: bool, error: str | None = None):
    uri = mfa.provisioning_uri(secret, user)
    return render_template("account/totp.html", secret=secret, qr_svg=mfa.qr_code_svg(uri),
                           needs_password=needs_password, error=error)


def _recovery_codes_page(codes: list[str]):
    next_url = parked_authorization_url() or url_for("account.index")
    return render_template("account/recovery_codes.html", codes=codes, next_url=next_url,
                           notice=SIGNED_OUT_ELSEWHERE)


def confirms_identity(user) -> bool:
    """The password or a current code (or a recovery code), for changes to the factors."""
    if not mfa.count_attempt(user):
        return False
    form = request.form
    confirmed = bool(form.get("password")) and verify_password(user.password_hash,
                                                               form["password"])
    confirmed = confirmed or mfa.verify_second_factor(user, form.get("otp")) is not None
    if confirmed:
        mfa.reset_attempts(user)
    return confirmed


def confirmed_factor_change(refused_event: str):
    """For a change to an enrolled second factor: the user confirms with the password or a
    current code first (a session left open must not be enough)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapped(login):
            user = login.user
            if not user.has_totp:
                return redirect(url_for("account.index"))
            if not confirms_identity(user):
                audit.log(refused_event, user_id=user.id)
                return index(error=WRONG_CONFIRMATION), 400
            return view(login)
        return wrapped
    return decorate


@bp.post("/mfa/recovery-codes")
@login_required
@confirmed_factor_change("mfa.recovery_codes_refused")
def regenerate_recovery_codes(login):
    codes = mfa.new_recovery_codes(login.user)
    signed_out = sign_out_everywhere(login.user, "recovery_codes_regenerated", keep=login)
    db.session.commit()
    audit.log("mfa.recovery_codes_regenerated", user_id=login.user_id, **signed_out)
    notices.send(login.user, "recovery_codes_regenerated")
    return _recovery_codes_page(codes)


@bp.post("/mfa/totp/disable")
@login_required
@confirmed_factor_change("mfa.disable_refused")
def disable_totp(login):
    mfa.remove_factors(login.user)
    signed_out = sign_out_everywhere(login.user, "mfa_disabled", keep=login)
    db.session.commit()
    audit.log("mfa.disabled", user_id=login.user_id, **signed_out)
    notices.send(login.user, "totp_disabled")
    return index(notice="Two-step sign-in is off. Your recovery codes no longer work. "
                        + SIGNED_OUT_ELSEWHERE)
