"""RP-Initiated Logout 1.0 (oidcc-rp-initiated-logout-*) and the user's own sign-out."""

import base64
import json

import pytest

from ..helpers import csrf_token
from ..helpers import page_text
from ..helpers import query_of

SIGNED_OUT = "https://rp.example.com/signed-out"


def is_signed_in(flow):
    return flow.authorize(prompt="none").location.find("code=") > 0


def test_oidcc_rp_initiated_logout(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT, "state": "bye"})
    assert response.status_code == 302
    assert response.location.startswith(SIGNED_OUT + "?")
    assert query_of(response.location)["state"] == "bye"
    # then prompt=none must fail: the session is gone
    assert query_of(flow.authorize(prompt="none").location)["error"] == "login_required"


def test_oidcc_rp_initiated_logout_no_state(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT})
    assert response.location == SIGNED_OUT


def test_oidcc_rp_initiated_logout_bad_id_token_hint_does_not_redirect(flow):
    flow.tokens()
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "post_logout_redirect_uri": SIGNED_OUT})
    assert response.status_code == 400 and response.location is None
    assert is_signed_in(flow)


def test_oidcc_rp_initiated_logout_modified_id_token_hint_does_not_redirect(flow):
    header, payload, _ = flow.tokens()["id_token"].split(".")
    unsigned = "eyJhbGciOiJub25lIn0." + payload + "."
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": unsigned, "post_logout_redirect_uri": SIGNED_OUT})
    assert response.status_code == 400 and response.location is None


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://attacker.example/"})
    assert response.status_code == 400 and response.location is None
    assert is_signed_in(flow)


def test_oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT + "?foo=bar"})
    assert response.status_code == 400 and response.location is None


def test_oidcc_rp_initiated_logout_no_id_token_hint_asks_the_user(flow):
    flow.tokens()
    response = flow.http.get("/end_session", query_string={
        "post_logout_redirect_uri": SIGNED_OUT, "client_id": flow.client.client_id})
    assert response.status_code == 200 and response.location is None
    page = response.get_data(as_text=True)
    assert "Sign out" in page
    done = flow.http.post("/logout", data={"csrf_token": csrf_token(page)})
    assert done.status_code == 200 and "signed out" in done.get_data(as_text=True)
    assert not is_signed_in(flow)


def test_oidcc_rp_initiated_logout_no_params_asks_then_logs_out(flow):
    flow.tokens()
    response = flow.http.get("/end_session")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    flow.http.post("/logout", data={"csrf_token": csrf_token(page)})
    assert not is_signed_in(flow)


def test_oidcc_rp_initiated_logout_only_state(flow):
    flow.tokens()
    response = flow.http.get("/end_session", query_string={"state": "only"})
    assert response.status_code == 200 and response.location is None


def test_end_session_accepts_post(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.post("/end_session", data={
        "id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT})
    assert response.location == SIGNED_OUT


def test_id_token_hint_of_another_client_with_client_id_is_refused(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.http.get("/end_session", query_string={
        "id_token_hint": id_token, "client_id": "someone-else",
        "post_logout_redirect_uri": SIGNED_OUT})
    assert response.status_code == 400 and response.location is None


def test_sign_out_link_needs_csrf_token(flow):
    flow.tokens()
    assert flow.http.post("/logout").status_code == 400
    assert is_signed_in(flow)


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("header", [
    {"alg": "RS256", "kid": "é"}, {"alg": "RS256", "kid": 'a"b'}, {"alg": "RS256", "kid": "\\"},
    {"alg": "RS256", "kid": "\u0001"}, {"alg": "HS256é"},
    {"alg": "RS256", "kid": "<b>not ours</b>"},
])
def test_a_hint_with_odd_header_values_is_refused_without_repeating_them(flow, header):
    """joserfc's error quotes the header's kid or alg; the page never shows it, and characters
    RFC 6749 keeps out of error descriptions no longer turn the refusal into a 500."""
    hint = f"{_b64url(header)}.{_b64url({'sub': 'x'})}.c2ln"
    for response in (flow.http.get("/end_session", query_string={"id_token_hint": hint}),
                     flow.http.post("/end_session", data={"id_token_hint": hint})):
        assert response.status_code == 400 and response.location is None
        text = page_text(response.get_data(as_text=True))
        assert "not a valid ID token of this provider" in text
        assert "not ours" not in text and "HS256" not in text
