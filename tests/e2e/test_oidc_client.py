"""End to end over real HTTP: Authlib's OAuth 2.0 client, configured from discovery alone,
runs the code flow with PKCE S256 and a nonce and validates the ID token against the JWKS."""

from __future__ import annotations

import http.server
import secrets
import threading
from urllib.parse import urljoin

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from ..conftest import add_client
from ..conftest import add_user
from ..helpers import PASSWORD
from ..helpers import csrf_token
from ..helpers import query_of

CALLBACK = "https://rp.example.com/callback"


def sign_in_and_consent(browser: requests.Session, base: str, authorization_url: str,
                        expect_consent: bool = True) -> str:
    """What the user's browser does between the RP's redirect and the callback."""
    response = browser.get(authorization_url, allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    login_page = browser.get(urljoin(base, "/login"))
    response = browser.post(urljoin(base, "/login"), allow_redirects=False, data={
        "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(login_page.text)})
    assert response.status_code == 303
    consent_page = browser.get(urljoin(base, response.headers["Location"]), allow_redirects=False)
    if not expect_consent:  # remembered from an earlier authorization
        assert consent_page.status_code == 302
        return consent_page.headers["Location"]
    assert consent_page.status_code == 200 and 'value="allow"' in consent_page.text
    response = browser.post(urljoin(base, "/consent"), allow_redirects=False, data={
        "decision": "allow", "csrf_token": csrf_token(consent_page.text)})
    assert response.status_code == 303
    response = browser.get(urljoin(base, response.headers["Location"]), allow_redirects=False)
    assert response.status_code == 302
    return response.headers["Location"]


def test_oidcc_server_with_a_standard_client_library(live_server):
    base = live_server.url
    user = add_user(live_server.app)
    client = add_client(live_server.app, name="E2E App", redirect_uris=[CALLBACK])

    metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert metadata["issuer"] == base
    rp = OAuth2Session(client.client_id, client.secret, scope="openid profile email",
                       redirect_uri=CALLBACK, code_challenge_method="S256",
                       token_endpoint_auth_method="client_secret_basic")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"],
                                             code_verifier=verifier, nonce=nonce)

    callback = sign_in_and_consent(requests.Session(), base, url)
    params = query_of(callback)
    assert params["state"] == state and params["iss"] == metadata["issuer"]

    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier)
    assert token["token_type"] == "Bearer"

    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims, decoded.header,
        options={"iss": {"values": [metadata["issuer"]]}, "aud": {"values": [client.client_id]}},
        params={"nonce": nonce, "access_token": token["access_token"],
                "client_id": client.client_id},
    )
    claims.validate(leeway=5)
    assert claims["sub"] == user.subject

    userinfo = rp.get(metadata["userinfo_endpoint"], timeout=5).json()
    assert userinfo["sub"] == user.subject and userinfo["email"] == user.email


def test_public_client_with_pkce_over_http(live_server):
    base = live_server.url
    add_user(live_server.app)
    client = add_client(live_server.app, name="SPA", public=True, redirect_uris=[CALLBACK])
    metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    rp = OAuth2Session(client.client_id, scope="openid", redirect_uri=CALLBACK,
                       code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"],
                                         code_verifier=verifier, nonce="n1")
    callback = sign_in_and_consent(requests.Session(), base, url)
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier)
    assert "id_token" in token

    # the same code a second time: invalid_grant, as JSON with no-store
    again = requests.post(metadata["token_endpoint"], timeout=5, data={
        "grant_type": "authorization_code", "code": query_of(callback)["code"],
        "redirect_uri": CALLBACK, "code_verifier": verifier, "client_id": client.client_id})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.headers["Cache-Control"] == "no-store"


def test_a_native_app_on_a_port_the_os_picked(live_server):
    """RFC 8252 §7.3, as kubectl oidc-login and other command-line tools do it: registered
    once as http://127.0.0.1/callback, the app listens on whatever port it got, and the
    browser brings the code there."""
    base = live_server.url
    add_user(live_server.app)
    client = add_client(live_server.app, name="CLI tool", public=True,
                        redirect_uris=["http://127.0.0.1/callback"])
    received = []

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"You may close this window.")

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Callback) as listener:
        threading.Thread(target=listener.handle_request, daemon=True).start()
        redirect_uri = f"http://127.0.0.1:{listener.server_port}/callback"
        metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
        rp = OAuth2Session(client.client_id, scope="openid", redirect_uri=redirect_uri,
                           code_challenge_method="S256", token_endpoint_auth_method="none")
        verifier = secrets.token_urlsafe(48)
        url, _ = rp.create_authorization_url(metadata["authorization_endpoint"],
                                             code_verifier=verifier)
        browser = requests.Session()
        callback = sign_in_and_consent(browser, base, url)
        assert callback.startswith(redirect_uri + "?")
        assert browser.get(callback, timeout=5).status_code == 200  # the app's own listener
    token = rp.fetch_token(metadata["token_endpoint"],
                           authorization_response=redirect_uri + received[0][len("/callback"):],
                           code_verifier=verifier)
    assert "id_token" in token and "access_token" in token
