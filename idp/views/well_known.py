"""OIDC Discovery 1.0 / RFC 8414 metadata and the JWKS (RFC 7517)."""

from __future__ import annotations

import functools
import hashlib
import json
import threading

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import request

from ..models.client import ANY_AUTH_METHOD
from ..models.client import CONFIDENTIAL_AUTH_METHODS
from ..models.client import SUBJECT_TYPES
from ..oauth import client_assertion
from ..oauth import device
from ..oauth import dpop
from ..oauth import metadata_documents
from ..oauth import registration
from ..oauth import response_modes
from ..oauth.claims import CLAIMS_SUPPORTED
from ..oauth.claims import SUPPORTED_SCOPES
from ..sessions import ACR_VALUES

bp = Blueprint("well_known", __name__)


def discovery_document(issuer: str, with_registration: bool = False,
                       with_metadata_documents: bool = False) -> dict:
    """Only what works: everything listed here is accepted at run time, nothing else is.
    `with_registration`: dynamic client registration is on (IDP_CLIENT_REGISTRATION);
    `with_metadata_documents`: client ID metadata documents are (IDP_CLIENT_METADATA_DOCUMENTS)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "end_session_endpoint": f"{issuer}/end_session",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "device_authorization_endpoint": f"{issuer}/device_authorization",
        **({"registration_endpoint": f"{issuer}/register"} if with_registration else {}),
        "require_pushed_authorization_requests": False,
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": list(response_modes.SUPPORTED),
        "authorization_signing_alg_values_supported": ["RS256"],  # JARM
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  device.GRANT_TYPE],
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": ["RS256"],
        # JSON, or a JWT signed so for a client registered with userinfo_signed_response_alg.
        "userinfo_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": list(ANY_AUTH_METHOD),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(ANY_AUTH_METHOD),
        **{f"{endpoint}_endpoint_auth_signing_alg_values_supported": client_assertion.ALGORITHMS
           for endpoint in ("token", "introspection", "revocation")},
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": dpop.ALGORITHMS,
        "claims_supported": CLAIMS_SUPPORTED,
        "acr_values_supported": ACR_VALUES,
        "claims_parameter_supported": False,
        # Signed request objects (RFC 9101), by value or from a registered request_uri.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "request_object_signing_alg_values_supported": client_assertion.ALGORITHMS,
        "require_signed_request_object": False,
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "display_values_supported": ["page"],
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "client_id_metadata_document_supported": with_metadata_documents,
    }


def _cached_json(name: str, build) -> Response:
    """Serve a JSON body built once per process (it depends on settings only)."""
    cache = current_app.extensions.setdefault("idp.well_known", {})
    if name not in cache:
        body = build()
        cache[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return _json_response(*cache[name])


def _json_response(body: bytes, etag: str) -> Response:
    """The body with an ETag, or a 304 for a matching If-None-Match. JWKS_MAX_AGE_SECONDS is
    at most the key publication lead time (config.validate), so a relying party that caches
    the JWKS for max-age has seen a next key before it signs."""
    headers = _headers(etag, current_app.config["JWKS_MAX_AGE_SECONDS"])
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(body, headers=headers)


@functools.lru_cache(maxsize=16)
def _headers(etag: str, max_age: int) -> tuple[tuple[str, str], ...]:
    """Built once per body: every relying party polls these two endpoints."""
    return (("Content-Type", "application/json"), ("Cache-Control", f"public, max-age={max_age}"),
            ("ETag", etag), ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"))


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return _cached_json(
        "discovery",
        lambda: json.dumps(discovery_document(
            current_app.config["ISSUER"], with_registration=registration.enabled(),
            with_metadata_documents=metadata_documents.enabled())).encode(),
    )


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server():
    """RFC 8414 §3: the same metadata at the OAuth well-known location."""
    return openid_configuration()


@bp.get("/jwks.json")
def jwks():
    """The key set of this worker, re-read from the database at most KEYS_REFRESH_SECONDS ago
    (before this request): a rotation changes the body and its ETag on every worker."""
    keys = current_app.extensions["idp.keys"]
    return _json_response(keys.jwks_body(), keys.jwks_etag())


# --- replaying the answers, without Flask ---------------------------------------------------

DOCUMENT_PATHS = frozenset({"/.well-known/openid-configuration",
                            "/.well-known/oauth-authorization-server", "/jwks.json"})
# Distinct requests kept per key refresh (Host and If-None-Match vary): enough for every real
# host name and ETag, and no more, whatever a caller sends.
MAX_REPLAYED_ANSWERS = 32


class ReplayedDocuments:
    """WSGI middleware in front of Flask: the JWKS and the metadata documents, answered as Flask
    answered the same request before, without running Flask again (issue 6: Flask's own work
    a request was all that kept these endpoints below the empty Flask route).

    Their answer depends on the configuration, the published key set, and of the request only
    on its method, Host and If-None-Match. So Flask answers each such request once, and its
    status, headers and body are replayed until the key store is due for a refresh: that
    request goes to Flask, which refreshes the keys first, as before every request, and what
    was kept is dropped. A rotation shows as soon as it did before.

    Only a GET or HEAD without a query string and without a cookie is replayed (nothing a
    session or the NUL check could answer differently), and only a 200 or 304 that sets no
    cookie is kept."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        # The key set the answers were built from, and the answers: swapped together.
        self._kept: tuple[object, dict] = (None, {})
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request_key = _replayable(environ)
        if request_key is None:
            return self.wsgi_app(environ, start_response)
        published = self.app.extensions["idp.keys"].fresh_published()
        kept_for, answers = self._kept
        if published is None or kept_for is not published:
            with self._lock:
                self._kept = (published, {})
            return self._answer_and_keep(environ, start_response, request_key, published)
        answer = answers.get(request_key)
        if answer is None:
            return self._answer_and_keep(environ, start_response, request_key, published)
        status, headers, body = answer
        start_response(status, list(headers))
        return [body]

    def _answer_and_keep(self, environ, start_response, request_key, published):
        started: list = []
        written: list[bytes] = []

        def capture(status, headers, exc_info=None):
            started[:] = [status, headers]
            return written.append

        chunks = self.wsgi_app(environ, capture)
        try:
            body = b"".join([*written, *chunks])
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status, headers = started
        keep = (published is not None and status[:3] in ("200", "304")
                and not any(name.lower() == "set-cookie" for name, _ in headers))
        if keep:
            with self._lock:
                kept_for, answers = self._kept
                still_fresh = self.app.extensions["idp.keys"].fresh_published() is published
                if kept_for is published and still_fresh and len(answers) < MAX_REPLAYED_ANSWERS:
                    answers[request_key] = (status, tuple(headers), body)
        start_response(status, headers)
        return [body]


def _replayable(environ) -> tuple | None:
    """What tells apart the answers to a request that may be replayed; None for any other."""
    if (environ.get("PATH_INFO") not in DOCUMENT_PATHS
            or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or environ.get("QUERY_STRING") or "HTTP_COOKIE" in environ):
        return None
    return (environ["PATH_INFO"], environ["REQUEST_METHOD"], environ.get("HTTP_HOST"),
            environ.get("HTTP_IF_NONE_MATCH"))
