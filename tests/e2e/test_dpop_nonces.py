"""DPoP server nonces (RFC 9449 §8, §9) with DPOP_NONCES on, over real HTTP: a relying-party
library that has not seen a nonce yet is told `use_dpop_nonce`, takes the one offered in
DPoP-Nonce, and signs again, at the token endpoint and at /userinfo."""

from __future__ import annotations

import pytest
import requests
from requests_oauth2client import DPoPKey
from requests_oauth2client import DPoPToken

from .test_dpop import public_app_signed_in


@pytest.fixture
def live_config() -> dict:
    return {"DPOP_NONCES": True}


def test_a_client_library_follows_the_nonces_the_provider_hands_out(provider):
    client_id, client, key, token = public_app_signed_in(provider)
    assert key.as_nonce is not None  # the library was asked for one, and kept it

    answer = requests.get(provider.metadata["userinfo_endpoint"], auth=token, timeout=5)
    assert answer.status_code == 200, answer.headers.get("WWW-Authenticate")
    renewed = client.refresh_token(token)
    assert isinstance(renewed, DPoPToken)

    # A proof without the nonce is refused, and the answer offers it.
    bare = DPoPKey.generate(alg="ES256")
    refused = requests.post(provider.metadata["token_endpoint"], timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": renewed.refresh_token,
        "client_id": client_id},
        headers={"DPoP": str(bare.proof(htm="POST", htu=provider.metadata["token_endpoint"]))})
    assert refused.status_code == 400
    assert refused.json()["error"] == "use_dpop_nonce"
    assert refused.headers["DPoP-Nonce"]
