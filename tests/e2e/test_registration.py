"""Dynamic client registration (RFC 7591) over real HTTP, as an MCP client or another tool that
meets the provider for the first time does it: discovery, /register, then the code flow with
Authlib's client and the credentials it was given."""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from ..conftest import add_user
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent


@pytest.fixture
def live_config() -> dict:
    return {"CLIENT_REGISTRATION": "open"}


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "none"])
def test_a_client_registers_itself_then_signs_a_user_in(live_server, auth_method):
    user = add_user(live_server.app)
    metadata = requests.get(f"{live_server.url}/.well-known/openid-configuration",
                            timeout=5).json()
    registered = requests.post(metadata["registration_endpoint"], timeout=5, json={
        "client_name": "Assistant", "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": auth_method,
        "grant_types": ["authorization_code", "refresh_token"]})
    assert registered.status_code == 201, registered.text
    client = registered.json()

    rp = OAuth2Session(client["client_id"], client.get("client_secret"),
                       scope="openid profile offline_access", redirect_uri=CALLBACK,
                       code_challenge_method="S256", token_endpoint_auth_method=auth_method)
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"],
                                         code_verifier=verifier, nonce="n-1")
    callback = sign_in_and_consent(requests.Session(), live_server.url, url)
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier)

    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], jwks, algorithms=["RS256"]).claims
    assert id_token["aud"] == client["client_id"] and id_token["sub"] == user.subject
    refreshed = rp.refresh_token(metadata["token_endpoint"],
                                 refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]


def test_a_client_manages_its_own_registration(live_server):
    """RFC 7592 over HTTP: read, update and delete through the URI and token registration
    answered with, each answer bringing the next token."""
    metadata = requests.get(f"{live_server.url}/.well-known/openid-configuration",
                            timeout=5).json()
    client = requests.post(metadata["registration_endpoint"], timeout=5, json={
        "client_name": "Assistant", "redirect_uris": [CALLBACK]}).json()
    uri, token = client["registration_client_uri"], client["registration_access_token"]
    assert uri == f"{live_server.url}/register/{client['client_id']}"

    read = requests.get(uri, timeout=5, headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200 and read.json()["client_name"] == "Assistant"
    token = read.json()["registration_access_token"]
    updated = requests.put(uri, timeout=5, headers={"Authorization": f"Bearer {token}"}, json={
        "client_id": client["client_id"], "client_name": "Assistant 2",
        "redirect_uris": [CALLBACK, "http://127.0.0.1/cb"]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["redirect_uris"] == [CALLBACK, "http://127.0.0.1/cb"]
    token = updated.json()["registration_access_token"]
    deleted = requests.delete(uri, timeout=5, headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    gone = requests.get(uri, timeout=5, headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_token"
