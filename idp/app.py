"""Wiring of the application: extensions, keys, blueprints, logging and response headers."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask import abort
from flask import request
from flask.sessions import SecureCookieSessionInterface
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from . import keys
from . import maintenance
from .models import db
from .models import hot_read
from .oauth import dpop
from .oauth import server
from .security import hashing
from .security import notices

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
csrf = CSRFProtect()
migrate = Migrate()

# Pages that draw the sign-in and consent UI must never be framed or cached (RFC 9700 §4.16).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# Browser apps (public clients on a page of their own origin) call these with fetch(): a code
# and its verifier, a bearer token, a token to revoke, a pushed request, a registration. None
# of them uses cookies, so any origin may read the answer, and credentialed requests stay
# refused. /authorize is never among them (draft-ietf-oauth-browser-based-apps; RFC 9700
# §4.2.4). JWKS and discovery set their own.
CORS_ENDPOINTS = frozenset({"oauth.token", "oauth.userinfo", "oauth.revoke",
                            "oauth.push_authorization_request", "registration.register"})
CORS_PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Methods", "GET, POST"),
    ("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP"),
    ("Access-Control-Max-Age", "600"),
)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, without parsing cookies or building a signer for a request
    whose Cookie header cannot hold the session cookie: nearly every call to the token,
    introspection and JWKS endpoints, where that was 2-3% of the work."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.headers.get("Cookie", ""):
            return self.session_class()
        return super().open_session(app, request)


def build(app: Flask) -> None:
    _configure_logging(app)
    app.session_interface = CookieSessionInterface()
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0)

    db.init_app(app)
    hot_read.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    hashing.init_app(app)

    keys.init_app(app)  # app.extensions["idp.keys"], refreshed before each request
    maintenance.init_app(app)  # `idp prune` once an interval, after a response
    server.init_app(app)

    from .views import account
    from .views import auth
    from .views import device
    from .views import email_verification
    from .views import errors
    from .views import health
    from .views import oauth
    from .views import password_reset
    from .views import registration
    from .views import well_known

    app.register_blueprint(well_known.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(password_reset.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(email_verification.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(device.bp)
    app.register_blueprint(registration.bp)
    errors.register(app)
    # Pages offer what needs mail (a password-reset link, an address confirmation) only with it.
    app.context_processor(lambda: {"mail_enabled": notices.enabled()})
    from .cli import register_commands

    register_commands(app)
    # Machine-to-machine endpoints authenticate clients, not browsers: no CSRF token there.
    csrf.exempt(well_known.bp)  # GET only, and the cheapest exemption to check
    for view in (oauth.token, oauth.userinfo, oauth.end_session, oauth.authorize,
                 oauth.introspect, oauth.revoke, oauth.push_authorization_request,
                 device.device_authorization, registration.register, registration.manage):
        csrf.exempt(view)
    app.before_request(_refuse_nul_characters)
    app.after_request(_security_headers)
    if hsts := app.config["STRICT_TRANSPORT_SECURITY"]:  # an https issuer (config.py)
        app.after_request(lambda response: _strict_transport_security(response, hsts))
    if app.config["DPOP_NONCES"]:
        app.after_request(dpop.add_nonce)
    # Outermost, so that a replayed JWKS or discovery answer costs nothing else.
    app.wsgi_app = well_known.ReplayedDocuments(app, app.wsgi_app)


def _refuse_nul_characters():
    """No parameter of OAuth, OpenID Connect or a form here may hold U+0000, and PostgreSQL
    refuses it in any text it is sent (a 500 where the value reaches a query): refuse the
    request first, with a 400 in the endpoint's own error format."""
    texts = [request.path]
    if request.query_string:
        texts += _names_and_values(request.args)
    if request.method == "POST":
        texts += _names_and_values(request.form)
    if any("\x00" in text for text in texts):
        abort(400, "The request holds a NUL character, which no parameter may contain.")


def _names_and_values(params) -> list[str]:
    return [text for pair in params.items(multi=True) for text in pair]


def _strict_transport_security(response, value: str):
    response.headers.setdefault("Strict-Transport-Security", value)
    return response


def _security_headers(response):
    if response.headers.get("Content-Type", "").startswith("text/html"):
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
    else:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.endpoint in ("oauth.authorize", "oauth.end_session"):
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    elif request.endpoint in CORS_ENDPOINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            response.headers.extend(CORS_PREFLIGHT_HEADERS)
        else:  # so that the app can read why a token or a DPoP proof was refused
            response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, DPoP-Nonce"
    return response


def _configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config["LOG_LEVEL"]).upper())  # validated by config
    logging.getLogger("idp").setLevel(level)
    # Authlib logs issued tokens at DEBUG ("Issue token %r"): never let that through.
    logging.getLogger("authlib").setLevel(max(level, logging.INFO))
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
