"""response_mode at /authorize: query (the default), fragment and form_post (OAuth 2.0 Multiple
Response Type Encoding Practices §2.1, OAuth 2.0 Form Post Response Mode; the conformance
suite's Form Post plans repeat the Basic ones with response_mode=form_post)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from idp.oauth.response_modes import SUBMIT_SCRIPT_HASH

from ..conftest import add_client
from ..helpers import Browserless
from ..helpers import basic_auth
from ..helpers import form_inputs
from ..helpers import query_of
from .test_authorize import ISSUER
from .test_authorize import assert_error_page
from .test_authorize import assert_error_redirect

CALLBACK = "https://rp.example.com/callback"


def posted_form(response) -> tuple[str, dict[str, str]]:
    """The form_post page's target and the fields it submits."""
    assert response.status_code == 200 and response.location is None
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    action = html.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    return action.replace("&amp;", "&"), form_inputs(html)


def fragment_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def test_form_post_posts_code_state_and_iss_to_the_redirect_uri(flow):
    response = flow.code_response(response_mode="form_post", state="xyz-123")
    action, fields = posted_form(response)
    assert action == CALLBACK
    assert fields["state"] == "xyz-123" and fields["iss"] == ISSUER
    assert set(fields) == {"code", "state", "iss"}
    assert flow.exchange(fields["code"]).status_code == 200


def test_the_form_post_page_allows_its_one_script_and_posts_only_to_the_client(flow):
    response = flow.code_response(response_mode="form_post")
    policy = response.headers["Content-Security-Policy"]
    assert f"script-src '{SUBMIT_SCRIPT_HASH}';" in policy  # no 'unsafe-inline'
    assert "form-action https://rp.example.com;" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"  # the page holds a code
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<noscript>" in response.get_data(as_text=True)  # a button without scripts


def test_a_redirect_host_of_odd_characters_is_not_written_into_the_policy(http, user, app):
    odd = "https://rp.example;script-src-elem/cb"
    response = Browserless(http, add_client(app, redirect_uris=[odd])).code_response(
        response_mode="form_post")
    assert posted_form(response)[0] == odd
    policy = response.headers["Content-Security-Policy"]
    assert "form-action" not in policy and "script-src-elem" not in policy


def test_form_post_escapes_what_the_client_sent(flow):
    state = '"><script>alert(1)</script>'
    response = flow.code_response(response_mode="form_post", state=state)
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert posted_form(response)[1]["state"] == state


def test_fragment_puts_the_response_in_the_fragment(flow):
    response = flow.code_response(response_mode="fragment", state="s-1")
    assert response.status_code == 302
    assert response.location.startswith(CALLBACK + "#")
    params = fragment_of(response.location)
    assert params["state"] == "s-1" and params["iss"] == ISSUER
    assert query_of(response.location) == {}
    assert flow.exchange(params["code"]).status_code == 200


def test_query_asked_for_is_the_default(flow):
    response = flow.code_response(response_mode="query")
    assert response.status_code == 302 and "code" in query_of(response.location)


@pytest.mark.parametrize("mode", ["form_post", "fragment"])
def test_the_redirect_uris_own_query_stays_in_the_uri(http, user, app, mode):
    registered = "https://rp.example.com/callback?tenant=a&x="
    client = add_client(app, name="Tenant App", redirect_uris=[registered])
    response = Browserless(http, client).code_response(response_mode=mode)
    if mode == "form_post":
        action, fields = posted_form(response)
        assert action == registered and set(fields) == {"code", "state", "iss"}
    else:
        assert response.location.startswith(registered + "#")
        assert set(fragment_of(response.location)) == {"code", "state", "iss"}


@pytest.mark.parametrize("mode", ["jwt.query", "form_post.JWT", "FORM_POST", "query "])
def test_an_unknown_response_mode_is_an_error_sent_the_default_way(flow, mode):
    response = flow.authorize(response_mode=mode, state="st")
    params = assert_error_redirect(response, flow, "invalid_request", "st")
    assert "response_mode" in params["error_description"]


def test_a_repeated_response_mode_is_refused_on_a_page(flow):
    query = {**flow.authorize_params(), "response_mode": ["form_post", "query"]}
    assert_error_page(flow.http.get("/authorize", query_string=query))


def test_form_post_to_an_apps_own_uri_scheme_is_refused_by_redirect(http, user, public_client):
    app = Browserless(http, public_client)
    response = app.authorize(response_mode="form_post", state="st")
    assert response.status_code == 302
    assert response.location.startswith("com.example.app:/callback?")
    assert query_of(response.location)["error"] == "invalid_request"


def test_fragment_to_an_apps_own_uri_scheme_works(http, user, public_client):
    response = Browserless(http, public_client).code_response(response_mode="fragment")
    assert response.location.startswith("com.example.app:/callback#code=")


def test_an_unregistered_redirect_uri_gets_the_error_page_whatever_the_mode(flow):
    for mode in ("form_post", "fragment"):
        assert_error_page(flow.authorize(response_mode=mode,
                                         redirect_uri="https://attacker.example/cb"))


def test_a_refusal_is_posted_too(flow):
    response = flow.code_response(decision="deny", response_mode="form_post", state="st")
    action, fields = posted_form(response)
    assert action == CALLBACK
    assert fields["error"] == "access_denied" and fields["state"] == "st"
    assert fields["iss"] == ISSUER


def test_prompt_none_without_a_session_is_answered_in_the_fragment(flow):
    response = flow.authorize(response_mode="fragment", prompt="none", state="st")
    assert response.status_code == 302 and response.location.startswith(CALLBACK + "#")
    params = fragment_of(response.location)
    assert params["error"] == "login_required" and params["iss"] == ISSUER


def test_a_pushed_request_keeps_its_response_mode(http, flow, confidential_client):
    pushed = http.post("/par", data=flow.authorize_params(response_mode="form_post"),
                       headers=basic_auth(confidential_client.client_id,
                                          confidential_client.secret))
    assert pushed.status_code == 201, pushed.get_json()
    response = flow.code_response(
        client_id=confidential_client.client_id, request_uri=pushed.get_json()["request_uri"],
        response_type=None, redirect_uri=None, scope=None, state=None, nonce=None,
        code_challenge=None, code_challenge_method=None)
    action, fields = posted_form(response)
    assert action == CALLBACK and flow.exchange(fields["code"]).status_code == 200


@pytest.mark.parametrize("mode", ["jwt.query", ["form_post", "query"]])
def test_a_pushed_request_with_a_bad_response_mode_is_refused_as_json(
        http, flow, confidential_client, mode):
    pushed = http.post("/par", data={**flow.authorize_params(), "response_mode": mode},
                       headers=basic_auth(confidential_client.client_id,
                                          confidential_client.secret))
    assert pushed.status_code == 400
    assert pushed.get_json()["error"] == "invalid_request"
    assert pushed.headers["Cache-Control"] == "no-store"


# --- JARM: the JWT Secured Authorization Response Mode (FAPI 2.0 Message Signing) ----------

def response_claims(http, token: str, client_id: str) -> dict:
    """The JWT's claims, checked as a client would: our key, for this client, unexpired."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    assert claims["iss"] == ISSUER and claims["aud"] == client_id
    assert 0 < claims["exp"] - time.time() <= 60
    return claims


@pytest.mark.parametrize("mode", ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"])
def test_jarm_carries_the_response_in_a_jwt_signed_for_the_client(flow, mode):
    response = flow.code_response(response_mode=mode, state="xyz-123")
    if mode == "form_post.jwt":
        action, fields = posted_form(response)
    else:
        assert response.status_code == 302 and response.location.startswith(CALLBACK)
        fields = (fragment_of if mode == "fragment.jwt" else query_of)(response.location)
    assert set(fields) == {"response"}  # iss is in the JWT (RFC 9207 §2.4)
    claims = response_claims(flow.http, fields["response"], flow.client.client_id)
    assert claims["state"] == "xyz-123"
    assert flow.exchange(claims["code"]).status_code == 200


def test_jarm_carries_errors_too(flow):
    response = flow.authorize(response_mode="jwt", prompt="none", state="s1")
    assert response.status_code == 302
    claims = response_claims(flow.http, query_of(response.location)["response"],
                             flow.client.client_id)
    assert claims["error"] == "login_required" and claims["state"] == "s1"


def test_discovery_offers_jarm(http):
    document = http.get("/.well-known/openid-configuration").get_json()
    assert {"jwt", "query.jwt", "fragment.jwt", "form_post.jwt"} <= set(
        document["response_modes_supported"])
    assert document["authorization_signing_alg_values_supported"] == ["RS256"]


def test_form_post_jwt_needs_a_web_redirect_uri(http, user, app):
    native = add_client(app, name="Native", public=True, redirect_uris=["com.example.app:/cb"])
    response = Browserless(http, native).authorize(response_mode="form_post.jwt", state="n1")
    assert response.status_code == 302 and response.location.startswith("com.example.app:/cb?")
    answer = query_of(response.location)
    assert answer["error"] == "invalid_request" and "form_post.jwt" in answer["error_description"]
