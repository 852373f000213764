"""Protocol endpoints: /authorize (+ consent), /token, /userinfo, /end_session, /introspect,
/revoke."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from authlib.oidc.core.errors import ConsentRequiredError
from authlib.oidc.core.errors import InteractionRequiredError
from authlib.oidc.core.errors import LoginRequiredError
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from ..models import Client
from ..models import Consent
from ..models import PushedRequest
from ..models import db
from ..models.client import ANY_AUTH_METHOD
from ..oauth import dpop
from ..oauth import pushed_requests
from ..oauth import request_objects
from ..oauth import response_modes
from ..oauth.claims import SCOPE_DESCRIPTIONS
from ..oauth.server import authorization
from ..oauth.subjects import subject_for
from ..security import audit
from ..security import rate_limit
from ..sessions import ACR_MFA
from ..sessions import current_login
from ..sessions import parked_authorization_url
from ..sessions import session_would_fit

bp = Blueprint("oauth", __name__)
SIGNED_REQUEST_OBJECTS_ONLY = ("This client's authorization requests must be request objects "
                               "it signed (RFC 9101).")
REQUEST_TOO_LARGE = ("The authorization request is too large to keep while the user signs in "
                     f"({pushed_requests.PARKED_MAX_BYTES // 1024} KiB of parameters at most): "
                     "push it to the pushed_authorization_request_endpoint (RFC 9126).")


class TooManyParkedRequests(OAuth2Error):
    """RFC 6749 §4.1.2.1: this address has parked too many large requests for now."""

    error = "temporarily_unavailable"
    description = ("Too many large authorization requests came from this address: try again "
                   "later, or push them to the pushed_authorization_request_endpoint "
                   "(RFC 9126).")


class RegistrationNotSupportedError(OAuth2Error):
    """OIDC Core §7.2.1: self-issued OpenID Providers' `registration` parameter."""

    error = "registration_not_supported"


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    """Validate the request, then sign-in, then consent, then the code (OIDC Core §3.1.2)."""
    server = authorization()
    login = current_login()
    oauth_request = server.create_oauth2_request(request)
    # The browser is back from sign-in or consent with a request this session parked: it was
    # checked when it came, and the pushed request or request object it names may have
    # expired since, within pushed_requests.RESUME_SECONDS.
    g.authorization_resumed = _pending_for(
        pushed_requests.authorization_parameters(request.values)) is not None
    try:
        if pushed := _pushed_request():
            oauth_request = pushed_requests.as_oauth2_request(pushed.params)
        grant = server.get_consent_grant(request=oauth_request,
                                         end_user=login.user if login else None)
        return _continue_authorization(grant, login, pushed)
    except pushed_requests.ExpiredRequestUri as error:
        return _authorization_error(error, error.params)  # sent as the pushed request asked
    except OAuth2Error as error:
        # Sent the way the request asked: its request object's parameters, once verified,
        # replace the payload (request_objects.py).
        return _authorization_error(error, oauth_request.payload.data)


def _pushed_request() -> PushedRequest | None:
    """The request pushed to /par (RFC 9126) that this one names by its request_uri, if any:
    its parameters are the request, whatever else the browser sent."""
    request_uri = request.values.get("request_uri")
    if not pushed_requests.is_pushed(request_uri):
        return None
    return pushed_requests.find_live(request_uri, request.values.get("client_id"),
                                     resumed=g.authorization_resumed)


def _continue_authorization(grant, login, pushed: PushedRequest | None = None):
    server = authorization()
    payload = grant.request.payload
    redirect_uri = payload.redirect_uri  # validated against the client by Authlib
    # The request's parameters: those pushed, those of its request object, or the URL's.
    args = pushed.params if pushed else pushed_requests.authorization_parameters(payload.data)
    if args.get("registration"):
        raise RegistrationNotSupportedError(redirect_uri=redirect_uri, state=payload.state)
    if grant.client.require_par and pushed is None:
        raise InvalidRequestError("This client's authorization requests must be pushed to the "
                                  "pushed_authorization_request_endpoint (RFC 9126).",
                                  redirect_uri=redirect_uri, state=payload.state)
    sent = pushed_requests.authorization_parameters(request.values)
    if grant.client.require_signed_request_object and pushed is None and \
            not request_objects.sends_one(sent):  # a pushed one was checked at /par
        raise InvalidRequestError(SIGNED_REQUEST_OBJECTS_ONLY, redirect_uri=redirect_uri,
                                  state=payload.state)
    # What the browser comes back with after sign-in or consent: what it sent, so a pushed
    # request is named by its request_uri again (its parameters never pass through the
    # browser) and a request object is checked again.
    parked = ({"client_id": pushed.client_id, "request_uri": request.values["request_uri"]}
              if pushed else sent)

    pending = _pending_for(parked)
    prompts = set(args.get("prompt", "").split())
    # Signed in on the login page while this very request waited: that satisfies
    # prompt=login and max_age, however old the request itself is.
    fresh = bool(pending and pending.get("authenticated"))

    if _needs_login(login, grant.client, args, prompts, fresh, redirect_uri, payload.state):
        if "none" in prompts:
            raise LoginRequiredError(redirect_uri=redirect_uri, state=payload.state)
        _park(parked, grant)
        return redirect(url_for("auth.login"))

    client = grant.client
    user = login.user
    if _needs_second_factor(client, args, login):
        if "none" in prompts:
            raise InteractionRequiredError(redirect_uri=redirect_uri, state=payload.state)
        _park(parked, grant, authenticated=fresh)
        audit.log("authorization.step_up", user_id=user.id, client_id=client.client_id,
                  enrolled=user.has_totp)
        # A user with an authenticator confirms a code; one without enrolls one first.
        return redirect(url_for("auth.second_factor" if user.has_totp else "account.totp"))

    scope = grant.request.scope or ""
    decision = pending.get("decision") if pending else None
    if decision == "deny":
        session.pop("pending_authz", None)
        _answered(pushed)
        audit.log("consent.denied", user_id=user.id, client_id=client.client_id)
        response = server.create_authorization_response(grant.request, grant=grant,
                                                        grant_user=None)
        return _to_client(response, args, redirect_uri)
    if decision != "allow" and _needs_consent(client, user, scope, prompts):
        if "none" in prompts:
            raise ConsentRequiredError(redirect_uri=redirect_uri, state=payload.state)
        _park(parked, grant, authenticated=fresh)
        return render_template(
            "oauth/consent.html",
            client=client,
            user=user,
            scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in scope.split()],
            resources=args.get("resource", []),  # RFC 8707: where the tokens will be usable
            # Where the answer goes: for a self-registered client, the one thing checked.
            redirect_host=urlsplit(redirect_uri).netloc or urlsplit(redirect_uri).scheme,
            # Where a client that is its metadata document's URL published it (its host), and
            # whether the answer goes to another host (the draft's §6.3 warning).
            document_host=(urlsplit(client.client_id).netloc
                           if client.metadata_document_expires_at else None),
            hosts_differ=urlsplit(client.client_id).hostname != urlsplit(redirect_uri).hostname,
        )

    session.pop("pending_authz", None)
    if client.first_party:
        # Not asked, but remembered like any consent: it is what a refresh checks, and what
        # the user can withdraw.
        Consent.grant(user.id, client.client_id, scope)
        db.session.commit()
    _answered(pushed)
    grant.request.auth_context = {"auth_time": login.auth_time, "amr": login.amr, "acr": login.acr,
                                  "sid": login.oidc_sid}
    response = server.create_authorization_response(grant.request, grant=grant, grant_user=user)
    audit.log("authorization.code_issued", user_id=user.id, client_id=client.client_id)
    return _to_client(response, args, redirect_uri)


def _answered(pushed: PushedRequest | None) -> None:
    """A pushed request is spent once the user's answer goes out from it (RFC 9126 §4)."""
    if pushed is not None:
        pushed_requests.spend(pushed)
        db.session.commit()


def _needs_login(login, client, args, prompts, fresh, redirect_uri, state) -> bool:
    """No session, or the request asks for a sign-in newer than the one we have."""
    if login is None:
        return True
    if "login" in prompts and not fresh:
        return True
    if "max_age" in args:
        try:
            max_age = int(args["max_age"])
            if max_age < 0:
                raise ValueError
        except ValueError:
            raise InvalidRequestError("max_age must be a non-negative integer.",
                                      redirect_uri=redirect_uri, state=state) from None
        if time.time() - login.auth_time > max_age and not fresh:
            return True
    if hint := args.get("id_token_hint"):
        # Its `sub` is the user's public one, or the one this client knows them by.
        known_as = {login.user.subject, subject_for(login.user, client)}
        if _id_token_hint_subject(hint, redirect_uri, state) not in known_as:
            return True  # the RP expects another user: ask who is there
    return False


def _id_token_hint_subject(hint: str, redirect_uri, state) -> str | None:
    """OIDC Core §3.1.2.1: an ID token we issued, possibly expired; its `sub`."""
    try:
        token = current_app.extensions["idp.keys"].verify(hint)
        if token.claims.get("iss") != current_app.config["ISSUER"]:
            raise ValueError("foreign issuer")
    except Exception:
        raise InvalidRequestError("id_token_hint is not a valid ID token of this provider.",
                                  redirect_uri=redirect_uri, state=state) from None
    return token.claims.get("sub")


def _needs_second_factor(client, args: dict, login) -> bool:
    """The client always wants a second factor, or this request asks for it with acr_values,
    and the session was signed in with a password alone."""
    asked = client.require_mfa or ACR_MFA in args.get("acr_values", "").split()
    return asked and login.acr != ACR_MFA


def _needs_consent(client, user, scope: str, prompts: set[str]) -> bool:
    if client.first_party:
        return False
    if "consent" in prompts:
        return True
    consent = Consent.find(user.id, client.client_id)
    return consent is None or not consent.covers(scope)


def _pending_for(args: dict) -> dict | None:
    """The parked state of this very request (same parameters), if it is being resumed."""
    pending = session.get("pending_authz")
    if pending and pending.get("args") == args:
        return pending
    return None


def _park(args: dict, grant, authenticated: bool = False) -> None:
    """Keep the validated request in the session's cookie while the user signs in or consents.
    One too large to fit there (browsers drop a cookie over 4 KB without a word) waits in the
    database instead, and the cookie holds only the request_uri that names it."""
    pending = {
        "args": args,
        "authenticated": authenticated,
        "client_id": grant.client.client_id,
        "scope": grant.request.scope or "",
    }
    if not session_would_fit({"pending_authz": {**pending, "decision": "allow"}}):
        pending["args"] = _park_in_database(grant)
    session["pending_authz"] = pending


def _park_in_database(grant) -> dict:
    """Keep the request as if the client had pushed it to /par (RFC 9126): its parameters as
    checked, the browser coming back with the request_uri. Nobody authenticated it, so its
    size and how many an address may park are bounded (pushed_requests.PARKED_*)."""
    payload = grant.request.payload
    client_id = grant.client.client_id
    params = pushed_requests.authorization_parameters(payload.data)  # as /par keeps them
    if len(json.dumps(params)) > pushed_requests.PARKED_MAX_BYTES:
        raise InvalidRequestError(REQUEST_TOO_LARGE, redirect_uri=payload.redirect_uri,
                                  state=payload.state)
    if rate_limit.count_attempt(f"parked_request:ip:{request.remote_addr}",
                               pushed_requests.PARKED_WINDOW_SECONDS) \
            > pushed_requests.PARKED_PER_WINDOW:
        raise TooManyParkedRequests(redirect_uri=payload.redirect_uri, state=payload.state)
    request_uri = pushed_requests.store(client_id, params)
    db.session.commit()
    audit.log("authorization.parked", client_id=client_id)
    return {"client_id": client_id, "request_uri": request_uri}


def _to_client(response, args, redirect_uri: str):
    """The authorization response, sent as the request's response_mode asks."""
    return response_modes.deliver(response, redirect_uri,
                                  response_modes.requested(args, redirect_uri),
                                  args.get("client_id"))


def _authorization_error(error: OAuth2Error, args):
    """Redirect only to a validated redirect_uri (Authlib sets it only after checking it);
    otherwise show the error to the user (RFC 6749 §4.1.2.1)."""
    server = authorization()
    session.pop("pending_authz", None)
    audit.log("authorization.rejected", error=error.error)
    if error.redirect_uri:
        response = server.handle_error_response(request, error)
        server.issuer_parameter.add_issuer_parameter(server, response)
        return _to_client(response, args, error.redirect_uri)
    return render_template("error.html", error=error.error,
                           description=error.get_error_description()), error.status_code


@bp.post("/consent")
def consent():
    """The consent page's answer: remember it, then resume the authorization request."""
    pending = session.get("pending_authz")
    login = current_login()
    if not pending or login is None or "scope" not in pending:
        return render_template(
            "error.html",
            error="no_pending_request",
            description="There is no sign-in request waiting for an answer. "
            "Go back to the application and start again.",
        ), 400
    decision = request.form.get("decision")
    if decision not in ("allow", "deny"):
        abort(400)
    client = Client.by_client_id(pending["client_id"])
    if client is None:
        abort(400)
    if decision == "allow":
        Consent.grant(login.user_id, client.client_id, pending["scope"])
        db.session.commit()
        audit.log("consent.granted", user_id=login.user_id, client_id=client.client_id,
                  scope=pending["scope"])
    pending["decision"] = decision
    session["pending_authz"] = pending
    return redirect(parked_authorization_url(), code=303)


@bp.post("/par")
def push_authorization_request():
    """RFC 9126 §2: the client, authenticated as at the token endpoint, pushes its
    authorization request; it is checked as /authorize would, and kept under a request_uri."""
    server = authorization()
    oauth_request = server.create_oauth2_request(request)
    try:
        client = server.authenticate_client(oauth_request, list(ANY_AUTH_METHOD),
                                            endpoint="par")
        params = pushed_requests.authorization_parameters(request.form)
        if params.setdefault("client_id", client.client_id) != client.client_id:
            raise InvalidRequestError("client_id is not the client that authenticated.")
        if "request_uri" in params:
            raise InvalidRequestError("A pushed request cannot itself name a request_uri.")
        if request_objects.sends_one(params):  # RFC 9126 §3: kept as the object's, verified
            params = request_objects.parameters_of(server, params)
        elif client.require_signed_request_object:
            raise InvalidRequestError(SIGNED_REQUEST_OBJECTS_ONLY)
        # RFC 9449 §10.1: a proof sent with the request binds its code to the proof's key.
        if (proof_jkt := dpop.proof_key("/par")) is not None and \
                params.setdefault("dpop_jkt", proof_jkt) != proof_jkt:
            raise dpop.InvalidDPoPProofError("dpop_jkt is not the key of the DPoP proof.")
        if params.get("registration"):
            raise RegistrationNotSupportedError()
        pushed = pushed_requests.as_oauth2_request(params)
        grant = server.get_authorization_grant(pushed)
        grant.validate_no_multiple_request_parameter(oauth_request)  # as sent, not as kept
        grant.validate_authorization_request()
    except OAuth2Error as error:
        error.redirect_uri = None  # §2.3: the client is told, never the browser
        audit.log("authorization.push_rejected", error=error.error)
        return server.handle_error_response(oauth_request, error)
    request_uri = pushed_requests.store(client.client_id, params)
    db.session.commit()
    audit.log("authorization.pushed", client_id=client.client_id)
    return server.handle_response(
        201, {"request_uri": request_uri, "expires_in": pushed_requests.LIFETIME_SECONDS},
        default_json_headers)


@bp.post("/token")
def token():
    return authorization().create_token_response()


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    response = authorization().create_endpoint_response("userinfo")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/introspect")
def introspect():
    return authorization().create_endpoint_response("introspection")


@bp.post("/revoke")
def revoke():
    return authorization().create_endpoint_response("revocation")


@bp.route("/end_session", methods=["GET", "POST"])
def end_session():
    """OIDC RP-Initiated Logout 1.0. Redirect only to a registered post_logout_redirect_uri
    of the client named by a valid id_token_hint; otherwise ask the user."""
    server = authorization()
    try:
        end_request = server.validate_endpoint_request("end_session")
    except InsecureTransportError:
        raise  # the app's own page (errors.py), not Authlib's text
    except OAuth2Error as error:
        audit.log("logout.rejected", error=error.error)
        return render_template("error.html", error=error.error,
                               description=error.get_error_description()), 400
    asked_uri = request.values.get("post_logout_redirect_uri")
    if asked_uri and end_request.redirect_uri is None and end_request.id_token_claims:
        audit.log("logout.rejected", error="unregistered_post_logout_redirect_uri")
        return render_template(
            "error.html",
            error="invalid_request",
            description="The post_logout_redirect_uri is not registered for this application.",
        ), 400
    if end_request.needs_confirmation:
        # Without a valid id_token_hint anyone could sign the user out: let the user decide.
        return render_template("auth/logout.html", user=current_login() and current_login().user,
                               client=end_request.client)
    response = server.create_endpoint_response("end_session", end_request)
    return response or render_template("auth/logged_out.html", client=end_request.client)
