"""Bad input gets a clear 4xx, never a 500 or a stack trace."""

import pytest

from ..helpers import basic_auth

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
