"""RFC 8707 resource indicators in the code flow: asked for at /authorize, they bind the
audience of every token of that authorization; a token request may narrow it, never widen it."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from idp.models import Client
from idp.models import db

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import basic_auth
from ..helpers import query_of
from .test_authorize import assert_error_redirect

CALLBACK = "https://agent.example/callback"
ORDERS = "https://orders.example.com"
BILLING = "https://billing.example.com"


@pytest.fixture
def flow(http, user, app):
    client = add_client(app, name="Agent", audiences=[ORDERS, BILLING],
                        grant_types=["authorization_code", "refresh_token"],
                        scope="openid profile email offline_access")
    return Browserless(http, client)


def audience(token_response) -> str | list[str]:
    payload = token_response.get_json()["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["aud"]


def refresh(flow, refresh_token, **form):
    return flow.http.post("/token", data={"grant_type": "refresh_token",
                                          "refresh_token": refresh_token, **form},
                          headers=basic_auth(flow.client.client_id, flow.secret))


@pytest.mark.parametrize("resource", ["https://elsewhere.example.com",
                                      [ORDERS, "https://elsewhere.example.com"]])
def test_authorize_refuses_an_unregistered_resource(flow, resource):
    response = flow.code_response(resource=resource, state="s1")
    params = assert_error_redirect(response, flow, "invalid_target", "s1")
    assert params["error_description"]


def test_the_resource_asked_at_authorize_is_the_audience_of_every_token(flow):
    code = flow.code(resource=ORDERS, scope="openid offline_access")
    tokens = flow.exchange(code)  # no resource at /token: the one asked at /authorize
    assert tokens.status_code == 200 and audience(tokens) == ORDERS
    refreshed = refresh(flow, tokens.get_json()["refresh_token"])
    assert refreshed.status_code == 200 and audience(refreshed) == ORDERS
    # asked again, it is the same; another registered one is not granted
    again = refresh(flow, refreshed.get_json()["refresh_token"], resource=ORDERS)
    assert again.status_code == 200 and audience(again) == ORDERS
    wider = refresh(flow, again.get_json()["refresh_token"], resource=BILLING)
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_target"
    # refused before the refresh token is spent: it still works
    assert refresh(flow, again.get_json()["refresh_token"]).status_code == 200


def test_a_code_for_one_resource_cannot_buy_a_token_for_another(flow):
    code = flow.code(resource=ORDERS)
    response = flow.exchange(code, resource=BILLING)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


def test_without_a_resource_at_authorize_the_token_request_chooses(flow):
    tokens = flow.exchange(flow.code(scope="openid offline_access"), resource=BILLING)
    assert audience(tokens) == BILLING
    assert sorted(audience(refresh(flow, tokens.get_json()["refresh_token"]))) == [
        BILLING, ORDERS]  # the family asked for none: every registered audience


def test_the_resource_survives_the_sign_in(flow):
    """The request is parked while the user signs in and consents, then resumed."""
    response = flow.code_response(resource=ORDERS)
    assert "code" in query_of(response.location)
    assert audience(flow.exchange(query_of(response.location)["code"])) == ORDERS


def test_the_consent_page_names_the_resources(flow):
    flow.authorize(resource=[ORDERS, BILLING])
    page = flow.follow(flow.login()).get_data(as_text=True)
    assert (f'Only at <strong class="resource">{ORDERS}</strong>, '
            f'<strong class="resource">{BILLING}</strong>.') in page


def test_several_resources_survive_the_sign_in_and_bind_every_token(flow):
    """RFC 8707 §2: several resources at /authorize; a token request may ask for any of them,
    or for none (all of them), never for another."""
    response = flow.code_response(resource=[ORDERS, BILLING, ORDERS],
                                  scope="openid offline_access")
    code = query_of(response.location)["code"]
    tokens = flow.exchange(code, resource=BILLING)
    assert tokens.status_code == 200 and audience(tokens) == BILLING
    both = refresh(flow, tokens.get_json()["refresh_token"])
    assert both.status_code == 200 and audience(both) == [ORDERS, BILLING]
    one = refresh(flow, both.get_json()["refresh_token"], resource=ORDERS)
    assert one.status_code == 200 and audience(one) == ORDERS


def test_a_resource_removed_from_the_client_is_no_longer_granted(flow, app):
    tokens = flow.exchange(flow.code(resource=ORDERS, scope="openid offline_access"))
    with app.app_context():  # `idp clients update --audience` on another day
        client = Client.by_client_id(flow.client.client_id)
        client.audiences = [BILLING]
        db.session.commit()
    refused = refresh(flow, tokens.get_json()["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target"


MCP_SERVER = "https://mcp.example.com/mcp"


@pytest.fixture
def mcp_provider(tmp_path, signing_keys_dir):
    """Open registration, with one MCP server opened to every self-registered client."""
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open",
                    SELF_REGISTERED_RESOURCES=f"{MCP_SERVER} {ORDERS}",
                    SELF_REGISTERED_SCOPES="mcp:tools mcp:resources")


def test_a_self_registered_client_asks_for_a_resource_the_operator_opened(mcp_provider):
    """MCP clients must send their server as `resource` (RFC 8707), at /authorize and /token,
    and register themselves: the operator names the servers they may ask for."""
    add_user(mcp_provider)
    http = mcp_provider.test_client()
    registered = http.post("/register", json={"redirect_uris": [CALLBACK],
                                              "token_endpoint_auth_method": "none"}).get_json()
    flow = Browserless(http, SimpleNamespace(client_id=registered["client_id"], secret=None,
                                             redirect_uris=[CALLBACK]))
    tokens = flow.exchange(flow.code(resource=MCP_SERVER, scope="openid mcp:tools admin"),
                           resource=MCP_SERVER)
    assert tokens.status_code == 200, tokens.get_json()
    assert audience(tokens) == MCP_SERVER
    # The MCP server's scope is granted; one nobody opened is not.
    assert tokens.get_json()["scope"] == "openid mcp:tools"
    # Without a resource, a token for the client itself, as before.
    assert audience(flow.exchange(flow.code())) == registered["client_id"]
    response = flow.code_response(resource="https://elsewhere.example.com", state="s1")
    assert_error_redirect(response, flow, "invalid_target", "s1")


def test_a_client_the_operator_registered_keeps_to_its_own_audiences_and_scopes(
        mcp_provider):
    add_user(mcp_provider)
    client = add_client(mcp_provider, audiences=[BILLING])
    flow = Browserless(mcp_provider.test_client(), client)
    assert_error_redirect(flow.code_response(resource=MCP_SERVER, state="s2"), flow,
                          "invalid_target", "s2")
    tokens = flow.exchange(flow.code(resource=BILLING, scope="openid mcp:tools"))
    assert audience(tokens) == BILLING and tokens.get_json()["scope"] == "openid"
