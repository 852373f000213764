"""An authorization request waits in the browser's session cookie while the user signs in.
Browsers drop a cookie over 4 KB without a word, and the user would be sent back to sign in
again and again; a request too large to wait there waits in the database, as if pushed to /par
(RFC 9126), and the cookie holds only its request_uri."""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest
import requests

from ..helpers import basic_auth
from ..helpers import pkce_pair
from ..helpers import query_of
from .test_pages import authorize_url
from .test_pages import callback_of
from .test_pages import setup  # noqa: F401 (a fixture)
from .test_pages import sign_in

pytestmark = pytest.mark.browser


def allow(page, server) -> dict[str, str]:
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(server) + "?*")
    return query_of(page.url)


def test_a_long_request_survives_sign_in_and_consent(page, setup):  # noqa: F811
    server, client = setup
    state = secrets.token_urlsafe(1900)  # 2,534 characters, a 3.4 KB cookie
    page.goto(authorize_url(server, client, state=state))
    sign_in(page)
    assert page.locator("#client-name").inner_text() == "Photo Album"
    params = allow(page, server)
    assert params["code"] and params["state"] == state


def test_a_request_too_large_for_the_cookie_waits_in_the_database(page, setup):  # noqa: F811
    """It was a 500 here (the live server makes Flask's cookie-size warning an error); in
    production, a sign-in that never ended."""
    server, client = setup
    state = secrets.token_urlsafe(3750)  # 5,000 characters
    page.goto(authorize_url(server, client, state=state))
    sign_in(page)
    assert not [cookie for cookie in page.context.cookies() if len(cookie["value"]) > 1000]
    assert page.locator("#client-name").inner_text() == "Photo Album"
    params = allow(page, server)
    assert params["code"] and params["state"] == state


def test_the_same_request_pushed_to_par_signs_in(page, setup):  # noqa: F811
    server, client = setup
    state = secrets.token_urlsafe(3750)
    _, challenge = pkce_pair()
    pushed = requests.post(f"{server.url}/par", headers=basic_auth(client.client_id,
                                                                   client.secret), data={
        "response_type": "code", "client_id": client.client_id,
        "redirect_uri": callback_of(server), "scope": "openid profile", "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256"}, timeout=10)
    assert pushed.status_code == 201, pushed.text
    page.goto(f"{server.url}/authorize?" + urlencode({
        "client_id": client.client_id, "request_uri": pushed.json()["request_uri"]}))
    sign_in(page)
    params = allow(page, server)
    assert params["code"] and params["state"] == state
