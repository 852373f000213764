"""/register: dynamic client registration (RFC 7591), and /register/CLIENT_ID, where a
self-registered client manages its registration (RFC 7592). The rules are in
oauth/registration.py."""

from __future__ import annotations

import hashlib
import hmac
import json

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import request
from sqlalchemy import update

from ..models import Client
from ..models import db
from ..oauth import registration
from ..oauth.server import authorization
from ..oauth.server import could_be_client_id
from ..security import audit
from ..security import rate_limit
from ..security.hashing import secret_matches

bp = Blueprint("registration", __name__)
MAX_BODY_BYTES = 256 * 1024  # forty URIs of 2,000 characters and a key set fit


class InvalidToken(OAuth2Error):
    """RFC 7591 §3 and RFC 6750 §3.1: the initial access token is missing or wrong."""

    error = "invalid_token"
    status_code = 401
    description = "Registration needs the initial access token: Authorization: Bearer ..."

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", 'Bearer error="invalid_token"')]


class TooManyRegistrations(OAuth2Error):
    error = "invalid_request"
    status_code = 429
    description = "Too many registrations from this address. Try again later."


@bp.post("/register")
def register():
    config = current_app.config
    if not registration.enabled():
        abort(404)
    server = authorization()
    try:
        # Counted before anything is checked, failures included: a guess at the token costs
        # as much as a registration.
        if rate_limit.count_attempt(f"register:ip:{request.remote_addr}",
                                    config["LOGIN_WINDOW_SECONDS"]) > config[
                                        "CLIENT_REGISTRATION_MAX_PER_IP"]:
            raise TooManyRegistrations()
        with_token = _initial_access_token_given()
        if config["CLIENT_REGISTRATION"] == "token" and not with_token:
            raise InvalidToken()
        client, method = registration.client_from(_metadata(), with_token)
    except OAuth2Error as error:
        audit.log("client.registration_rejected", error=error.error)
        return server.handle_error_response(None, error)
    secret = None if client.is_public or client.uses_keys else client.set_secret()
    db.session.add(client)
    db.session.flush()  # the client_id, for its management URI
    body = {**registration.registration_response(client, method, secret),
            **registration.management_credentials(client)}
    db.session.commit()
    audit.log("client.registered", client_id=client.client_id,
              auth_method=client.token_endpoint_auth_method, with_token=with_token)
    return server.handle_response(201, body, default_json_headers)


class InvalidRegistrationToken(InvalidToken):
    """RFC 7592 §2: no such client, or not this token. Both look the same from outside."""

    description = ("Managing a registration needs its registration access token: "
                   "Authorization: Bearer ... (the latest one issued).")


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def manage(client_id: str):
    """RFC 7592: read (GET), replace (PUT) or delete (DELETE) a self-registered client,
    authenticated by its registration access token. A read or an update answers with a new
    token; the one it was made with stops working."""
    if not registration.enabled():
        abort(404)
    server = authorization()
    try:
        client = _client_holding_the_token(client_id)
        if request.method == "DELETE":
            db.session.delete(client)
            db.session.commit()
            audit.log("client.registration_deleted", client_id=client_id)
            return "", 204
        method = (registration.update_from(client, _metadata()) if request.method == "PUT"
                  else registration.registered_auth_method(client))
    except OAuth2Error as error:
        db.session.rollback()
        audit.log("client.registration_management_rejected", error=error.error,
                  method=request.method)
        return server.handle_error_response(None, error)
    body = {**registration.registration_response(client, method, None),
            **registration.management_credentials(client)}
    db.session.commit()
    if request.method == "PUT":
        audit.log("client.registration_updated", client_id=client_id)
    return server.handle_response(200, body, default_json_headers)


def _client_holding_the_token(client_id: str) -> Client:
    """The client, its token spent in this transaction: of two requests with one token, one
    goes on (the other waits for its row, then finds the token gone). A rollback gives the
    token back."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    client = Client.by_client_id(client_id) if could_be_client_id(client_id) else None
    if (client is None or scheme.lower() != "bearer"
            or not secret_matches(client.registration_token_hash, given.strip())):
        raise InvalidRegistrationToken()
    spent = db.session.execute(
        update(Client)
        .where(Client.id == client.id,
               Client.registration_token_hash == client.registration_token_hash)
        .values(registration_token_hash=None)
    ).rowcount
    if spent != 1:
        raise InvalidRegistrationToken()
    return client


def _metadata():
    """The JSON body, read no further than MAX_BODY_BYTES; None if it is not JSON."""
    if not request.is_json:
        return None
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise registration.InvalidClientMetadata(
            f"The client metadata is larger than {MAX_BODY_BYTES // 1024} KiB.")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None


def _initial_access_token_given() -> bool:
    """The request carries the configured initial access token. Compared as digests, in
    constant time: neither its text nor its length shows in the timing."""
    expected = current_app.config["CLIENT_REGISTRATION_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())
