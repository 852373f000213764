"""The sign-in, consent and sign-out pages in a real browser, against a live server."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest

from ..conftest import add_client
from ..conftest import add_user
from ..helpers import PASSWORD
from ..helpers import pkce_pair
from ..helpers import query_of

pytestmark = pytest.mark.browser
CALLBACK = "https://rp.example.com/callback"


class RelyingParty:
    """Catches the redirect back to the (unreachable) client inside the browser."""

    def __init__(self, page):
        self.callbacks: list[str] = []
        page.context.route("https://rp.example.com/**", self._catch)

    def _catch(self, route):
        self.callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back at the app</h1>")


def authorize_url(server, client, **extra):
    _, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": CALLBACK,
              "scope": "openid profile email", "state": secrets.token_urlsafe(8),
              "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{server.url}/authorize?{urlencode(params)}"


def sign_in(page, username="alice", password=PASSWORD):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def setup(live_server):
    add_user(live_server.app)
    client = add_client(live_server.app, name="Photo Album", redirect_uris=[CALLBACK])
    return live_server, client


def test_sign_in_and_allow_returns_a_code(page, setup):
    server, client = setup
    rp = RelyingParty(page)
    page.goto(authorize_url(server, client, state="st-1"))
    assert page.title().startswith("Sign in")
    sign_in(page)
    assert page.locator("#client-name").inner_text() == "Photo Album"
    assert page.locator("li[data-scope=email]").inner_text() == "See your email address"
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("https://rp.example.com/**")
    params = query_of(rp.callbacks[-1])
    assert params["state"] == "st-1" and params["code"] and params["iss"] == server.url


def test_deny_returns_access_denied(page, setup):
    server, client = setup
    rp = RelyingParty(page)
    page.goto(authorize_url(server, client))
    sign_in(page)
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("https://rp.example.com/**")
    assert query_of(rp.callbacks[-1])["error"] == "access_denied"


def test_wrong_password_shows_generic_message(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client))
    sign_in(page, password="not it")
    assert page.locator("#login-error").inner_text() == "Invalid username or password."
    sign_in(page, username="nobody", password="not it")
    assert page.locator("#login-error").inner_text() == "Invalid username or password."


def test_remembered_consent_skips_the_page(page, setup):
    server, client = setup
    rp = RelyingParty(page)
    page.goto(authorize_url(server, client))
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("https://rp.example.com/**")
    # Navigate from the page (as a link click would): Playwright cannot route the redirects
    # of a navigation it started itself with goto().
    page.evaluate("url => { window.location.href = url }",
                  authorize_url(server, client, state="again"))
    page.wait_for_url(lambda url: url.startswith(CALLBACK) and "state=again" in url)
    assert query_of(rp.callbacks[-1])["state"] == "again"


def test_unregistered_redirect_uri_shows_error_page(page, setup):
    server, client = setup
    rp = RelyingParty(page)
    response = page.goto(authorize_url(server, client, redirect_uri="https://rp.example.com/evil"))
    assert response.status == 400
    assert page.locator("#error-code").inner_text() == "invalid_request"
    assert rp.callbacks == []


def test_tampered_csrf_token_is_refused(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client))
    page.locator("input[name=csrf_token]").evaluate("el => el.value = 'forged'")
    sign_in(page)
    assert page.locator("#error-description").is_visible()
    assert "expired" in page.locator("#error-description").inner_text()


def test_sign_out(page, setup):
    server, client = setup
    page.goto(f"{server.url}/login")
    sign_in(page)
    assert page.locator("#username").inner_text() == "alice"
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    assert page.locator("#logged-out").is_visible()
    page.goto(f"{server.url}/")
    assert page.get_by_role("heading", name="Not signed in").is_visible()
