"""Pushed Authorization Requests (RFC 9126) over real HTTP: the client pushes its request to
/par, authenticated, and the browser carries only the request_uri; named after the FAPI 2.0
suite's par-* modules where one applies."""

from __future__ import annotations

import secrets
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey

from idp.models import PushedRequest
from idp.models import db
from idp.models import utcnow

from ..helpers import PASSWORD
from ..helpers import csrf_token
from ..helpers import pkce_pair
from ..helpers import query_of
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent
from .test_private_key_jwt import ASSERTION_TYPE
from .test_private_key_jwt import assertion
from .test_private_key_jwt import jwks_file


def authorization_request(client, challenge, **extra) -> dict:
    return {"response_type": "code", "client_id": client.client_id, "redirect_uri": CALLBACK,
            "scope": "openid profile", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def push(provider, client, params, how="basic") -> requests.Response:
    return provider.post("pushed_authorization_request_endpoint", client, how, **params)


def authorize_url(provider, client_id, request_uri, **extra) -> str:
    query = urlencode({"client_id": client_id, "request_uri": request_uri, **extra})
    return f"{provider.metadata['authorization_endpoint']}?{query}"


@pytest.fixture
def web_app(provider):
    return provider.register("Web App", "--redirect-uri", CALLBACK)


def test_discovery_names_the_endpoint(provider):
    assert provider.metadata["pushed_authorization_request_endpoint"].endswith("/par")
    assert provider.metadata["require_pushed_authorization_requests"] is False


def test_the_browser_carries_only_the_request_uri(provider, alice, web_app):
    verifier, challenge = pkce_pair()
    params = authorization_request(web_app, challenge)
    pushed = push(provider, web_app, params)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["Cache-Control"] == "no-store"
    body = pushed.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60

    # What the browser adds is not the request: the pushed parameters are.
    url = authorize_url(provider, web_app.client_id, body["request_uri"],
                        state="from-the-browser", scope="openid email",
                        redirect_uri="https://attacker.example/cb")
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert callback.startswith(CALLBACK + "?")
    answer = query_of(callback)
    assert answer["state"] == params["state"]
    rp = OAuth2Session(web_app.client_id, web_app.secret, redirect_uri=CALLBACK)
    tokens = rp.fetch_token(provider.metadata["token_endpoint"], authorization_response=callback,
                            code_verifier=verifier)
    assert tokens["scope"] == "openid profile"
    keys = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    assert jwt.decode(tokens["id_token"], keys).claims["nonce"] == params["nonce"]


def test_par_attempt_reuse_request_uri(provider, alice, web_app):
    _, challenge = pkce_pair()
    request_uri = push(provider, web_app, authorization_request(web_app, challenge)).json()[
        "request_uri"]
    url = authorize_url(provider, web_app.client_id, request_uri)
    browser = requests.Session()
    sign_in_and_consent(browser, provider.url, url)
    again = browser.get(url, allow_redirects=False)
    assert again.status_code == 400 and "Location" not in again.headers
    assert "invalid_request_uri" in again.text


def test_par_ensure_reused_request_uri_prior_to_auth_completion_succeeds(
        provider, alice, web_app):
    _, challenge = pkce_pair()
    request_uri = push(provider, web_app, authorization_request(web_app, challenge)).json()[
        "request_uri"]
    url = authorize_url(provider, web_app.client_id, request_uri)
    browser = requests.Session()
    for _ in range(2):  # the user came back before signing in
        first = browser.get(url, allow_redirects=False)
        assert first.status_code == 302 and first.headers["Location"] == "/login"
    assert sign_in_and_consent(browser, provider.url, url).startswith(CALLBACK + "?code=")


def test_par_attempt_to_use_request_uri_for_different_client(provider, alice, web_app):
    other = provider.register("Other App", "--redirect-uri", CALLBACK)
    _, challenge = pkce_pair()
    request_uri = push(provider, web_app, authorization_request(web_app, challenge)).json()[
        "request_uri"]
    stolen = requests.get(authorize_url(provider, other.client_id, request_uri), timeout=5,
                          allow_redirects=False)
    assert stolen.status_code == 400 and "Location" not in stolen.headers


def expire_pushed_requests(provider, seconds_ago: int = 1) -> None:
    with provider.app.app_context():
        db.session.execute(db.update(PushedRequest).values(
            expires_at=utcnow() - timedelta(seconds=seconds_ago)))
        db.session.commit()


def test_par_attempt_to_use_expired_request_uri(provider, alice, web_app):
    """The request still names its redirect URI: the client is told, and can start again
    by itself, rather than the user being left on a page (node-oidc-provider#801)."""
    _, challenge = pkce_pair()
    params = authorization_request(web_app, challenge)
    request_uri = push(provider, web_app, params).json()["request_uri"]
    expire_pushed_requests(provider)
    expired = requests.get(authorize_url(provider, web_app.client_id, request_uri), timeout=5,
                           allow_redirects=False)
    assert expired.status_code == 302
    location = expired.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    answer = query_of(location)
    assert answer["error"] == "invalid_request_uri"
    assert answer["state"] == params["state"]
    assert answer["iss"] == provider.metadata["issuer"]
    assert "code" not in answer


def test_an_expired_request_is_told_the_way_it_asked(provider, alice, web_app):
    _, challenge = pkce_pair()
    params = authorization_request(web_app, challenge, response_mode="form_post")
    request_uri = push(provider, web_app, params).json()["request_uri"]
    expire_pushed_requests(provider)
    expired = requests.get(authorize_url(provider, web_app.client_id, request_uri), timeout=5,
                           allow_redirects=False)
    assert expired.status_code == 200 and "Location" not in expired.headers
    assert f'action="{CALLBACK}"' in expired.text
    assert 'value="invalid_request_uri"' in expired.text
    assert f'value="{params["state"]}"' in expired.text


def test_an_expired_request_to_a_redirect_uri_since_removed_is_a_page(provider, alice,
                                                                      web_app):
    _, challenge = pkce_pair()
    request_uri = push(provider, web_app, authorization_request(web_app, challenge)).json()[
        "request_uri"]
    provider.idp("clients", "update", web_app.client_id,
                 "--redirect-uri", "https://rp.example.org/elsewhere")
    expire_pushed_requests(provider)
    page = requests.get(authorize_url(provider, web_app.client_id, request_uri), timeout=5,
                        allow_redirects=False)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "invalid_request_uri" in page.text


@pytest.mark.parametrize("request_uri", ["urn:ietf:params:oauth:request_uri:",
                                         "urn:ietf:params:oauth:request_uri:nope",
                                         "urn:ietf:params:oauth:request_uri:" + "x" * 5000])
def test_an_unknown_request_uri_is_an_error_page(provider, web_app, request_uri):
    page = requests.get(authorize_url(provider, web_app.client_id, request_uri), timeout=5,
                        allow_redirects=False)
    assert page.status_code == 400 and "Location" not in page.headers


@pytest.mark.parametrize("change, error", [
    ({"redirect_uri": "https://attacker.example/cb"}, "invalid_request"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),  # par-plain-pkce-rejected
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
    ({"request": "e30.e30."}, "invalid_request_object"),  # a client without keys
    ({"client_id": "someone-else"}, "invalid_request"),
])
def test_a_bad_pushed_request_is_told_to_the_client_as_json(provider, web_app, change, error):
    _, challenge = pkce_pair()
    params = {k: v for k, v in {**authorization_request(web_app, challenge), **change}.items()
              if v is not None}
    refused = push(provider, web_app, params)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == error and "Location" not in refused.headers
    assert refused.headers["Cache-Control"] == "no-store"


def test_a_push_needs_the_client_to_authenticate(provider, web_app):
    _, challenge = pkce_pair()
    params = authorization_request(web_app, challenge)
    anonymous = requests.post(provider.metadata["pushed_authorization_request_endpoint"],
                              data=params, timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    web_app.secret = "wrong"
    assert push(provider, web_app, params).status_code == 401


def test_a_public_client_pushes_with_its_client_id(provider, alice):
    app = provider.register("Mobile", "--public", "--redirect-uri", CALLBACK)
    verifier, challenge = pkce_pair()
    pushed = push(provider, app, authorization_request(app, challenge), how="post")
    assert pushed.status_code == 201, pushed.text
    callback = sign_in_and_consent(requests.Session(), provider.url, authorize_url(
        provider, app.client_id, pushed.json()["request_uri"]))
    token = requests.post(provider.metadata["token_endpoint"], timeout=5, data={
        "grant_type": "authorization_code", "code": query_of(callback)["code"],
        "redirect_uri": CALLBACK, "code_verifier": verifier, "client_id": app.client_id})
    assert token.status_code == 200, token.text


def test_a_denied_pushed_request_is_spent_too(provider, alice, web_app):
    _, challenge = pkce_pair()
    params = authorization_request(web_app, challenge)
    request_uri = push(provider, web_app, params).json()["request_uri"]
    url = authorize_url(provider, web_app.client_id, request_uri)
    browser = requests.Session()
    denied = _deny(browser, provider, url)
    answer = query_of(denied)
    assert answer["error"] == "access_denied" and answer["state"] == params["state"]
    assert answer["iss"] == provider.metadata["issuer"]
    assert browser.get(url, allow_redirects=False).status_code == 400


def _deny(browser, provider, url) -> str:
    browser.get(url, allow_redirects=False)
    login_page = browser.get(urljoin(provider.url, "/login"))
    signed_in = browser.post(urljoin(provider.url, "/login"), allow_redirects=False, data={
        "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(login_page.text)})
    consent_page = browser.get(urljoin(provider.url, signed_in.headers["Location"]))
    answered = browser.post(urljoin(provider.url, "/consent"), allow_redirects=False, data={
        "decision": "deny", "csrf_token": csrf_token(consent_page.text)})
    response = browser.get(urljoin(provider.url, answered.headers["Location"]),
                           allow_redirects=False)
    return response.headers["Location"]


def test_a_key_client_pushes_with_an_assertion_addressed_to_par(provider, tmp_path):
    key = RSAKey.generate_key(2048, parameters={"kid": "web-1"})
    data = provider.idp("clients", "create", "--name", "Key App", "--redirect-uri", CALLBACK,
                        "--jwks-file", jwks_file(tmp_path, key))
    client = SimpleNamespace(client_id=data["client_id"], secret=None)
    _, challenge = pkce_pair()
    signed = assertion(provider, client.client_id, key,
                       aud=provider.metadata["pushed_authorization_request_endpoint"])
    pushed = push(provider, client, {**authorization_request(client, challenge),
                                     "client_assertion_type": ASSERTION_TYPE,
                                     "client_assertion": signed}, how="post")
    assert pushed.status_code == 201, pushed.text
    with provider.app.app_context():  # the assertion is no part of the request kept
        kept = db.session.execute(db.select(PushedRequest)).scalar_one()
        assert "client_assertion" not in kept.params


def test_a_client_that_requires_par_is_refused_a_request_in_the_url(provider, alice):
    app = provider.register("Bank App", "--redirect-uri", CALLBACK, "--require-par")
    assert provider.idp("clients", "show", app.client_id)["require_par"] is True
    _, challenge = pkce_pair()
    params = authorization_request(app, challenge)
    in_the_url = requests.get(provider.metadata["authorization_endpoint"], params=params,
                              timeout=5, allow_redirects=False)
    assert in_the_url.status_code == 302
    answer = query_of(in_the_url.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == params["state"]
    request_uri = push(provider, app, params).json()["request_uri"]
    callback = sign_in_and_consent(requests.Session(), provider.url,
                                   authorize_url(provider, app.client_id, request_uri))
    assert "code" in query_of(callback)


@pytest.mark.parametrize("extra", [[("scope", "openid email")], [("state", "a\x00b")]])
def test_a_repeated_or_nul_parameter_is_a_json_error_too(provider, web_app, extra):
    _, challenge = pkce_pair()
    form = [*authorization_request(web_app, challenge).items(), *extra]
    refused = requests.post(provider.metadata["pushed_authorization_request_endpoint"],
                            data=form, auth=(web_app.client_id, web_app.secret), timeout=5)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"


def test_a_user_may_take_longer_to_sign_in_than_the_request_uri_lives(provider, alice,
                                                                      web_app):
    """The lifetime bounds how long the client takes to send the browser: once the browser has
    brought the request_uri, the user may sign in after it expired (pushed_requests
    .RESUME_SECONDS), in that browser only."""
    _, challenge = pkce_pair()
    params = authorization_request(web_app, challenge)
    request_uri = push(provider, web_app, params).json()["request_uri"]
    url = authorize_url(provider, web_app.client_id, request_uri)
    browser = requests.Session()
    assert browser.get(url, allow_redirects=False).headers["Location"] == "/login"

    expire_pushed_requests(provider, 300)  # five minutes on the sign-in page
    elsewhere = requests.get(url, timeout=5, allow_redirects=False)  # too late for this one
    assert query_of(elsewhere.headers["Location"])["error"] == "invalid_request_uri"
    callback = sign_in_and_consent(browser, provider.url, url)
    assert query_of(callback)["state"] == params["state"]

    # Past RESUME_SECONDS the browser is sent back to the client, which starts again.
    late = requests.Session()
    params = authorization_request(web_app, challenge)
    request_uri = push(provider, web_app, params).json()["request_uri"]
    url = authorize_url(provider, web_app.client_id, request_uri)
    assert late.get(url, allow_redirects=False).headers["Location"] == "/login"
    expire_pushed_requests(provider, 1801)
    told = late.get(url, allow_redirects=False)
    answer = query_of(told.headers["Location"])
    assert answer["error"] == "invalid_request_uri" and answer["state"] == params["state"]
    serializer = provider.app.session_interface.get_signing_serializer(provider.app)
    left = late.cookies.get("idp_session")  # none: the waiting request was all it held
    assert left is None or "pending_authz" not in serializer.loads(left)
