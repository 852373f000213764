"""A client known only by its metadata document's URL, as a user meets it in a real browser:
the consent page names where it describes itself, and that its answer goes to another site."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from ..conftest import add_user
from ..helpers import query_of
from .test_pages import authorize_url
from .test_pages import callback_of
from .test_pages import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def live_config() -> dict:
    # The document server is on loopback, which only an operator's setting lets a client name.
    return {"CLIENT_METADATA_DOCUMENTS": True, "OUTBOUND_PRIVATE_NETWORKS": "127.0.0.1/32"}


@pytest.fixture
def client_test_resolves_to_loopback(monkeypatch):
    """client.test, a name the document server's certificate holds, resolves to 127.0.0.1."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real("127.0.0.1" if host == "client.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_consent_page_names_the_documents_host(page, live_server, documents,
                                                   client_test_resolves_to_loopback):
    add_user(live_server.app)
    client_id = documents.publish(host="client.test", client_name="Agent",
                                  redirect_uris=[callback_of(live_server)])
    page.goto(authorize_url(live_server, SimpleNamespace(client_id=client_id), state="st-9"))
    sign_in(page)
    assert page.locator("#client-name").inner_text() == "Agent"
    assert page.locator("#self-registered").is_visible()
    assert page.locator("#document-host").inner_text() == f"client.test:{documents.port}"
    assert page.locator("#redirect-host").inner_text() == live_server.url.split("//")[1]
    assert page.locator("#hosts-differ").inner_text() == "another site"
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(callback_of(live_server) + "?*")
    assert query_of(page.url)["state"] == "st-9" and query_of(page.url)["code"]
