"""Over real HTTP: a provider on 127.0.0.1, clients registered through the admin CLI, and
requests made the way a service or a resource server makes them."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from ..conftest import add_user
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent


class Provider:
    """The live provider, seen from outside: its endpoints, and its admin CLI."""

    def __init__(self, live_server):
        self.app = live_server.app
        self.url = live_server.url
        self.metadata = requests.get(f"{self.url}/.well-known/openid-configuration",
                                     timeout=5).json()

    def idp(self, *args: str) -> dict:
        """Run `idp ARGS --json` and return its JSON output."""
        result = self.app.test_cli_runner().invoke(args=[*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def register(self, name: str, *args: str) -> SimpleNamespace:
        data = self.idp("clients", "create", "--name", name, *args)
        return SimpleNamespace(client_id=data["client_id"], secret=data["client_secret"])

    def post(self, endpoint: str, client=None, how="basic", **form) -> requests.Response:
        """POST a form to a metadata endpoint, authenticated as `client` (Basic or in the body)."""
        auth = None
        if client is not None and how == "basic":
            auth = (client.client_id, client.secret)
        elif client is not None:
            form["client_id"] = client.client_id
            if client.secret:
                form["client_secret"] = client.secret
        return requests.post(self.metadata[endpoint], data=form, auth=auth, timeout=5)

    def client_credentials(self, client, how="basic", **form) -> requests.Response:
        return self.post("token_endpoint", client, how, grant_type="client_credentials", **form)

    def introspect(self, client, token: str, **form) -> dict:
        response = self.post("introspection_endpoint", client, token=token, **form)
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        return response.json()

    def revoke(self, client, token: str, **form) -> requests.Response:
        return self.post("revocation_endpoint", client, token=token, **form)

    def refresh(self, client, refresh_token: str, **form) -> requests.Response:
        return self.post("token_endpoint", client, grant_type="refresh_token",
                         refresh_token=refresh_token, **form)

    def userinfo(self, access_token: str) -> requests.Response:
        return requests.get(self.metadata["userinfo_endpoint"], timeout=5,
                            headers={"Authorization": f"Bearer {access_token}"})

    def user_tokens(self, client, scope="openid profile offline_access",
                    expect_consent=True) -> dict:
        """The code flow with PKCE, signing in as alice and consenting, as an RP would run it
        with Authlib's client."""
        rp = OAuth2Session(client.client_id, client.secret, scope=scope, redirect_uri=CALLBACK,
                           code_challenge_method="S256")
        verifier = secrets.token_urlsafe(48)
        url, _ = rp.create_authorization_url(self.metadata["authorization_endpoint"],
                                             code_verifier=verifier,
                                             nonce=secrets.token_urlsafe(8))
        callback = sign_in_and_consent(requests.Session(), self.url, url, expect_consent)
        return rp.fetch_token(self.metadata["token_endpoint"], authorization_response=callback,
                              code_verifier=verifier)


@pytest.fixture
def provider(live_server) -> Provider:
    return Provider(live_server)


@pytest.fixture
def alice(provider):
    return add_user(provider.app)


@pytest.fixture
def service(provider):
    """A backend service allowed two API scopes and one API audience."""
    return provider.register("Orders worker", "--grant-type", "client_credentials",
                             "--scope", "orders:read orders:write",
                             "--audience", "https://api.example.com/orders")


@pytest.fixture
def resource_server(provider):
    """An API that introspects any token presented to it."""
    return provider.register("Orders API", "--grant-type", "client_credentials",
                             "--scope", "", "--introspect-any")


@pytest.fixture
def web_app(provider):
    """A relying party allowed refresh tokens."""
    return provider.register("Web App", "--redirect-uri", CALLBACK,
                             "--grant-type", "authorization_code",
                             "--grant-type", "refresh_token",
                             "--scope", "openid profile email offline_access")
