"""CORS: browser apps may call /token, /userinfo and /revoke from their own origin, without
credentials; nothing else of the provider's, /authorize above all, is readable cross-origin.
tests/browser/test_browser_app.py runs the same calls in Chromium."""

from __future__ import annotations

import pytest

APP_ORIGIN = {"Origin": "https://photos.example"}


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
def test_preflight_allows_a_bearer_token_from_any_origin(http, path):
    response = http.options(path, headers={**APP_ORIGIN,
                                           "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "authorization"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "dpop" in response.headers["Access-Control-Allow-Headers"].lower()  # RFC 9449
    # Never with credentials: the browser then sends no cookie of the provider's.
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_token_errors_are_readable_cross_origin(http):
    response = http.post("/token", headers=APP_ORIGIN, data={
        "grant_type": "authorization_code", "code": "forged", "client_id": "unknown"})
    assert response.status_code in (400, 401)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_userinfo_challenge_is_exposed_to_the_app(http):
    response = http.get("/userinfo", headers=APP_ORIGIN)
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, DPoP-Nonce"


@pytest.mark.parametrize("method, path", [
    ("GET", "/authorize?client_id=x&response_type=code"), ("POST", "/introspect"),
    ("GET", "/login"), ("GET", "/account"), ("POST", "/consent"),
])
def test_no_cors_elsewhere(http, method, path):
    response = http.open(path, method=method, headers=APP_ORIGIN)
    assert "Access-Control-Allow-Origin" not in response.headers
