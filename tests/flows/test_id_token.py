"""ID token and access token contents, checked with an independent library (jwcrypto)."""

import base64
import hashlib
import json
import time

from jwcrypto import jwk
from jwcrypto import jwt

ISSUER = "http://127.0.0.1:5000"


def verify(http, token):
    """Verify against the published JWKS, the way a relying party does."""
    keyset = jwk.JWKSet.from_json(http.get("/jwks.json").get_data(as_text=True))
    parsed = jwt.JWT(jwt=token, key=keyset, algs=["RS256"])
    return parsed.token.jose_header, json.loads(parsed.claims)


def test_oidcc_idtoken_signature_is_rs256_with_published_kid(flow):
    header, _ = verify(flow.http, flow.tokens()["id_token"])
    kids = {k["kid"] for k in flow.http.get("/jwks.json").get_json()["keys"]}
    assert header["alg"] == "RS256"
    assert header["kid"] in kids


def test_id_token_claims(flow, user):
    tokens = flow.tokens(nonce="n-0S6_WzA2Mj")
    _, claims = verify(flow.http, tokens["id_token"])
    now = time.time()
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user.subject
    assert claims["aud"] == flow.client.client_id
    assert claims["azp"] == flow.client.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["iat"] <= now + 1 and claims["exp"] > now
    assert abs(claims["auth_time"] - now) < 30
    assert claims["amr"] == ["pwd"]
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["email"] == user.email
    assert claims["name"] == user.name
    assert claims["preferred_username"] == user.username


def test_id_token_carries_only_granted_scopes(flow, user):
    _, claims = verify(flow.http, flow.tokens(scope="openid")["id_token"])
    assert claims["sub"] == user.subject
    assert "email" not in claims and "name" not in claims


def test_oauth_only_request_gets_no_id_token(flow):
    tokens = flow.tokens(scope="profile")
    assert "id_token" not in tokens


def test_access_token_is_rfc9068_jwt(flow, user):
    header, claims = verify(flow.http, flow.tokens()["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user.subject
    assert claims["client_id"] == flow.client.client_id
    assert claims["scope"] == "openid profile email"
    assert claims["aud"] and claims["jti"] and claims["exp"] > claims["iat"]


def test_oidcc_prompt_login_gives_later_auth_time(flow):
    _, first = verify(flow.http, flow.tokens()["id_token"])
    time.sleep(1.1)  # auth_time has one-second resolution (OIDC Core §2)
    _, second = verify(flow.http, flow.tokens(prompt="login")["id_token"])
    assert second["auth_time"] > first["auth_time"]
    assert second["sub"] == first["sub"]
