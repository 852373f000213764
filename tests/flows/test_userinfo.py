"""UserInfo (OIDC Core §5.3): GET, POST with a Bearer header, scope claims, bad tokens."""

import pytest


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_oidcc_userinfo_get(flow, user):
    tokens = flow.tokens()
    response = flow.http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["sub"] == user.subject
    assert body["email"] == user.email and body["name"] == user.name


def test_oidcc_userinfo_post_header(flow, user):
    tokens = flow.tokens()
    response = flow.http.post("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.get_json()["sub"] == user.subject


@pytest.mark.parametrize("scope,present,absent", [
    ("openid", {"sub"}, {"email", "name"}),
    ("openid email", {"sub", "email", "email_verified"}, {"name"}),
    ("openid profile", {"sub", "name", "preferred_username"}, {"email"}),
])
def test_oidcc_scope_claims(flow, scope, present, absent):
    tokens = flow.tokens(scope=scope)
    body = flow.http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert present <= body.keys()
    assert not absent & body.keys()


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer "])
def test_userinfo_without_token_is_401_with_a_bare_challenge(http, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = http.get("/userinfo", headers=headers)
    assert response.status_code == 401
    # RFC 6750 §3.1: no token at all, so the challenges carry no error code; RFC 9449 §7.1:
    # the DPoP one names the proof algorithms.
    assert response.headers["WWW-Authenticate"] == (
        'Bearer, DPoP algs="RS256 PS256 ES256 Ed25519 EdDSA"')
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == "invalid_token"
    assert "Authorization header" in body["error_description"]


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_userinfo_with_bad_token_is_401(http, token):
    response = http.get("/userinfo", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_userinfo_needs_openid_scope(flow):
    tokens = flow.tokens(scope="profile")
    response = flow.http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 403
