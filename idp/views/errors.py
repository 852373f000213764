"""Error responses: JSON for the machine endpoints (RFC 6749 §5.2 shape), pages for people."""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Flask
from flask import jsonify
from flask import render_template
from flask import request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..security.mfa import SecretUnreadable

log = logging.getLogger("idp.errors")

# Endpoints whose callers are programs: they get JSON errors, never an HTML page.
API_ENDPOINTS = {"oauth.token", "oauth.userinfo", "oauth.introspect", "oauth.revoke",
                 "oauth.push_authorization_request", "device.device_authorization",
                 "registration.register", "registration.manage",
                 "well_known.jwks", "well_known.openid_configuration",
                 "well_known.oauth_authorization_server"}
API_PATHS = ("/token", "/userinfo", "/introspect", "/revoke", "/par", "/device_authorization",
             "/register", "/jwks.json", "/.well-known/")


def _wants_json() -> bool:
    return request.endpoint in API_ENDPOINTS or request.path.startswith(API_PATHS)


def _error(status: int, error: str, description: str):
    if _wants_json():
        response = jsonify(error=error, error_description=description)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response
    return render_template("error.html", error=error, description=description), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error(400, "invalid_request", "The form expired or was not sent from this site. "
                      "Reload the page and try again.")

    @app.errorhandler(InsecureTransportError)
    def plain_http(error):
        # Authlib refuses to read an OAuth request whose URL is neither https nor loopback
        # (a request that reached gunicorn without TLS, or with an empty or odd Host) before
        # any endpoint can answer it: the caller's mistake, not the server's.
        return _error(400, "invalid_request", "OAuth requests must be sent over https.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        name = "invalid_request" if code < 500 else "server_error"
        if code == 404:
            name = "not_found"
        return _error(code, name, error.description or error.name)

    @app.errorhandler(SecretUnreadable)
    def mfa_key_misconfigured(error):
        # The operator's to fix (IDP_MFA_ENCRYPTION_KEY); the user is told to come back.
        log.error("a TOTP secret does not decrypt: check IDP_MFA_ENCRYPTION_KEY")
        return _error(503, "temporarily_unavailable", "Your second factor cannot be checked "
                      "right now. Try again later or contact your administrator.")

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "server_error", "The server could not complete the request.")
