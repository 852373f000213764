"""response_mode=form_post in real Chromium: the page the provider answers with submits
itself to the client under its own Content-Security-Policy (the script allowed by its hash,
form-action the client's origin), and offers a button when scripts are off."""

from __future__ import annotations

import pytest

from ..conftest import add_client
from ..conftest import add_user
from .conftest import page_server
from .test_pages import authorize_url
from .test_pages import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def relying_party():
    """A client's callback on a loopback origin of its own, which records what is POSTed."""
    posted = []
    with page_server(b"<!doctype html><title>Signed in</title>", posted) as origin:
        yield origin, posted


@pytest.fixture
def client(live_server, relying_party):
    origin, _ = relying_party
    add_user(live_server.app)
    return add_client(live_server.app, name="Intranet", redirect_uris=[origin + "/signin-oidc"])


def test_the_response_is_posted_to_the_client_by_the_browser(page, live_server, relying_party,
                                                             client):
    origin, posted = relying_party
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(authorize_url(live_server, client, redirect_uri=origin + "/signin-oidc",
                            response_mode="form_post", state="st-7"))
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(origin + "/signin-oidc")

    assert page.title() == "Signed in"
    [(path, fields)] = posted
    assert path == "/signin-oidc"
    assert fields["state"] == "st-7" and fields["iss"] == live_server.url
    assert len(fields["code"]) >= 32
    assert violations == []


def test_without_scripts_the_user_continues_with_a_button(chromium, live_server, relying_party,
                                                          client):
    origin, posted = relying_party
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(authorize_url(live_server, client, redirect_uri=origin + "/signin-oidc",
                                response_mode="form_post", state="st-8"))
        sign_in(page)
        page.get_by_role("button", name="Allow").click()
        page.wait_for_load_state()  # the click returns before the next page's title is parsed
        assert page.title().startswith("Returning to the application")
        assert posted == []
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(origin + "/signin-oidc")
        [(_, fields)] = posted
        assert fields["state"] == "st-8" and "code" in fields
    finally:
        context.close()
