"""Introspection (RFC 7662) and revocation (RFC 7009) over real HTTP, and `idp tokens revoke`."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from idp.models import Client
from idp.models import RevokedAccessToken
from idp.models import db
from idp.models import utcnow

from ..conftest import add_user
from .test_oidc_client import CALLBACK

INACTIVE = {"active": False}


def cc_token(provider, client, **form) -> str:
    response = provider.client_credentials(client, **form)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# --- introspection --------------------------------------------------------------------------

def test_introspection_requires_client_authentication(provider, service):
    token = cc_token(provider, service)
    for auth in (None, (service.client_id, "wrong")):
        response = requests.post(provider.metadata["introspection_endpoint"], timeout=5,
                                 data={"token": token}, auth=auth)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["Cache-Control"] == "no-store"


def test_public_client_cannot_introspect(provider, alice):
    spa = provider.register("SPA", "--public", "--redirect-uri", CALLBACK)
    response = provider.post("introspection_endpoint", spa, how="post", token="x")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_own_access_token_is_active_with_its_claims(provider, service):
    token = cc_token(provider, service, scope="orders:read")
    for how in ("basic", "post"):
        result = provider.post("introspection_endpoint", service, how=how, token=token).json()
        assert result["active"] is True
        assert result["token_type"] == "Bearer"
        assert result["scope"] == "orders:read"
        assert result["client_id"] == result["sub"] == service.client_id
        assert result["aud"] == "https://api.example.com/orders"
        assert result["iss"] == provider.metadata["issuer"]
        assert result["exp"] - result["iat"] == 600 and result["jti"]


def test_hints_are_optional_and_a_wrong_hint_changes_nothing(provider, service):
    """RFC 7662 §2.1 and RFC 7009 §2.1: the token's kind is detected; the hint is ignored."""
    token = cc_token(provider, service)
    for hint in ("refresh_token", "id_token", "é"):
        assert provider.introspect(service, token, token_type_hint=hint)["active"]
    missing = provider.post("introspection_endpoint", service)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_foreign_token_is_inactive_unless_the_caller_is_a_resource_server(
        provider, service, resource_server):
    token = cc_token(provider, service)
    nosy = provider.register("Nosy", "--grant-type", "client_credentials", "--scope", "x")
    assert provider.introspect(nosy, token) == INACTIVE
    assert provider.introspect(resource_server, token)["active"] is True


def test_refresh_token_introspection(provider, alice, web_app, resource_server):
    tokens = provider.user_tokens(web_app)
    result = provider.introspect(web_app, tokens["refresh_token"])
    assert result["active"] is True and result["token_type"] == "refresh_token"
    assert result["sub"] == alice.subject and result["client_id"] == web_app.client_id
    assert result["scope"] == "openid profile offline_access"
    assert result["exp"] > time.time() and result["iss"] == provider.metadata["issuer"]
    user_token = provider.introspect(resource_server, tokens["access_token"])
    assert user_token["active"] is True and user_token["sub"] == alice.subject
    # a spent refresh token is no longer active
    provider.refresh(web_app, tokens["refresh_token"])
    assert provider.introspect(web_app, tokens["refresh_token"]) == INACTIVE


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "x" * 10000, "ey.ey.ey", "\u00e9\u20ac"])
def test_malformed_tokens_are_inactive(provider, service, junk):
    assert provider.introspect(service, junk) == INACTIVE


def test_expired_and_foreign_issuer_tokens_are_inactive(provider, service):
    keys = provider.app.extensions["idp.keys"]
    now = int(time.time())
    base = {"iss": provider.metadata["issuer"], "sub": service.client_id, "aud": "x",
            "client_id": service.client_id, "scope": "", "jti": "j1", "iat": now - 700}
    with provider.app.app_context():
        expired = keys.sign({**base, "exp": now - 100}, typ="at+jwt")
        foreign = keys.sign({**base, "iss": "https://evil.example", "exp": now + 100},
                            typ="at+jwt")
        id_token_like = keys.sign({**base, "exp": now + 100}, typ="JWT")
    for token in (expired, foreign, id_token_like):
        assert provider.introspect(service, token) == INACTIVE


# --- revocation -----------------------------------------------------------------------------

def test_revoked_access_token_is_inactive_and_denied_until_expiry(provider, service):
    token = cc_token(provider, service)
    other = cc_token(provider, service)
    response = provider.revoke(service, token, token_type_hint="access_token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert provider.introspect(service, token) == INACTIVE
    assert provider.introspect(service, other)["active"] is True  # only that one
    with provider.app.app_context():
        entry = db.session.execute(db.select(RevokedAccessToken)).scalar_one()
        assert timedelta(seconds=500) < entry.expires_at - utcnow() <= timedelta(seconds=600)
    # revoking it again, or revoking nonsense, is still 200
    assert provider.revoke(service, token).status_code == 200
    assert provider.revoke(service, "no-such-token").status_code == 200


def test_deny_list_drops_entries_of_expired_tokens(provider, service):
    with provider.app.app_context():
        db.session.add(RevokedAccessToken(jti="old", expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    provider.revoke(service, cc_token(provider, service))
    with provider.app.app_context():
        assert db.session.get(RevokedAccessToken, "old") is None


def test_revocation_requires_client_authentication(provider, service):
    token = cc_token(provider, service)
    response = requests.post(provider.metadata["revocation_endpoint"], data={"token": token},
                             timeout=5)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert provider.introspect(service, token)["active"] is True


def test_a_client_cannot_revoke_another_clients_token(provider, service):
    token = cc_token(provider, service)
    other = provider.register("Other", "--grant-type", "client_credentials", "--scope", "x")
    response = provider.revoke(other, token)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert provider.introspect(service, token)["active"] is True


def test_revoked_user_access_token_is_refused_by_userinfo(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    assert provider.userinfo(tokens["access_token"]).status_code == 200
    assert provider.revoke(web_app, tokens["access_token"]).status_code == 200
    assert provider.userinfo(tokens["access_token"]).status_code == 401
    # the refresh token of the same grant is not touched by revoking an access token
    assert provider.refresh(web_app, tokens["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_revokes_its_family(provider, alice, web_app):
    first = provider.user_tokens(web_app)
    second = provider.refresh(web_app, first["refresh_token"]).json()
    assert provider.revoke(web_app, second["refresh_token"],
                           token_type_hint="refresh_token").status_code == 200
    assert provider.refresh(web_app, second["refresh_token"]).status_code == 400
    for access_token in (first["access_token"], second["access_token"]):
        assert provider.introspect(web_app, access_token) == INACTIVE
        assert provider.userinfo(access_token).status_code == 401


def test_public_client_revokes_its_own_refresh_token(provider, alice):
    spa = provider.register("SPA", "--public", "--redirect-uri", CALLBACK, "--grant-type",
                            "authorization_code", "--grant-type", "refresh_token",
                            "--scope", "openid offline_access")
    tokens = provider.user_tokens(spa, scope="openid offline_access")
    response = provider.post("revocation_endpoint", spa, how="post",
                             token=tokens["refresh_token"])
    assert response.status_code == 200
    refreshed = provider.post("token_endpoint", spa, how="post", grant_type="refresh_token",
                              refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400


# --- idp tokens revoke ----------------------------------------------------------------------

def test_cli_revokes_everything_of_a_user(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    other_app = provider.register("Second", "--redirect-uri", CALLBACK, "--grant-type",
                                  "authorization_code", "--grant-type", "refresh_token",
                                  "--scope", "openid offline_access")
    more = provider.user_tokens(other_app, scope="openid offline_access")
    result = provider.idp("tokens", "revoke", "--user", "alice")
    assert result["token_families_revoked"] == 2
    for client, issued in ((web_app, tokens), (other_app, more)):
        assert provider.refresh(client, issued["refresh_token"]).status_code == 400
        assert provider.introspect(client, issued["access_token"]) == INACTIVE
        assert provider.userinfo(issued["access_token"]).status_code == 401


def test_cli_revokes_everything_of_a_client(provider, service, resource_server):
    before = cc_token(provider, service)
    provider.idp("tokens", "revoke", "--client", service.client_id)
    assert provider.introspect(resource_server, before) == INACTIVE
    # Revocation has second resolution, like `iat`: from the next second on, the client's new
    # tokens are good again.
    with provider.app.app_context():
        revoked_at = Client.by_client_id(service.client_id).tokens_revoked_at
    time.sleep(max(0.0, 1.05 - revoked_at.microsecond / 1e6))
    assert provider.introspect(resource_server, cc_token(provider, service))["active"] is True
    assert provider.introspect(resource_server, before) == INACTIVE


def test_tokens_of_a_deleted_client_are_inactive(provider, service, resource_server):
    token = cc_token(provider, service)
    assert provider.introspect(resource_server, token)["active"] is True
    provider.idp("clients", "delete", service.client_id, "--yes")
    assert provider.introspect(resource_server, token) == INACTIVE


def test_cli_revoke_needs_exactly_one_target(provider, alice, service):
    runner = provider.app.test_cli_runner()
    for args in ([], ["--user", "alice", "--client", service.client_id]):
        result = runner.invoke(args=["tokens", "revoke", *args])
        assert result.exit_code != 0 and "exactly one" in result.output
    unknown = runner.invoke(args=["tokens", "revoke", "--user", "nobody"])
    assert unknown.exit_code != 0 and "no user named" in unknown.output


def test_a_deleted_user_leaves_nothing_that_works(provider, alice, web_app, resource_server):
    """`idp users delete`: every token of theirs stops, at every endpoint, and the name may be
    given to someone new, who is not them to any relying party."""
    tokens = provider.user_tokens(web_app)
    deleted = provider.idp("users", "delete", "alice", "--yes")
    assert deleted["deleted"] is True and deleted["token_families_revoked"] == 1
    assert provider.introspect(resource_server, tokens["access_token"]) == {"active": False}
    assert provider.userinfo(tokens["access_token"]).status_code == 401
    refused = provider.refresh(web_app, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    with provider.app.app_context():
        for table in db.metadata.sorted_tables:
            if "user_id" in table.c:
                assert db.session.execute(
                    sa.select(sa.func.count()).select_from(table)
                    .where(table.c.user_id == alice.id)).scalar() == 0, table.name
    newcomer = add_user(provider.app)  # the same username, another person
    assert newcomer.subject != alice.subject
    assert provider.app.test_cli_runner().invoke(
        args=["users", "delete", "nobody", "--yes"]).exit_code != 0
