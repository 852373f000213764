"""A browser app (a public client running in a page of its own origin) in real Chromium: it
redeems its code at /token and reads /userinfo with fetch(), across origins, as a
single-page app does. Chromium enforces CORS; the provider must allow these two calls."""

from __future__ import annotations

import pytest

from ..conftest import add_client
from ..conftest import add_user
from ..helpers import pkce_pair
from ..helpers import query_of
from .conftest import page_server
from .test_pages import authorize_url
from .test_pages import callback_of
from .test_pages import sign_in

pytestmark = pytest.mark.browser

REDEEM_AND_READ = """async ([provider, form]) => {
    const token = await fetch(provider + "/token", {method: "POST",
                                                    body: new URLSearchParams(form)});
    const tokens = await token.json();
    const userinfo = await fetch(provider + "/userinfo", {
        headers: {Authorization: "Bearer " + tokens.access_token}});
    return {token_status: token.status, userinfo_status: userinfo.status,
            userinfo: await userinfo.json()};
}"""


@pytest.fixture
def app_origin():
    """The browser app's own page, on its own origin and without the provider's CSP."""
    with page_server(b"<!doctype html><title>Photo Album</title>") as origin:
        yield origin


def test_a_browser_app_on_another_origin_redeems_its_code_and_reads_userinfo(
        page, live_server, app_origin):
    add_user(live_server.app)
    app = add_client(live_server.app, name="Photo Album SPA", public=True,
                     redirect_uris=[callback_of(live_server)])
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, app, code_challenge=challenge))
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(live_server) + "?*")
    code = query_of(page.url)["code"]

    page.goto(app_origin + "/")
    result = page.evaluate(REDEEM_AND_READ, [live_server.url, {
        "grant_type": "authorization_code", "code": code, "client_id": app.client_id,
        "redirect_uri": callback_of(live_server), "code_verifier": verifier}])

    assert result["token_status"] == 200 and result["userinfo_status"] == 200
    assert result["userinfo"]["preferred_username"] == "alice"
