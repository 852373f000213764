"""Bad input gets a clear 4xx, never a 500 or a stack trace."""

import base64
import json

import pytest
from jwcrypto import jwk
from jwcrypto import jws

from ..helpers import basic_auth
from ..helpers import csrf_token

GARBAGE = ["", "abc", "a.b.c", "eyJ.eyJ.sig", "%00", "x" * 5000, "é☃", "..", "null"]


@pytest.mark.parametrize("value", GARBAGE)
def test_authorize_survives_garbage(flow, value):
    for name in ("client_id", "redirect_uri", "scope", "prompt", "max_age", "id_token_hint",
                 "code_challenge", "response_type", "nonce", "state"):
        response = flow.authorize(**{name: value})
        assert response.status_code < 500, (name, value)


@pytest.mark.parametrize("value", GARBAGE)
def test_end_session_survives_garbage(http, value):
    for name in ("id_token_hint", "post_logout_redirect_uri", "client_id", "state"):
        response = http.get("/end_session", query_string={name: value})
        assert response.status_code < 500, (name, value)
        assert response.location is None


@pytest.mark.parametrize("value", GARBAGE)
def test_token_endpoint_survives_garbage(flow, value):
    for data in ({"grant_type": value}, {"grant_type": "authorization_code", "code": value},
                 {"grant_type": "authorization_code", "code": "c", "code_verifier": value}):
        response = flow.http.post("/token", data=data,
                                  headers=basic_auth(flow.client.client_id, flow.secret))
        assert response.status_code < 500, (data, value)
        assert "error" in response.get_json()
    response = flow.http.post("/token", data={"grant_type": "authorization_code"},
                              headers={"Authorization": "Basic " + value})
    assert response.status_code < 500


@pytest.mark.parametrize("value", GARBAGE)
def test_userinfo_survives_garbage(http, value):
    assert http.get("/userinfo", headers={"Authorization": "Bearer " + value}).status_code < 500


def test_login_survives_odd_form(http):
    assert http.post("/login", data={"username": "x" * 10000}).status_code < 500
    assert http.post("/consent", data={"decision": "maybe"}).status_code < 500


NUL = "a\x00b"


def _assert_json_error(response, status=400):
    assert response.status_code == status
    assert response.get_json()["error"] and response.get_json()["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


def _assert_error_page(response):
    assert response.status_code == 400 and response.location is None
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_a_nul_character_at_the_machine_endpoints_is_invalid_request(flow, path):
    """PostgreSQL refuses NUL in any text: it must never reach a query (a 500 there)."""
    for data in ({"grant_type": "client_credentials", "client_id": NUL, "client_secret": "x",
                  "token": "x"},
                 {"grant_type": "client_credentials", "token": NUL},
                 {"grant_type": "client_credentials", NUL: "x", "token": "x"}):
        response = flow.http.post(path, data=data)
        _assert_json_error(response)
        assert response.get_json()["error"] == "invalid_request"
    # A client_id in Basic credentials is not a form parameter: it is an unknown client.
    response = flow.http.post(path, data={"grant_type": "client_credentials", "token": "x"},
                              headers=basic_auth(NUL, "x"))
    _assert_json_error(response, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_a_nul_character_on_the_pages_is_an_error_page(flow):
    _assert_error_page(flow.authorize(nonce=NUL))
    _assert_error_page(flow.authorize(client_id=NUL))
    _assert_error_page(flow.http.get("/end_session", query_string={"client_id": NUL}))
    page = flow.http.get("/login")
    _assert_error_page(flow.http.post("/login", data={
        "username": NUL, "password": "x", "csrf_token": csrf_token(page.get_data(as_text=True))}))
    flow.tokens()  # signed in, with a consent to withdraw
    account = flow.http.get("/account").get_data(as_text=True)
    _assert_error_page(flow.http.post("/account/apps/withdraw",
                                      data={"csrf_token": csrf_token(account), "client_id": NUL}))


@pytest.mark.parametrize("host", ["", "a b", "idp.example.com", "10.0.0.7:5000"])
def test_oauth_over_plain_http_to_another_host_is_refused_not_a_500(flow, host):
    """Authlib refuses to read an OAuth request whose URL is neither https nor loopback, before
    any endpoint answers: a request reaching gunicorn without TLS (no proxy in front, or an
    empty or malformed Host) was a 500 at every OAuth endpoint."""
    auth = basic_auth(flow.client.client_id, flow.secret)
    for path, data in (("/token", {"grant_type": "client_credentials"}),
                       ("/introspect", {"token": "x"}), ("/revoke", {"token": "x"}),
                       ("/par", {"response_type": "code"}),
                       ("/device_authorization", {"scope": "openid"})):
        response = flow.http.post(path, data=data, headers={**auth, "Host": host})
        _assert_json_error(response)
        assert response.get_json() == {
            "error": "invalid_request",
            "error_description": "OAuth requests must be sent over https."}, path
    response = flow.http.get("/userinfo", headers={"Authorization": "Bearer x", "Host": host})
    _assert_json_error(response)
    _assert_error_page(flow.http.get("/authorize", query_string=flow.authorize_params(),
                                     headers={"Host": host}))
    page = flow.http.get("/end_session", headers={"Host": host})
    _assert_error_page(page)
    assert "OAuth requests must be sent over https." in page.get_data(as_text=True)


@pytest.mark.parametrize(("data", "headers", "error"), [
    ({}, None, "unsupported_grant_type"),
    ({"grant_type": ""}, None, "unsupported_grant_type"),
    ({"grant_type": "password"}, None, "unsupported_grant_type"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Basic "}, "invalid_client"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Basic /w=="}, "invalid_client"),
])
def test_every_token_error_says_what_is_wrong(flow, data, headers, error):
    """RFC 6749 §5.2: error_description, for the developer; never the sender's own text."""
    headers = headers or basic_auth(flow.client.client_id, flow.secret)
    response = flow.http.post("/token", data=data, headers=headers)
    body = response.get_json()
    assert response.status_code in (400, 401) and body["error"] == error
    assert body["error_description"] and "password" not in body["error_description"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: bytes, header: dict, key: jwk.JWK) -> str:
    signature = jws.JWS(payload)
    signature.add_signature(key, None, protected=json.dumps(header))
    return signature.serialize(compact=True)


def test_json_nested_past_the_parsers_depth_is_a_clear_error(flow):
    """Python's json raises RecursionError, not ValueError, past about 1,000 levels: each
    place that reads JSON from outside must expect it (a signed client assertion and a signed
    DPoP proof were 500s)."""
    deep = b"[" * 5000
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    client_id = flow.client.client_id
    assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertions = [
        f"{_b64(deep)}.{_b64(deep)}.c2ln",
        _signed(b'{"iss":"%s","sub":"%s","x":%s}' % (client_id.encode(), client_id.encode(),
                                                    deep), {"alg": "ES256"}, key),
    ]
    for assertion in assertions:
        _assert_json_error(flow.http.post("/token", data={
            "grant_type": "client_credentials", "client_assertion_type": assertion_type,
            "client_assertion": assertion}))
    proof = _signed(deep, {"typ": "dpop+jwt", "alg": "ES256",
                           "jwk": key.export_public(as_dict=True)}, key)
    response = flow.http.post("/token", headers={
        **basic_auth(client_id, flow.secret), "DPoP": proof}, data={
        "grant_type": "authorization_code", "code": "c", "code_verifier": "v" * 43})
    _assert_json_error(response)
    assert response.get_json()["error_description"] == \
        "The DPoP proof's payload is not a JSON object."
    token = f"{_b64(deep)}.{_b64(deep)}.c2ln"
    assert flow.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}
                         ).status_code == 401
    assert flow.http.post("/introspect", data={"token": token}, headers=basic_auth(
        client_id, flow.secret)).get_json() == {"active": False}
    assert flow.authorize(id_token_hint=token, prompt="none").status_code < 500
    assert flow.http.get("/end_session", query_string={"id_token_hint": token}).status_code == 400
