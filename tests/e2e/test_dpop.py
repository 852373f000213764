"""DPoP (RFC 9449) over real HTTP with requests-oauth2client, a relying-party library that
makes its own proofs: configured from discovery alone, a service and a public app get
DPoP-bound tokens, use them at /userinfo with proofs naming each token, and refresh them."""

from __future__ import annotations

import pytest
import requests
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from requests_oauth2client import DPoPKey
from requests_oauth2client import DPoPToken
from requests_oauth2client import OAuth2Client
from requests_oauth2client.exceptions import EndpointError

from ..conftest import add_client
from ..conftest import add_user
from .test_device_flow import approve
from .test_device_flow import ask
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent


def rp(provider, **auth) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        f"{provider.url}/.well-known/openid-configuration", issuer=provider.url,
        redirect_uri=CALLBACK, testing=True, **auth)


def test_a_service_gets_a_token_bound_to_its_key(provider, resource_server):
    service = provider.register("Ledger worker", "--grant-type", "client_credentials",
                                "--scope", "ledger:read", "--require-dpop")
    client = rp(provider, client_id=service.client_id, client_secret=service.secret)
    assert "ES256" in provider.metadata["dpop_signing_alg_values_supported"]
    key = DPoPKey.generate(alg="ES256")
    token = client.client_credentials(scope="ledger:read", dpop=True, dpop_key=key)
    assert isinstance(token, DPoPToken)
    introspected = provider.introspect(resource_server, token.access_token)
    assert introspected["active"] is True
    assert introspected["token_type"] == "DPoP"
    assert introspected["cnf"] == {"jkt": key.dpop_jkt}
    # Registered --require-dpop: without a proof, no token.
    refused = provider.client_credentials(service)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"


def sign_in(provider, authorization_request, expect_consent=True) -> str:
    return sign_in_and_consent(requests.Session(), provider.url,
                               str(authorization_request.uri), expect_consent)


def exchange(provider, client: OAuth2Client, request, callback: str) -> DPoPToken:
    """The code exchange, with the ID token checked by Authlib: requests-oauth2client 1.8
    rebuilds a DPoPToken without its key when it validates the ID token itself."""
    token = client.authorization_code(request.validate_callback(callback), validate=False)
    assert isinstance(token, DPoPToken)
    jwks = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(str(token.id_token), jwks, algorithms=["RS256"])
    CodeIDToken(decoded.claims, decoded.header,
                options={"iss": {"values": [provider.url]},
                         "aud": {"values": [client.client_id]}},
                params={"nonce": request.nonce, "access_token": token.access_token,
                        "client_id": client.client_id}).validate(leeway=5)
    return token


def public_app_signed_in(provider) -> tuple[str, OAuth2Client, DPoPKey, DPoPToken]:
    """A public browser app with refresh tokens, its code bound to its DPoP key from
    /authorize on: its client_id, the library's client, the key and the tokens."""
    add_user(provider.app)
    app = provider.register("Notes SPA", "--public", "--redirect-uri", CALLBACK,
                            "--grant-type", "authorization_code", "--grant-type",
                            "refresh_token", "--scope", "openid profile offline_access")
    client = rp(provider, auth=app.client_id)
    key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="openid profile offline_access",
                                           dpop_key=key)
    assert request.args["dpop_jkt"] == key.dpop_jkt  # the code is bound from the start
    return app.client_id, client, key, exchange(provider, client, request,
                                                sign_in(provider, request))


def test_a_public_app_binds_its_code_tokens_and_refresh_token_to_one_key(provider):
    client_id, client, _, token = public_app_signed_in(provider)

    userinfo = provider.metadata["userinfo_endpoint"]
    answer = requests.get(userinfo, auth=token, timeout=5)  # Authorization: DPoP, and a proof
    assert answer.status_code == 200, answer.text
    assert answer.json()["preferred_username"] == "alice"
    stolen = provider.userinfo(token.access_token)  # the token alone, as a Bearer token
    assert stolen.status_code == 401
    assert stolen.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')

    renewed = client.refresh_token(token)  # proofed with the token's key by the library
    assert isinstance(renewed, DPoPToken)
    assert requests.get(userinfo, auth=renewed, timeout=5).status_code == 200
    # The refresh token alone, without a proof by its key, is worth nothing.
    taken = provider.post("token_endpoint", grant_type="refresh_token",
                          refresh_token=renewed.refresh_token, client_id=client_id)
    assert taken.status_code == 400
    assert taken.json()["error"] == "invalid_dpop_proof"


def test_a_pushed_request_carries_the_key_binding(provider):
    add_user(provider.app)
    app = add_client(provider.app, name="Bank app", public=True, redirect_uris=[CALLBACK],
                     scope="openid profile")
    client = rp(provider, auth=app.client_id)
    key = DPoPKey.generate(alg="ES256")

    request = client.authorization_request(scope="openid profile", dpop_key=key)
    callback = sign_in(provider, client.pushed_authorization_request(request))
    with pytest.raises(EndpointError) as refused:  # exchanged with another key
        client.authorization_code(request.validate_callback(callback).code, dpop=True,
                                  dpop_key=DPoPKey.generate(alg="ES256"),
                                  redirect_uri=CALLBACK, code_verifier=request.code_verifier)
    assert refused.value.error == "invalid_dpop_proof"

    request = client.authorization_request(scope="openid profile", dpop_key=key)
    callback = sign_in(provider, client.pushed_authorization_request(request),
                       expect_consent=False)
    token = exchange(provider, client, request, callback)
    assert requests.get(provider.metadata["userinfo_endpoint"], auth=token,
                        timeout=5).status_code == 200


def test_a_device_binds_its_tokens_to_its_key(provider, alice):
    """The Device Authorization Grant with DPoP: the device proves its key when it polls."""
    tv_app = provider.register("Living-room TV", "--public", "--grant-type", "device_code",
                               "--grant-type", "refresh_token", "--scope",
                               "openid profile offline_access").client_id
    client = rp(provider, auth=tv_app)
    codes = ask(provider, tv_app, scope="openid profile offline_access").json()
    approve(provider, codes)
    token = client.device_code(codes["device_code"], dpop=True,
                               dpop_key=DPoPKey.generate(alg="ES256"))
    assert isinstance(token, DPoPToken)
    assert requests.get(provider.metadata["userinfo_endpoint"], auth=token,
                        timeout=5).json()["sub"] == alice.subject
    taken = provider.post("token_endpoint", grant_type="refresh_token",
                          refresh_token=token.refresh_token, client_id=tv_app)
    assert taken.status_code == 400 and taken.json()["error"] == "invalid_dpop_proof"
    assert isinstance(client.refresh_token(token), DPoPToken)
