"""The Device Authorization Grant's endpoints (RFC 8628, oauth/device.py): the device's
request (/device_authorization), and the page where the user types its code and answers
(/device)."""

from __future__ import annotations

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc6749 import scope_to_list
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from ..models import Consent
from ..models import db
from ..models.client import ANY_AUTH_METHOD
from ..oauth import device
from ..oauth.claims import SCOPE_DESCRIPTIONS
from ..oauth.server import authorization
from ..oauth.tokens import requested_audience
from ..security import audit
from ..security import rate_limit
from ..sessions import ACR_MFA
from ..sessions import current_login

bp = Blueprint("device", __name__)

CODE_NOT_FOUND = ("That code is not valid, or it has expired. Check it on your device, or start "
                  "again there.")
TOO_MANY_CODES = "Too many codes tried. Wait a few minutes and try again."


@bp.post("/device_authorization")
def device_authorization():
    """RFC 8628 §3.1-3.2: the device, authenticated as at the token endpoint (a public client
    by its client_id), asks for a device_code and a user_code."""
    server = authorization()
    oauth_request = server.create_oauth2_request(request)
    try:
        client = server.authenticate_client(oauth_request, list(ANY_AUTH_METHOD),
                                            endpoint="device_authorization")
        if not client.check_grant_type(device.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the device_code grant.")
        scope = _granted_scope(client, request.form.get("scope"))
        resources = request.form.getlist("resource")
        requested_audience(resources, client)  # each must be registered (RFC 8707 §2)
    except OAuth2Error as error:
        audit.log("device.request_rejected", error=error.error)
        return server.handle_error_response(oauth_request, error)
    body = device.start(client, scope, list(dict.fromkeys(resources)))
    audit.log("device.requested", client_id=client.client_id)
    return server.handle_response(200, body, default_json_headers)


def _granted_scope(client, asked: str | None) -> str:
    """What the device asked, all of which the client must be allowed; nothing asked: all."""
    allowed = scope_to_list(client.scope) or []
    requested = scope_to_list(asked) or []
    if any(scope not in allowed for scope in requested):
        raise InvalidScopeError("The client is not allowed a requested scope.")
    return " ".join(dict.fromkeys(requested or allowed))


@bp.route("/device", methods=["GET", "POST"])
def enter():
    """The page the device names (verification_uri): sign in, type the code, then confirm."""
    login = current_login()
    if login is None:
        session["after_login"] = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("device/enter.html",
                               user_code=request.args.get("user_code", "")[:20])
    pending, refusal = _pending_for(login, request.form.get("user_code", ""))
    if refusal:
        return refusal
    if (step_up := _second_factor_first(login, pending)) is not None:
        return step_up
    return render_template(
        "device/confirm.html", client=pending.client, user=login.user,
        user_code=_shown(request.form["user_code"]),
        scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in pending.scope.split()],
        resources=pending.resources)


@bp.post("/device/decide")
def decide():
    login = current_login()
    if login is None:  # the session ended while the page was open: sign in, start again
        return redirect(url_for("device.enter"), code=303)
    decision = request.form.get("decision")
    if decision not in ("allow", "deny"):
        abort(400)
    pending, refusal = _pending_for(login, request.form.get("user_code", ""))
    if refusal:
        return refusal
    if (step_up := _second_factor_first(login, pending)) is not None:
        return step_up
    client, allowed = pending.client, decision == "allow"
    if not device.answer(pending, login, allowed):  # answered in another tab meanwhile
        db.session.rollback()
        return _enter_again(CODE_NOT_FOUND), 400
    if allowed:  # remembered like any consent: the user sees it, and can withdraw it
        Consent.grant(login.user_id, client.client_id, pending.scope)
    db.session.commit()
    audit.log("device.allowed" if allowed else "device.denied", user_id=login.user_id,
              client_id=client.client_id)
    return render_template("device/done.html", client=client, allowed=allowed)


def _pending_for(login, typed: str):
    """(the request the code names, None), or (None, a page that says why not). Wrong codes
    are counted per user and per address, as wrong passwords are: one account, or many from
    one address, cannot guess their way to someone else's code."""
    config = current_app.config
    window = config["LOGIN_WINDOW_SECONDS"]
    user_key, ip_key = f"device:user:{login.user_id}", f"device:ip:{request.remote_addr}"
    over_user = rate_limit.count_attempt(user_key, window) > config[
        "LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    over_ip = rate_limit.count_attempt(ip_key, window) > config["LOGIN_MAX_FAILURES_PER_IP"]
    if over_user or over_ip:
        audit.log("device.throttled", user_id=login.user_id, by="user" if over_user else "ip")
        return None, (_enter_again(TOO_MANY_CODES, typed), 429)
    pending = device.find_pending(typed)
    if pending is None:
        audit.log("device.code_refused", user_id=login.user_id)
        return None, (_enter_again(CODE_NOT_FOUND, typed), 400)
    rate_limit.refund(user_key)
    rate_limit.refund(ip_key)
    return pending, None


def _second_factor_first(login, pending):
    """A client registered --require-mfa gets no answer from a password-only session: the
    user confirms a code first, then comes back here."""
    if not pending.client.require_mfa or login.acr == ACR_MFA:
        return None
    if not login.user.has_totp:
        return _enter_again("This application needs two-step sign-in. Set up an authenticator "
                            "on your account page, then enter the code again."), 403
    session["after_login"] = url_for("device.enter", user_code=_shown(
        request.form.get("user_code", "")))
    return redirect(url_for("auth.second_factor"), code=303)


def _enter_again(error: str, typed: str = ""):
    return render_template("device/enter.html", error=error, user_code=typed[:20])


def _shown(typed: str) -> str:
    code = device.normalize_user_code(typed)
    return f"{code[:4]}-{code[4:]}"
