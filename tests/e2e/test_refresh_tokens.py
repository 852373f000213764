"""Refresh tokens over real HTTP: issued only with offline_access, rotated on every use, a
replay revokes the whole family (RFC 9700 §4.14.2), idle and absolute lifetimes, and refused
once the user is disabled or the consent is withdrawn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.models import Consent
from idp.models import RefreshToken
from idp.models import TokenFamily
from idp.models import User
from idp.models import db
from idp.models import utcnow
from idp.security.hashing import hash_secret

from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_oidc_client import CALLBACK


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_description"]  # RFC 6749 §5.2: what the client did wrong
    assert response.headers["Cache-Control"] == "no-store"


def test_refresh_rotates_and_the_new_tokens_work(provider, alice, web_app):
    first = provider.user_tokens(web_app)
    assert first["refresh_token"] and first["scope"] == "openid profile offline_access"
    response = provider.refresh(web_app, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["token_type"] == "Bearer" and second["expires_in"] == 600
    assert response.headers["Cache-Control"] == "no-store"
    assert provider.userinfo(second["access_token"]).json()["sub"] == alice.subject
    third = provider.refresh(web_app, second["refresh_token"])
    assert third.status_code == 200


def test_refresh_token_is_stored_hashed(provider, alice, web_app):
    token = provider.user_tokens(web_app)["refresh_token"]
    assert len(token) >= 43
    with provider.app.app_context():
        row = db.session.execute(db.select(RefreshToken)).scalar_one()
        assert row.token_hash == hash_secret(token) and token not in row.token_hash


def id_token_claims(provider, client, tokens: dict) -> dict:
    """The ID token of `tokens`, verified with the JWKS alone as a relying party does."""
    jwks = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(decoded.claims, decoded.header,
                         options={"iss": {"values": [provider.metadata["issuer"]]},
                                  "aud": {"values": [client.client_id]}},
                         params={"access_token": tokens["access_token"],
                                 "client_id": client.client_id})
    claims.validate(leeway=5)  # signature, iss, aud, azp, exp, iat, at_hash
    return dict(claims)


def test_a_refresh_renews_the_id_token_as_oidc_core_12_2_says(provider, alice, web_app):
    first = provider.user_tokens(web_app)
    original = id_token_claims(provider, web_app, first)
    refreshed = provider.refresh(web_app, first["refresh_token"]).json()
    renewed = id_token_claims(provider, web_app, refreshed)
    for name in ("iss", "sub", "aud", "azp", "auth_time", "amr", "sid", "name"):
        assert renewed.get(name) == original.get(name), name
    assert renewed["sub"] == alice.subject and "auth_time" in renewed and renewed["sid"]
    assert renewed["iat"] >= original["iat"]
    assert "nonce" in original and "nonce" not in renewed  # a refresh is no authentication
    assert renewed["at_hash"] != original["at_hash"]  # bound to the new access token


def test_a_refresh_without_openid_in_its_scope_renews_no_id_token(provider, alice, web_app):
    first = provider.user_tokens(web_app)
    narrowed = provider.refresh(web_app, first["refresh_token"], scope="profile offline_access")
    assert narrowed.status_code == 200, narrowed.text
    assert "id_token" not in narrowed.json()


def test_reuse_of_a_spent_refresh_token_revokes_the_family(provider, alice, web_app):
    first = provider.user_tokens(web_app)
    second = provider.refresh(web_app, first["refresh_token"]).json()

    assert_invalid_grant(provider.refresh(web_app, first["refresh_token"]))  # the replay
    # ...takes everything descended from the same grant with it:
    assert_invalid_grant(provider.refresh(web_app, second["refresh_token"]))
    assert provider.introspect(web_app, second["access_token"]) == {"active": False}
    assert provider.introspect(web_app, first["access_token"]) == {"active": False}
    assert provider.userinfo(second["access_token"]).status_code == 401
    with provider.app.app_context():
        family = db.session.execute(db.select(TokenFamily)).scalar_one()
        assert family.revoked_reason == "refresh_token_reuse"


def test_reuse_does_not_touch_other_grants_of_the_same_user(provider, alice, web_app):
    stolen = provider.user_tokens(web_app)
    other = provider.user_tokens(web_app, expect_consent=False)
    provider.refresh(web_app, stolen["refresh_token"])
    assert_invalid_grant(provider.refresh(web_app, stolen["refresh_token"]))
    assert provider.refresh(web_app, other["refresh_token"]).status_code == 200


def test_no_refresh_token_without_offline_access_or_the_grant(provider, alice, web_app):
    assert "refresh_token" not in provider.user_tokens(web_app, scope="openid profile")
    plain = provider.register("No refresh", "--redirect-uri", CALLBACK,
                              "--scope", "openid profile offline_access")
    tokens = provider.user_tokens(plain)
    assert "refresh_token" not in tokens


def test_refresh_may_narrow_the_scope_but_not_widen_it(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    narrow = provider.refresh(web_app, tokens["refresh_token"], scope="openid")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "openid"
    # The successor keeps the whole grant: the next refresh may ask for all of it again.
    again = provider.refresh(web_app, narrow.json()["refresh_token"])
    assert again.json()["scope"] == "openid profile offline_access"
    wider = provider.refresh(web_app, again.json()["refresh_token"], scope="openid email")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # A refused request spends nothing.
    assert provider.refresh(web_app, again.json()["refresh_token"]).status_code == 200


def test_refresh_token_is_bound_to_its_client(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    other = provider.register("Other", "--redirect-uri", CALLBACK, "--grant-type",
                              "authorization_code", "--grant-type", "refresh_token",
                              "--scope", "openid offline_access")
    assert_invalid_grant(provider.refresh(other, tokens["refresh_token"]))
    assert provider.refresh(web_app, tokens["refresh_token"]).status_code == 200


def test_disabled_user_cannot_refresh(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    with provider.app.app_context():  # disabled behind the CLI's back: checked at refresh too
        db.session.execute(db.update(User).values(disabled=True))
        db.session.commit()
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))
    assert provider.introspect(web_app, tokens["access_token"]) == {"active": False}


def test_disabling_a_user_through_the_cli_revokes_their_grants(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    result = provider.idp("users", "disable", "alice")
    assert result["token_families_revoked"] == 1
    provider.idp("users", "enable", "alice")
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))


def test_withdrawn_consent_stops_refresh(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    with provider.app.app_context():
        db.session.execute(db.delete(Consent))
        db.session.commit()
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))


def test_idle_lifetime(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    with provider.app.app_context():
        row = db.session.execute(db.select(RefreshToken)).scalar_one()
        idle = provider.app.config["REFRESH_TOKEN_IDLE_SECONDS"]
        assert abs((row.expires_at - row.issued_at) - timedelta(seconds=idle)) < timedelta(
            seconds=5)
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))


def test_absolute_lifetime_caps_every_successor(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    with provider.app.app_context():
        family = db.session.execute(db.select(TokenFamily)).scalar_one()
        family.expires_at = utcnow() + timedelta(seconds=30)
        db.session.commit()
    rotated = provider.refresh(web_app, tokens["refresh_token"]).json()
    with provider.app.app_context():
        successor = db.session.execute(
            db.select(RefreshToken).filter_by(token_hash=hash_secret(rotated["refresh_token"]))
        ).scalar_one()
        assert successor.expires_at <= successor.family.expires_at
        successor.family.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert_invalid_grant(provider.refresh(web_app, rotated["refresh_token"]))


def test_public_client_refreshes_with_rotation(provider, alice):
    spa = provider.register("SPA", "--public", "--redirect-uri", CALLBACK, "--grant-type",
                            "authorization_code", "--grant-type", "refresh_token",
                            "--scope", "openid offline_access")
    tokens = provider.user_tokens(spa, scope="openid offline_access")
    rotated = provider.post("token_endpoint", spa, how="post", grant_type="refresh_token",
                            refresh_token=tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    replay = provider.post("token_endpoint", spa, how="post", grant_type="refresh_token",
                           refresh_token=tokens["refresh_token"])
    assert_invalid_grant(replay)


def test_garbage_refresh_tokens_are_invalid_grant(provider, alice, web_app):
    for junk in ("nope", "x" * 5000, "ä€\u202e"):
        assert_invalid_grant(provider.refresh(web_app, junk))
    missing = provider.post("token_endpoint", web_app, grant_type="refresh_token")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_concurrent_uses_of_one_refresh_token_let_exactly_one_through(provider, alice, web_app):
    """Two requests race with the same refresh token: one wins, the other is a replay and
    revokes the family (the winner's new tokens included)."""
    for attempt in range(3):
        token = provider.user_tokens(web_app, expect_consent=attempt == 0)["refresh_token"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(pool.map(lambda t: provider.refresh(web_app, t), [token, token]))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()
        assert_invalid_grant(provider.refresh(web_app, winner["refresh_token"]))


# --- the reuse grace window (IDP_REFRESH_TOKEN_REUSE_GRACE_SECONDS) -------------------------

GRACE_SECONDS = 30


@pytest.fixture
def grace(provider):
    provider.app.config["REFRESH_TOKEN_REUSE_GRACE_SECONDS"] = GRACE_SECONDS


def first_used(provider, token: str, seconds_ago: float | None = None):
    """When `token` was first used; with `seconds_ago`, move that moment back first."""
    with provider.app.app_context():
        row = db.session.execute(
            db.select(RefreshToken).filter_by(token_hash=hash_secret(token))).scalar_one()
        if seconds_ago is not None:
            row.used_at = utcnow() - timedelta(seconds=seconds_ago)
            db.session.commit()
        return row.used_at


def test_reuse_within_the_grace_window_returns_new_tokens_and_keeps_every_one(
        provider, alice, web_app, grace):
    """Two tabs refresh with the same token: both get tokens, and neither is signed out."""
    first = provider.user_tokens(web_app)
    second = provider.refresh(web_app, first["refresh_token"]).json()
    again = provider.refresh(web_app, first["refresh_token"])
    assert again.status_code == 200, again.text
    third = again.json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert third["access_token"] != second["access_token"]
    assert provider.introspect(web_app, first["refresh_token"])["active"] is True
    for tokens in (second, third):
        assert provider.userinfo(tokens["access_token"]).status_code == 200
        assert provider.refresh(web_app, tokens["refresh_token"]).status_code == 200
    with provider.app.app_context():
        assert db.session.execute(db.select(TokenFamily)).scalar_one().revoked_at is None


def test_the_grace_window_runs_from_the_first_use_and_is_never_extended(
        provider, alice, web_app, grace):
    first = provider.user_tokens(web_app)
    second = provider.refresh(web_app, first["refresh_token"]).json()
    used_at = first_used(provider, first["refresh_token"], seconds_ago=GRACE_SECONDS - 5)
    assert provider.refresh(web_app, first["refresh_token"]).status_code == 200
    assert first_used(provider, first["refresh_token"]) == used_at  # the reuse moved nothing

    first_used(provider, first["refresh_token"], seconds_ago=GRACE_SECONDS + 1)
    assert provider.introspect(web_app, first["refresh_token"]) == {"active": False}
    assert_invalid_grant(provider.refresh(web_app, first["refresh_token"]))  # now a replay
    assert_invalid_grant(provider.refresh(web_app, second["refresh_token"]))
    assert provider.introspect(web_app, second["access_token"]) == {"active": False}
    with provider.app.app_context():
        family = db.session.execute(db.select(TokenFamily)).scalar_one()
        assert family.revoked_reason == "refresh_token_reuse"


def test_the_grace_window_does_not_revive_a_revoked_family_or_serve_another_client(
        provider, alice, web_app, grace):
    first = provider.user_tokens(web_app)
    second = provider.refresh(web_app, first["refresh_token"]).json()
    other = provider.register("Other", "--redirect-uri", CALLBACK,
                              "--grant-type", "authorization_code",
                              "--grant-type", "refresh_token", "--scope", "openid offline_access")
    assert_invalid_grant(provider.refresh(other, first["refresh_token"]))
    assert provider.revoke(web_app, second["refresh_token"]).status_code == 200
    assert_invalid_grant(provider.refresh(web_app, first["refresh_token"]))


def test_concurrent_uses_within_the_grace_window_all_get_tokens(provider, alice, web_app, grace):
    token = provider.user_tokens(web_app)["refresh_token"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(lambda t: provider.refresh(web_app, t), [token] * 3))
    assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 3
    assert all(provider.refresh(web_app, t).status_code == 200 for t in successors)


def test_a_password_change_revokes_the_apps_refresh_tokens(provider, alice, web_app):
    """REFERENCE checklist 28: whoever knew the old password keeps nothing."""
    tokens = provider.user_tokens(web_app)
    browser = requests.Session()
    page = browser.get(f"{provider.url}/login").text
    browser.post(f"{provider.url}/login", data={
        "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(page)})
    form = browser.get(f"{provider.url}/account/password").text
    changed = browser.post(f"{provider.url}/account/password", data={
        "csrf_token": csrf_token(form), "current_password": PASSWORD,
        "new_password": "a brand new passphrase", "confirm_password": "a brand new passphrase"})
    assert changed.status_code == 200 and "applications will ask you" in changed.text
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))
    assert provider.introspect(web_app, tokens["access_token"]) == {"active": False}


def test_a_password_set_by_an_administrator_revokes_them_too(provider, alice, web_app):
    tokens = provider.user_tokens(web_app)
    result = provider.app.test_cli_runner().invoke(
        args=["users", "set-password", "alice", "--password-stdin", "--json"],
        input="another long passphrase\n")
    assert result.exit_code == 0, result.output
    assert '"token_families_revoked": 1' in result.output
    assert_invalid_grant(provider.refresh(web_app, tokens["refresh_token"]))
