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


def code_redemption(page, live_server) -> dict:
    """The user signs in and allows the browser app; the form that redeems the code."""
    add_user(live_server.app)
    app = add_client(live_server.app, name="Photo Album SPA", public=True,
                     redirect_uris=[callback_of(live_server)])
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, app, code_challenge=challenge))
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(live_server) + "?*")
    return {"grant_type": "authorization_code", "code": query_of(page.url)["code"],
            "client_id": app.client_id, "redirect_uri": callback_of(live_server),
            "code_verifier": verifier}


def test_a_browser_app_on_another_origin_redeems_its_code_and_reads_userinfo(
        page, live_server, app_origin):
    form = code_redemption(page, live_server)
    page.goto(app_origin + "/")
    result = page.evaluate(REDEEM_AND_READ, [live_server.url, form])

    assert result["token_status"] == 200 and result["userinfo_status"] == 200
    assert result["userinfo"]["preferred_username"] == "alice"


# The same app keeping a DPoP key (RFC 9449) in the browser, as WebCrypto makes one: the
# private key cannot be exported, so a token stolen from the page's storage is worth nothing
# elsewhere. The DPoP header makes each call a preflighted one.
DPOP_REDEEM_AND_READ = """async ([provider, form]) => {
    const text = (s) => new TextEncoder().encode(s);
    const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
        .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    const key = await crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false,
                                                ["sign", "verify"]);
    const {kty, crv, x, y} = await crypto.subtle.exportKey("jwk", key.publicKey);
    const proof = async (htm, htu, accessToken) => {
        const claims = {jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000)};
        if (accessToken) {
            claims.ath = b64url(await crypto.subtle.digest("SHA-256", text(accessToken)));
        }
        const input = b64url(text(JSON.stringify({typ: "dpop+jwt", alg: "ES256",
                                                  jwk: {kty, crv, x, y}})))
            + "." + b64url(text(JSON.stringify(claims)));
        const signature = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"},
                                                   key.privateKey, text(input));
        return input + "." + b64url(signature);
    };
    const token = await fetch(provider + "/token", {method: "POST",
        body: new URLSearchParams(form),
        headers: {DPoP: await proof("POST", provider + "/token")}});
    const tokens = await token.json();
    const userinfo = await fetch(provider + "/userinfo", {headers: {
        Authorization: "DPoP " + tokens.access_token,
        DPoP: await proof("GET", provider + "/userinfo", tokens.access_token)}});
    const asBearer = await fetch(provider + "/userinfo", {headers: {
        Authorization: "Bearer " + tokens.access_token}});
    return {token_status: token.status, token_type: tokens.token_type,
            userinfo_status: userinfo.status, userinfo: await userinfo.json(),
            bearer_status: asBearer.status,
            bearer_challenge: asBearer.headers.get("WWW-Authenticate")};
}"""


def test_a_browser_app_binds_its_tokens_to_a_webcrypto_key(page, live_server, app_origin):
    form = code_redemption(page, live_server)
    page.goto(app_origin + "/")
    result = page.evaluate(DPOP_REDEEM_AND_READ, [live_server.url, form])

    assert result["token_status"] == 200 and result["token_type"] == "DPoP"
    assert result["userinfo_status"] == 200
    assert result["userinfo"]["preferred_username"] == "alice"
    # The token alone, as a Bearer token, is refused, and the app can read why.
    assert result["bearer_status"] == 401
    assert result["bearer_challenge"].startswith('DPoP error="invalid_token"')
