"""Over real HTTP: an MCP-style client with no registration at all, known to the provider
only by the URL of its metadata document, signs a user in with a standard client library and
gets an access token for the MCP server it names."""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from ..conftest import add_user
from ..helpers import query_of
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent

MCP_SERVER = "https://mcp.example.com/mcp"


@pytest.fixture
def live_config() -> dict:
    # The document server is on loopback, which only an operator's setting lets a client name.
    return {"CLIENT_METADATA_DOCUMENTS": True, "OUTBOUND_PRIVATE_NETWORKS": "127.0.0.1/32",
            "SELF_REGISTERED_RESOURCES": MCP_SERVER}


def test_a_client_library_signs_in_with_a_client_id_metadata_document(live_server, documents):
    user = add_user(live_server.app)
    metadata = requests.get(f"{live_server.url}/.well-known/oauth-authorization-server",
                            timeout=5).json()
    assert metadata["client_id_metadata_document_supported"] is True
    client_id = documents.publish(
        client_name="Agent", redirect_uris=[CALLBACK], client_uri="https://agent.example",
        logo_uri="https://agent.example/logo.png", scope="openid profile",
        grant_types=["authorization_code"], response_types=["code"])

    rp = OAuth2Session(client_id, None, scope="openid profile", redirect_uri=CALLBACK,
                       code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    # As MCP clients do: the MCP server is named as `resource` (RFC 8707) at both steps.
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"],
                                             code_verifier=verifier, nonce=nonce,
                                             resource=MCP_SERVER)
    callback = sign_in_and_consent(requests.Session(), live_server.url, url)
    assert query_of(callback)["state"] == state
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier, resource=MCP_SERVER)

    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(decoded.claims, decoded.header, options={
        "iss": {"values": [metadata["issuer"]]}, "aud": {"values": [client_id]}},
        params={"nonce": nonce, "access_token": token["access_token"], "client_id": client_id})
    claims.validate(leeway=5)
    assert claims["sub"] == user.subject
    access = jwt.decode(token["access_token"], jwks, algorithms=["RS256"]).claims
    assert access["aud"] == MCP_SERVER and access["client_id"] == client_id
    assert documents.requests == ["/client.json"]
