"""Discovery and JWKS (oidcc-discovery-endpoint-verification, RFC 8414, OIDC Core §10.1.1)."""

ISSUER = "http://127.0.0.1:5000"


def test_oidcc_discovery_endpoint_verification(http):
    response = http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["issuer"] == ISSUER
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "end_session_endpoint", "introspection_endpoint", "revocation_endpoint",
                 "pushed_authorization_request_endpoint", "device_authorization_endpoint"):
        assert doc[name].startswith(ISSUER + "/")
    assert "openid" in doc["scopes_supported"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public", "pairwise"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token",
                                            "client_credentials",
                                            "urn:ietf:params:oauth:grant-type:device_code"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert doc["authorization_response_iss_parameter_supported"] is True
    # Signed request objects only, by reference only from a registered URI.
    assert doc["request_parameter_supported"] is True
    assert doc["request_uri_parameter_supported"] is True
    assert doc["require_request_uri_registration"] is True
    assert doc["response_modes_supported"] == ["query", "fragment", "form_post", "jwt", "query.jwt",
                                              "fragment.jwt", "form_post.jwt"]
    assert {"sub", "name", "email"} <= set(doc["claims_supported"])


def test_rfc8414_metadata_matches_discovery(http):
    oidc = http.get("/.well-known/openid-configuration").get_json()
    oauth = http.get("/.well-known/oauth-authorization-server").get_json()
    assert oauth == oidc


def test_jwks_publishes_public_keys_only(http):
    response = http.get("/jwks.json")
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    assert len(keys) >= 1
    kids = [key["kid"] for key in keys]
    assert len(kids) == len(set(kids))
    for key in keys:
        assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_jwks_has_cache_headers_and_etag(http):
    response = http.get("/jwks.json")
    assert "max-age=" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = http.get("/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
