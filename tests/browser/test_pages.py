"""The sign-in, consent and sign-out pages in a real browser, against a live server."""

from __future__ import annotations

import json
import re
import secrets
import time
from urllib.parse import urlencode

import pytest
import requests

from ..conftest import add_client
from ..conftest import add_user
from ..helpers import PASSWORD
from ..helpers import pkce_pair
from ..helpers import query_of

pytestmark = pytest.mark.browser


def callback_of(server) -> str:
    """The client's redirect URI: a path on the live server itself, so the browser lands on a
    real address (a 404 page) whose URL carries the response parameters."""
    return f"{server.url}/rp/callback"


def authorize_url(server, client, **extra):
    _, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client.client_id,
              "redirect_uri": callback_of(server),
              "scope": "openid profile email", "state": secrets.token_urlsafe(8),
              "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{server.url}/authorize?{urlencode(params)}"


def sign_in(page, username="alice", password=PASSWORD):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    # The click returns once the next page starts loading: its title may not be parsed yet
    # (seen under load, after the redirects to the authenticator set-up).
    page.wait_for_load_state()


@pytest.fixture
def setup(live_server):
    add_user(live_server.app)
    client = add_client(live_server.app, name="Photo Album",
                        redirect_uris=[callback_of(live_server)])
    return live_server, client


def test_sign_in_and_allow_returns_a_code(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client, state="st-1"))
    assert page.title().startswith("Sign in")
    sign_in(page)
    assert page.locator("#client-name").inner_text() == "Photo Album"
    assert page.locator("li[data-scope=email]").inner_text() == "See your email address"
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(server) + "?*")
    params = query_of(page.url)
    assert params["state"] == "st-1" and params["code"] and params["iss"] == server.url


def test_deny_returns_access_denied(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client))
    sign_in(page)
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(callback_of(server) + "?*")
    assert query_of(page.url)["error"] == "access_denied"


def test_wrong_password_shows_generic_message(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client))
    assert page.evaluate("document.activeElement.id") == "username"
    sign_in(page, password="not it")
    assert page.locator("#login-error").inner_text() == "Invalid username or password."
    # The username is kept: the user goes on with the password.
    assert page.get_by_label("Username").input_value() == "alice"
    assert page.evaluate("document.activeElement.id") == "password"
    sign_in(page, username="nobody", password="not it")
    assert page.locator("#login-error").inner_text() == "Invalid username or password."


def test_remembered_consent_skips_the_page(page, setup):
    server, client = setup
    page.goto(authorize_url(server, client))
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(server) + "?*")
    page.goto(authorize_url(server, client, state="again"))
    assert page.url.startswith(callback_of(server) + "?")
    assert query_of(page.url)["state"] == "again"


def test_unregistered_redirect_uri_shows_error_page(page, setup):
    server, client = setup
    evil = f"{server.url}/rp/evil"
    response = page.goto(authorize_url(server, client, redirect_uri=evil))
    assert response.status == 400
    assert page.url.startswith(f"{server.url}/authorize?")  # no redirect happened
    assert page.locator("#error-code").inner_text() == "invalid_request"


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


def test_a_session_on_another_device_is_signed_out_from_the_account_page(page, chromium, setup):
    server, _ = setup
    phone = chromium.new_context(user_agent="Phone browser (test)").new_page()
    try:
        phone.goto(f"{server.url}/login")
        sign_in(phone)
        page.goto(f"{server.url}/account")
        sign_in(page)  # and back to the account page

        other = page.locator("li[data-session]:not([data-session=current])")
        assert "Phone browser (test)" in other.inner_text()
        assert "This browser" in page.locator("li[data-session=current]").inner_text()
        other.get_by_role("radio").check()
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="End the chosen session").click()
        assert "That session is signed out" in page.locator("#notice").inner_text()
        assert page.locator("li[data-session]").count() == 1

        phone.goto(f"{server.url}/account")
        assert phone.title().startswith("Sign in")
    finally:
        phone.context.close()


def test_a_forgotten_password_is_reset_from_a_mailed_link(page, setup, mailbox):
    server, _ = setup
    server.app.config.update(MAIL_SMTP_URL=mailbox.url, MAIL_FROM="id@example.com")
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Username or e-mail").fill("alice@example.com")
    page.get_by_role("button", name="Send the link").click()
    assert "on its way" in page.locator("#link-sent").inner_text()

    deadline = time.monotonic() + 10  # the mail goes out once the page has been sent
    while not mailbox.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    link = re.search(r"http://\S+/password/reset\?token=\S+",
                     mailbox.messages.pop().get_content()).group(0)
    page.goto(link)
    assert page.locator("#username").inner_text() == "alice"
    page.get_by_label("New password", exact=True).fill("a brand new passphrase")
    page.get_by_label("New password, again").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#password-reset").is_visible()
    page.get_by_role("link", name="Sign in").click()
    sign_in(page, password="a brand new passphrase")
    assert page.locator("#username").inner_text() == "alice"


def test_a_user_changes_their_name_and_address_from_the_account_page(page, setup):
    server, _ = setup  # no mail here: the new address is taken at once, unconfirmed
    page.goto(f"{server.url}/account")
    sign_in(page)
    # Every field is as wide as the form: the e-mail one was left at the browser's default.
    widths = {page.get_by_label(label).bounding_box()["width"]
              for label in ("Name", "New e-mail address", "Your password")}
    assert len(widths) == 1, widths
    page.get_by_label("Name").fill("Alice Liddell")
    page.get_by_role("button", name="Save the name").click()
    assert "name has been changed" in page.locator("#notice").inner_text()
    assert page.get_by_label("Name").input_value() == "Alice Liddell"

    page.get_by_label("New e-mail address").fill("alice@wonderland.example")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Change the address").click()
    assert "not right" in page.locator("#account-error").inner_text()
    page.get_by_label("New e-mail address").fill("alice@wonderland.example")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Change the address").click()
    assert "address has been changed" in page.locator("#notice").inner_text()
    assert "alice@wonderland.example" in page.locator("dl.profile").inner_text()
    assert page.locator("#email-status").inner_text() == "not confirmed"


def test_a_device_is_connected_from_the_device_page(page, setup):
    server, _ = setup
    created = server.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "Living-room TV", "--public", "--grant-type",
        "device_code", "--json"])
    client_id = json.loads(created.output)["client_id"]
    codes = requests.post(f"{server.url}/device_authorization", timeout=5,
                          data={"client_id": client_id, "scope": "openid profile"}).json()
    page.goto(codes["verification_uri_complete"])
    sign_in(page)  # and back to the device page, the code filled in
    assert page.get_by_label("Code").input_value() == codes["user_code"]
    page.get_by_role("button", name="Continue").click()
    assert page.locator("#user-code").inner_text() == codes["user_code"]
    page.get_by_role("button", name="Allow").click()
    assert "Device connected" in page.locator("h1").inner_text()
    tokens = requests.post(f"{server.url}/token", timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": codes["device_code"], "client_id": client_id})
    assert tokens.status_code == 200 and "id_token" in tokens.json()
