"""Pushed Authorization Requests (RFC 9126): a client POSTs its authorization request to /par,
authenticated as at the token endpoint, and the browser then carries only a `request_uri` to
/authorize. The parameters never pass through the browser, so it can neither read nor alter
them, and a request of any size fits.

A pushed request is checked when it is pushed, with the rules of /authorize, and an error is
answered to the client as JSON (it never goes to a redirect URI). It can be named for
LIFETIME_SECONDS, by the client it was pushed by, and any number of times until the user's
answer (a code, or a refusal) has been sent from it: a user who reloads the sign-in page or
goes back does not break it, but once answered it is spent. A browser coming back to it from
sign-in or consent may do so up to RESUME_SECONDS after it expired. A browser too late is sent
back to the client with the error (ExpiredRequestUri), while the request is kept.

/authorize keeps a request here too, as if it had been pushed, when it is too large for the
session cookie where a request waits while the user signs in (views/oauth.py). Nobody
authenticated such a request: at most PARKED_MAX_BYTES of parameters, and PARKED_PER_WINDOW
from one address in PARKED_WINDOW_SECONDS.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from flask import Request
from flask import current_app
from sqlalchemy import update
from werkzeug.test import EnvironBuilder

from ..models import PushedRequest
from ..models import RegisteredClient
from ..models import db
from ..models import utcnow
from ..security.hashing import hash_secret
from ..security.hashing import new_secret

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME_SECONDS = 60  # RFC 9126 §2.2's example, and FAPI 2.0's limit of 600 s is far
# The lifetime limits how long the client may take to send the browser; once there, the user
# may take this much longer to sign in (a forgotten password, a second factor to enroll): the
# browser's session, which parked the request, proves it came in time. Request objects too.
RESUME_SECONDS = 1800
PARKED_MAX_BYTES = 64 * 1024  # as JSON; a request object fetched by reference may be as large
PARKED_PER_WINDOW = 60  # per client address
PARKED_WINDOW_SECONDS = 300
# What authenticates the client at /par, and is no part of the authorization request.
CLIENT_AUTH_PARAMETERS = frozenset({"client_secret", "client_assertion",
                                    "client_assertion_type"})


class InvalidRequestUri(OAuth2Error):
    """RFC 9101 §7: the request_uri names no request this client may use now. Shown as a
    page: without a request there is no redirect URI to trust."""

    error = "invalid_request_uri"
    description = ("The request_uri is unknown, expired, already answered, or not this "
                   "client's. Go back to the application and start again.")


class ExpiredRequestUri(InvalidRequestUri):
    """The client's own request, unanswered, but expired: the browser came too late from the
    client, or back from sign-in too late. The request still names its redirect URI and state,
    so the client is told and can start again by itself (node-oidc-provider#801 is the
    complaint where it cannot). `params`: the request's, for the way the error is sent."""

    description = "The authorization request this request_uri names has expired."

    def __init__(self, params: dict, redirect_uri: str):
        super().__init__(redirect_uri=redirect_uri, state=params.get("state"))
        self.params = params


def authorization_parameters(values) -> dict:
    """One value a name, but every `resource` (RFC 8707), as /authorize parks them; without
    the client's credentials."""
    params = {name: value for name, value in values.to_dict().items()
              if name not in CLIENT_AUTH_PARAMETERS}
    if resources := values.getlist("resource"):
        params["resource"] = list(dict.fromkeys(resources))
    return params


def as_oauth2_request(params: dict) -> FlaskOAuth2Request:
    """The authorization request these parameters make, as Authlib reads one from /authorize."""
    environ = EnvironBuilder(method="GET", path="/authorize",
                             base_url=current_app.config["ISSUER"],
                             query_string=urlencode(params, doseq=True)).get_environ()
    return FlaskOAuth2Request(Request(environ))


def store(client_id: str, params: dict) -> str:
    """Keep a checked request; returns its request_uri. The caller commits."""
    handle = new_secret()
    db.session.add(PushedRequest(
        handle_hash=hash_secret(handle), client_id=client_id, params=params,
        expires_at=utcnow() + timedelta(seconds=LIFETIME_SECONDS)))
    return URN_PREFIX + handle


def is_pushed(request_uri) -> bool:
    return isinstance(request_uri, str) and request_uri.startswith(URN_PREFIX)


def find_live(request_uri: str, client_id: str | None, resumed: bool = False) -> PushedRequest:
    """The request `request_uri` names, if `client_id` pushed it and it is unexpired and
    unanswered; else InvalidRequestUri. `resumed`: the browser is back with it from sign-in
    or consent, so it may have expired up to RESUME_SECONDS ago."""
    handle = request_uri.removeprefix(URN_PREFIX)
    pushed = None
    if 0 < len(handle) <= 100:
        pushed = db.session.execute(
            db.select(PushedRequest).filter_by(handle_hash=hash_secret(handle))
        ).scalar_one_or_none()
    if pushed is None or pushed.client_id != client_id or pushed.used_at is not None:
        raise InvalidRequestUri()
    if pushed.expires_at <= utcnow() - timedelta(seconds=RESUME_SECONDS if resumed else 0):
        raise _expired(pushed)
    return pushed


def _expired(pushed: PushedRequest) -> InvalidRequestUri:
    """ExpiredRequestUri, told to the request's redirect URI if its client still has it
    registered (it was checked when the request came); else the page."""
    client = RegisteredClient.find(pushed.client_id)
    redirect_uri = pushed.params.get("redirect_uri")
    if client is None or not isinstance(redirect_uri, str) or \
            not client.check_redirect_uri(redirect_uri):
        return InvalidRequestUri()
    return ExpiredRequestUri(pushed.params, redirect_uri)


def spend(pushed: PushedRequest) -> None:
    """Mark the request answered, once; InvalidRequestUri if another request did first.
    The caller commits."""
    spent = db.session.execute(
        update(PushedRequest)
        .where(PushedRequest.id == pushed.id, PushedRequest.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if spent != 1:
        raise InvalidRequestUri()
