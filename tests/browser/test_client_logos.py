"""A client's logo as a user sees it in a real browser: drawn on the consent page, which the
Content-Security-Policy keeps from loading anything of another site."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import requests

from ..conftest import add_user
from ..flows.test_client_logos import LOGO
from ..flows.test_client_logos import publish
from .test_pages import authorize_url
from .test_pages import callback_of
from .test_pages import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def live_config() -> dict:
    # The logo is served on loopback, which only an operator's setting lets a client name.
    return {"OUTBOUND_PRIVATE_NETWORKS": "127.0.0.1/32"}


def test_the_consent_page_draws_the_clients_logo(page, live_server, documents):
    add_user(live_server.app)
    created = live_server.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "Photo Album", "--redirect-uri",
        callback_of(live_server), "--logo-uri", publish(documents, LOGO), "--json"])
    assert created.exit_code == 0, created.output
    client = SimpleNamespace(client_id=json.loads(created.output)["client_id"])
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)

    page.goto(authorize_url(live_server, client))
    sign_in(page)
    logo = page.locator("#client-logo")
    assert logo.is_visible()
    # Drawn from the page itself: the browser decoded the 2x2 image, and asked no one for it.
    assert logo.evaluate("image => [image.complete, image.naturalWidth]") == [True, 2]
    assert refused == []
    assert documents.requests == ["/logo.png"]  # the provider's one fetch, at registration


def test_the_device_page_draws_the_clients_logo(page, live_server, documents):
    add_user(live_server.app)
    created = live_server.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "Living-room TV", "--public", "--grant-type",
        "device_code", "--logo-uri", publish(documents, LOGO), "--json"])
    assert created.exit_code == 0, created.output
    codes = requests.post(f"{live_server.url}/device_authorization", timeout=5, data={
        "client_id": json.loads(created.output)["client_id"], "scope": "openid"}).json()
    page.goto(codes["verification_uri_complete"])
    sign_in(page)
    page.get_by_role("button", name="Continue").click()
    assert page.locator("#client-name").inner_text() == "Living-room TV"
    assert page.locator("#client-logo").evaluate(
        "image => [image.complete, image.naturalWidth]") == [True, 2]
