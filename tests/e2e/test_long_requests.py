"""An authorization request as long as a URL gets, through the provider as deployed (gunicorn
with config/gunicorn.py): it reaches the provider, and waits in the database while the user
signs in, as it would not fit in the session cookie."""

from __future__ import annotations

import secrets

import requests

from ..helpers import pkce_pair
from .test_key_rotation import deployment  # noqa: F401 (a fixture)

CALLBACK = "https://rp.example.com/callback"


def authorize(url: str, client_id: str, state: str) -> requests.Response:
    _, challenge = pkce_pair()
    return requests.get(f"{url}/authorize", allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
        "scope": "openid", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"})


def test_an_authorization_url_past_4_kb_waits_in_the_database(deployment):  # noqa: F811
    deployed = deployment()
    client = deployed.idp_json("clients", "create", "--name", "Web app",
                               "--redirect-uri", CALLBACK)
    response = authorize(deployed.url, client["client_id"], secrets.token_urlsafe(5000))
    assert len(response.request.url) > 6000
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert len(response.headers["Set-Cookie"]) < 1000
    # Past gunicorn's largest request line, gunicorn answers itself; /par takes any size.
    too_long = authorize(deployed.url, client["client_id"], secrets.token_urlsafe(6500))
    assert too_long.status_code == 414
