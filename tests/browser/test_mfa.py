"""Two-step sign-in and the account page in headless Chromium, against a live server: enrol an
authenticator from the page, sign in with a code, refuse a replayed code, spend a recovery code
once, step up for a client that requires a second factor, and withdraw an app's access."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import enroll_totp
from ..conftest import totp_code
from ..helpers import pkce_pair
from ..helpers import query_of
from .test_pages import callback_of
from .test_pages import sign_in

pytestmark = pytest.mark.browser




class RelyingParty:
    """What the browser-facing half of an RP does: send the user to /authorize, then redeem
    the code at the token endpoint and read the ID token."""

    def __init__(self, server, client):
        self.server = server
        self.client = client

    def start(self, page, **extra) -> None:
        self.verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.client.client_id,
                  "redirect_uri": callback_of(self.server),
                  "scope": "openid profile offline_access",
                  "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                  "code_challenge": challenge, "code_challenge_method": "S256", **extra}
        page.goto(f"{self.server.url}/authorize?{urlencode(params)}")

    def finish(self, page) -> dict:
        """Allow on the consent page if it is shown, then redeem the code."""
        if page.get_by_role("button", name="Allow").count():
            page.get_by_role("button", name="Allow").click()
        page.wait_for_url(callback_of(self.server) + "?*")
        response = requests.post(f"{self.server.url}/token", timeout=5, data={
            "grant_type": "authorization_code", "code": query_of(page.url)["code"],
            "redirect_uri": callback_of(self.server), "code_verifier": self.verifier,
        }, auth=(self.client.client_id, self.client.secret))
        assert response.status_code == 200, response.text
        return response.json()

    def id_token_claims(self, tokens: dict) -> dict:
        keys = KeySet.import_key_set(requests.get(f"{self.server.url}/jwks.json", timeout=5).json())
        return jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims


def enter_code(page, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify").click()


@pytest.fixture
def server(live_server):
    add_user(live_server.app)
    return live_server


def register(server, name="Photo Album", **fields):
    return add_client(server.app, name=name, redirect_uris=[callback_of(server)],
                      grant_types=["authorization_code", "refresh_token"],
                      scope="openid profile email offline_access", **fields)


def test_enroll_from_the_account_page_then_sign_in_with_a_code(page, server):
    page.goto(f"{server.url}/account")
    sign_in(page)  # the account page sent us to sign in, and back
    assert page.locator("#mfa-status").inner_text().startswith("Off")
    page.locator("#enroll-totp").click()
    assert page.locator("#totp-qr svg").count() == 1  # the QR code, drawn inline
    shown = page.locator("#totp-secret").inner_text()  # in groups of four, to type by hand
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4})+", shown), shown
    secret = shown.replace(" ", "")
    page.get_by_label("The 6-digit code your app shows").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.locator("#continue").click()
    assert page.locator("#mfa-status").inner_text().startswith("On")

    # A new browser: password, then a code (the next step's: the current one is spent).
    page.context.clear_cookies()
    rp = RelyingParty(server, register(server))
    rp.start(page)
    sign_in(page)
    assert page.title().startswith("Confirm it's you")
    code = totp_code(secret, 1)
    enter_code(page, code)
    claims = rp.id_token_claims(rp.finish(page))
    assert claims["amr"] == ["pwd", "otp"] and claims["acr"] == "2"

    # The same code again, in another browser: refused.
    page.context.clear_cookies()
    rp.start(page)
    sign_in(page)
    enter_code(page, code)
    assert page.locator("#mfa-error").inner_text().startswith("That code is not valid")
    assert page.title().startswith("Confirm it's you")


def test_a_recovery_code_works_once(page, server):
    _, codes = enroll_totp(server.app)
    rp = RelyingParty(server, register(server))
    rp.start(page)
    sign_in(page)
    enter_code(page, codes[0])
    assert rp.id_token_claims(rp.finish(page))["amr"] == ["pwd", "otp"]

    page.context.clear_cookies()
    rp.start(page)
    sign_in(page)
    enter_code(page, codes[0])
    assert page.locator("#mfa-error").is_visible()
    enter_code(page, codes[1])
    rp.finish(page)
    page.goto(f"{server.url}/account")
    assert "8 recovery codes left" in page.locator("#mfa-status").inner_text()


def test_require_mfa_client_makes_a_user_without_a_factor_enroll_totp(page, server):
    rp = RelyingParty(server, register(server, name="Payroll", require_mfa=True))
    rp.start(page)
    sign_in(page)
    assert page.title().startswith("Set up an authenticator app")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("The 6-digit code your app shows").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    assert len(page.locator("#recovery-codes li").all_inner_texts()) == 10
    page.locator("#continue").click()  # back to the waiting authorization
    claims = rp.id_token_claims(rp.finish(page))
    assert claims["acr"] == "2" and claims["amr"] == ["pwd", "otp"]


def test_require_mfa_client_makes_a_password_only_session_confirm_a_code(page, server):
    plain = RelyingParty(server, register(server))
    plain.start(page)
    sign_in(page)
    assert plain.id_token_claims(plain.finish(page))["acr"] == "1"
    secret, _ = enroll_totp(server.app)  # enrolled on another device since

    strict = RelyingParty(server, register(server, name="Payroll", require_mfa=True))
    strict.start(page)
    assert page.title().startswith("Confirm it's you")  # no password asked again
    enter_code(page, totp_code(secret))
    claims = strict.id_token_claims(strict.finish(page))
    assert claims["acr"] == "2" and claims["amr"] == ["pwd", "otp"]


def test_withdrawing_consent_revokes_the_apps_refresh_token(page, server):
    client = register(server)
    rp = RelyingParty(server, client)
    rp.start(page)
    sign_in(page)
    tokens = rp.finish(page)
    assert tokens["refresh_token"]

    page.goto(f"{server.url}/account")
    app_entry = page.locator(f"li[data-client-id='{client.client_id}']")
    assert "Photo Album" in app_entry.inner_text()
    app_entry.get_by_role("button", name="Remove access").click()
    assert page.locator("#no-apps").is_visible()

    refreshed = requests.post(f"{server.url}/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, client.secret))
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    # and the app must ask again
    rp.start(page)
    assert page.get_by_role("button", name="Allow").is_visible()
