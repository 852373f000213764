"""The authorization endpoint: validation, prompt, max_age, consent (OIDC Core §3.1.2)."""

import pytest

from idp.models import Consent
from idp.models import LoginSession
from idp.models import db
from idp.models.client import loopback_without_port

from ..conftest import add_client
from ..helpers import Browserless
from ..helpers import page_text
from ..helpers import query_of

ISSUER = "http://127.0.0.1:5000"


def assert_error_page(response, status=400):
    assert response.status_code == status
    assert response.location is None  # never a redirect
    assert response.mimetype == "text/html"


def assert_error_redirect(response, flow, error, state):
    assert response.status_code == 302
    assert response.location.startswith(flow.client.redirect_uris[0] + "?")
    params = query_of(response.location)
    assert params["error"] == error
    assert params["state"] == state
    assert params["iss"] == ISSUER
    return params


def test_oidcc_server_returns_code_state_and_iss(flow):
    response = flow.code_response(state="xyz-123")
    params = query_of(response.location)
    assert response.location.startswith("https://rp.example.com/callback?")
    assert params["state"] == "xyz-123"
    assert params["iss"] == ISSUER  # RFC 9207
    assert len(params["code"]) >= 32


def test_oidcc_ensure_registered_redirect_uri_gets_error_page(flow):
    response = flow.authorize(redirect_uri="https://attacker.example/callback")
    assert_error_page(response)


@pytest.mark.parametrize("variant", [
    "https://rp.example.com/callback?extra=1",
    "https://rp.example.com/callback/",
    "https://RP.example.com/callback",
    "https://rp.example.com/callback/more",
    "http://rp.example.com/callback",
    "https://rp.example.com/callback#frag",
])
def test_redirect_uri_must_match_character_for_character(flow, variant):
    assert_error_page(flow.authorize(redirect_uri=variant))


@pytest.fixture
def native_app(http, user, app):
    """A desktop or command-line app (RFC 8252) that listens on a loopback port of its own."""
    client = add_client(app, name="CLI tool", public=True,
                        redirect_uris=["http://127.0.0.1/callback", "http://[::1]:8400/done"])
    return Browserless(http, client)


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:53127/callback", "http://127.0.0.1/callback", "http://127.0.0.1:1/callback",
    "http://[::1]:61000/done", "http://[::1]/done",
])
def test_a_loopback_ip_redirect_takes_any_port_rfc_8252(native_app, redirect_uri):
    response = native_app.code_response(redirect_uri=redirect_uri)
    assert response.status_code == 302 and response.location.startswith(redirect_uri + "?")
    tokens = native_app.exchange(query_of(response.location)["code"], redirect_uri=redirect_uri)
    assert tokens.status_code == 200, tokens.get_json()


def test_the_token_request_repeats_the_port_the_code_went_to(native_app):
    response = native_app.code_response(redirect_uri="http://127.0.0.1:53127/callback")
    refused = native_app.exchange(query_of(response.location)["code"],
                                  redirect_uri="http://127.0.0.1:53128/callback")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("variant", [
    "http://127.0.0.1:53127/callback/",        # anything but the port must still match exactly
    "http://127.0.0.1:53127/callback?x=1",
    "http://127.0.0.1:53127/Callback",
    "HTTP://127.0.0.1:53127/callback",
    "https://127.0.0.1:53127/callback",
    "http://127.0.0.2:53127/callback",
    "http://localhost:53127/callback",         # a name, not the loopback IP (RFC 8252 §8.3)
    "http://127.0.0.1.attacker.example/callback",
    "http://127.0.0.1:80@attacker.example/callback",
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:65536/callback",
    "http://127.0.0.1:53127/callback#x",
    "http://[::1]:61000/callback",             # the other registration's host, this one's path
])
def test_only_the_port_of_a_loopback_redirect_may_differ(native_app, variant):
    assert_error_page(native_app.authorize(redirect_uri=variant))


@pytest.mark.parametrize("uri, portless", [
    ("http://127.0.0.1:8080", "http://127.0.0.1"),
    ("http://[::1]:8080?x=1", "http://[::1]?x=1"),
    ("http://127.0.0.1:8080\n", None),  # a line break is no end of the host
    ("http://127.0.0.1:08080/cb", "http://127.0.0.1/cb"),
    ("http://127.0.0.1:٨٠/cb", None),  # digits, but not ASCII ones
])
def test_what_counts_as_a_loopback_ip_redirect(uri, portless):
    assert loopback_without_port(uri) == portless


def test_a_web_redirect_never_takes_another_port(flow):
    assert_error_page(flow.authorize(redirect_uri="https://rp.example.com:8443/callback"))


def test_missing_redirect_uri_gets_error_page(flow):
    assert_error_page(flow.authorize(redirect_uri=None))


def test_unknown_client_gets_error_page(flow):
    assert_error_page(flow.authorize(client_id="no-such-client"), status=400)


def test_missing_client_id_gets_error_page(flow):
    assert_error_page(flow.authorize(client_id=None), status=400)


def test_oidcc_response_type_missing_is_reported_to_client(flow, user):
    flow.login()
    response = flow.authorize(response_type=None, state="s1")
    params = assert_error_redirect(response, flow, "unsupported_response_type", "s1")
    assert "\n" not in params.get("error_description", "")


def test_implicit_response_types_are_refused(flow):
    response = flow.authorize(response_type="id_token token", state="s2")
    assert_error_redirect(response, flow, "unsupported_response_type", "s2")


def test_missing_pkce_is_refused(flow):
    response = flow.authorize(code_challenge=None, code_challenge_method=None, state="s3")
    assert_error_redirect(response, flow, "invalid_request", "s3")


def test_plain_pkce_is_refused(flow):
    response = flow.authorize(code_challenge_method="plain", state="s4")
    assert_error_redirect(response, flow, "invalid_request", "s4")


def test_pkce_method_is_not_defaulted_to_plain(flow):
    response = flow.authorize(code_challenge_method=None, state="s5")
    assert_error_redirect(response, flow, "invalid_request", "s5")


def test_oidcc_unsigned_request_object_rejected(flow):
    """Discovery offers no `none` for request objects (the suite then skips its module), and
    a client with a secret has no keys to verify one: an error page, never a redirect to a
    redirect_uri the object might have replaced."""
    response = flow.authorize(request="eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6ImZvbyJ9.", state="s6")
    assert response.status_code == 400 and response.location is None
    assert b"invalid_request_object" in response.data


def test_oidcc_request_uri_unregistered_is_not_fetched(flow):
    response = flow.authorize(request_uri="https://rp.example.com/request.jwt", state="s7")
    assert response.status_code == 400 and response.location is None
    assert b"invalid_request_uri" in response.data


def test_oidcc_prompt_none_not_logged_in(flow):
    response = flow.authorize(prompt="none", state="s8")
    assert_error_redirect(response, flow, "login_required", "s8")


def test_oidcc_prompt_none_logged_in_is_silent(flow):
    first = query_of(flow.code_response().location)
    response = flow.authorize(prompt="none")
    assert response.status_code == 302
    assert "code" in query_of(response.location)
    assert "error" not in first


def test_prompt_none_without_consent_is_consent_required(flow):
    flow.login()
    response = flow.authorize(prompt="none", state="s9")
    assert_error_redirect(response, flow, "consent_required", "s9")


def test_unauthenticated_request_goes_to_login_page(flow):
    response = flow.authorize()
    assert response.status_code == 302
    assert response.location == "/login"


def test_login_hint_prefills_username(flow):
    flow.authorize(login_hint="bob@example.com")
    page = flow.http.get("/login").get_data(as_text=True)
    assert 'value="bob@example.com"' in page


@pytest.mark.parametrize("extra", [
    {"extra": "foobar"}, {"display": "page"}, {"display": "popup"}, {"ui_locales": "fr-CA"},
    {"claims_locales": "de"}, {"acr_values": "urn:mace:incommon:iap:silver"},
    {"login_hint": "alice"}, {"nonce": None},
    {"claims": '{"userinfo": {"name": {"essential": true}}}'},
])
def test_oidcc_optional_parameters_do_not_cause_errors(flow, extra):
    """oidcc-ensure-request-with-unknown-parameter-succeeds, -display-*, -ui-locales,
    -claims-locales, -acr-values, -login-hint, -request-without-nonce-succeeds, and
    -claims-essential (the `claims` parameter is not supported, so it is ignored; `name` comes
    with the profile scope)."""
    response = flow.code_response(**extra)
    assert "code" in query_of(response.location)


def test_oidcc_alternate_happy_flow_scope_order(flow):
    response = flow.code_response(scope="email openid profile")
    assert "code" in query_of(response.location)


def test_oidcc_ensure_post_request_succeeds(flow):
    flow.code_response()  # signed in and consented
    response = flow.http.post("/authorize", data=flow.authorize_params())
    assert response.status_code == 302
    assert "code" in query_of(response.location)


def test_consent_shows_client_and_scopes_in_plain_words(flow):
    flow.authorize()
    page = flow.follow(flow.login())
    text = page_text(page.get_data(as_text=True))
    assert "Test App" in text
    assert "See your email address" in text
    assert 'name="decision" value="allow"' in page.get_data(as_text=True)


def test_consent_deny_returns_access_denied(flow):
    response = flow.code_response(decision="deny", state="s10")
    assert_error_redirect(response, flow, "access_denied", "s10")


def test_consent_is_remembered_for_the_same_scopes(app, flow):
    flow.code_response()
    response = flow.authorize()
    assert response.status_code == 302 and "code" in query_of(response.location)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Consent.id))) == 1


def test_new_scope_asks_for_consent_again(flow):
    flow.code_response(scope="openid")
    response = flow.authorize(scope="openid email")
    assert response.status_code == 200
    assert 'value="allow"' in response.get_data(as_text=True)


def test_prompt_consent_always_asks(flow):
    flow.code_response()
    response = flow.authorize(prompt="consent")
    assert response.status_code == 200
    assert 'value="allow"' in response.get_data(as_text=True)
    # and answering it completes the request without a loop
    assert "code" in query_of(flow.follow(flow.consent(response)).location)


def test_first_party_client_skips_consent(app, http, user):
    client = add_client(app, name="Own App", first_party=True)
    flow = Browserless(http, client)
    flow.authorize()
    response = flow.follow(flow.login())
    assert response.status_code == 302 and "code" in query_of(response.location)


def _age_login(app, seconds):
    with app.app_context():
        for login in db.session.execute(db.select(LoginSession)).scalars():
            login.auth_time -= seconds
        db.session.commit()


def test_oidcc_prompt_login_forces_fresh_login(flow):
    flow.code_response()
    response = flow.authorize(prompt="login")
    assert response.status_code == 302 and response.location == "/login"
    response = flow.follow(flow.login())
    assert "code" in query_of(response.location)


def test_oidcc_max_age_1_forces_login_after_a_second(app, flow):
    flow.code_response()
    _age_login(app, 2)
    response = flow.authorize(max_age="1")
    assert response.location == "/login"
    response = flow.follow(flow.login())
    assert "code" in query_of(response.location)


def test_oidcc_max_age_10000_does_not_force_login(app, flow):
    flow.code_response()
    _age_login(app, 5)
    response = flow.authorize(max_age="10000")
    assert "code" in query_of(response.location)


def test_max_age_with_prompt_none_is_login_required(app, flow):
    flow.code_response()
    _age_login(app, 5)
    response = flow.authorize(max_age="1", prompt="none", state="s11")
    assert_error_redirect(response, flow, "login_required", "s11")


def test_invalid_max_age_is_invalid_request(flow):
    flow.code_response()
    response = flow.authorize(max_age="soon", state="s12")
    assert_error_redirect(response, flow, "invalid_request", "s12")


def test_oidcc_id_token_hint_with_prompt_none_is_silent(flow):
    id_token = flow.tokens()["id_token"]
    response = flow.authorize(prompt="none", id_token_hint=id_token)
    assert "code" in query_of(response.location)


def test_id_token_hint_for_another_user_is_login_required(app, flow):
    id_token = flow.tokens()["id_token"]
    from ..conftest import add_user
    add_user(app, "bob")
    flow.login(username="bob")
    response = flow.authorize(prompt="none", id_token_hint=id_token, state="s13")
    assert_error_redirect(response, flow, "login_required", "s13")


def test_forged_id_token_hint_is_invalid_request(flow):
    flow.code_response()
    response = flow.authorize(prompt="none", id_token_hint="eyJhbGciOiJub25lIn0.e30.", state="s14")
    assert_error_redirect(response, flow, "invalid_request", "s14")


# Names url_for takes for itself: the parked request must come back with them as they were.
URL_FOR_NAMES = {"endpoint": "x", "_method": "DELETE", "_external": "1", "_anchor": "a",
                 "_scheme": "https"}


def test_parameters_named_like_url_for_arguments_survive_sign_in_and_consent(flow):
    """Extra parameters are ignored (oidcc-ensure-request-with-unknown-parameter-succeeds),
    whatever their names; resuming the parked request must not trip over them."""
    response = flow.authorize(prompt="login", **URL_FOR_NAMES)
    assert response.status_code == 302 and response.location.endswith("/login")
    resumed = flow.login()
    assert resumed.status_code == 303
    assert resumed.location.startswith("/authorize?")  # relative: never built from Host
    assert URL_FOR_NAMES.items() <= query_of(resumed.location).items()
    consent_page = flow.follow(resumed)
    assert consent_page.status_code == 200  # signed in once, even with prompt=login
    after_consent = flow.consent(consent_page)
    assert URL_FOR_NAMES.items() <= query_of(after_consent.location).items()
    response = flow.follow(after_consent)
    assert response.status_code == 302 and "code" in query_of(response.location)
