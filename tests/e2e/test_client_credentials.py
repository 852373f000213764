"""Client credentials (RFC 6749 §4.4) and RFC 9068 JWT access tokens, over real HTTP, checked
by a resource server's independent JOSE library (jwcrypto) with nothing but the JWKS."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from types import SimpleNamespace

import pytest
import requests
from jwcrypto import jwk
from jwcrypto import jwt

from idp.models import AccessTokenRecord
from idp.models import Client
from idp.models import db

from ..helpers import wrong_secret

ORDERS_API = "https://api.example.com/orders"


def validate_like_a_resource_server(provider, token: str, audience: str) -> tuple[dict, dict]:
    """What an RS does with RFC 9068 §4: JWKS from discovery, RS256 only, typ at+jwt, iss, aud,
    exp. Returns (header, claims)."""
    keys = jwk.JWKSet.from_json(requests.get(provider.metadata["jwks_uri"], timeout=5).text)
    checked = jwt.JWT(jwt=token, key=keys, algs=["RS256"], expected_type="JWS",
                      check_claims={"iss": provider.metadata["issuer"], "aud": audience,
                                    "exp": None})
    header = json.loads(checked.header)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    published = json.loads(keys.export(private_keys=False))["keys"]
    assert header["kid"] in {key["kid"] for key in published}
    return header, json.loads(checked.claims)


@pytest.mark.parametrize("how", ["basic", "post"])
def test_client_credentials_with_each_secret_method(provider, service, how):
    response = provider.client_credentials(service, how=how)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "orders:read orders:write"
    assert "refresh_token" not in body and "id_token" not in body
    assert response.headers["Cache-Control"] == "no-store"


def test_access_token_validates_with_the_jwks_alone(provider, service):
    token = provider.client_credentials(service, scope="orders:read").json()["access_token"]
    _, claims = validate_like_a_resource_server(provider, token, ORDERS_API)
    assert claims["sub"] == service.client_id == claims["client_id"]
    assert claims["aud"] == ORDERS_API
    assert claims["scope"] == "orders:read"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16


def test_each_token_has_its_own_jti_and_no_row_is_written(provider, service):
    jtis = set()
    for _ in range(3):
        token = provider.client_credentials(service).json()["access_token"]
        jtis.add(validate_like_a_resource_server(provider, token, ORDERS_API)[1]["jti"])
    assert len(jtis) == 3
    with provider.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AccessTokenRecord)) == 0


def test_scope_asked_must_be_allowed(provider, service):
    assert provider.client_credentials(service, scope="orders:write").json()["scope"] == \
        "orders:write"
    refused = provider.client_credentials(service, scope="orders:read admin")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    assert refused.headers["Cache-Control"] == "no-store"
    assert "access_token" not in refused.json()


def test_resource_sets_the_audience_and_must_be_registered(provider):
    client = provider.register("Two APIs", "--grant-type", "client_credentials", "--scope", "a",
                               "--audience", "https://a.example.com",
                               "--audience", "https://b.example.com")
    one = provider.client_credentials(client, resource="https://b.example.com").json()
    assert validate_like_a_resource_server(provider, one["access_token"],
                                           "https://b.example.com")[1]["aud"] == \
        "https://b.example.com"
    both = provider.client_credentials(client).json()  # no resource: every registered audience
    claims = validate_like_a_resource_server(provider, both["access_token"],
                                             "https://a.example.com")[1]
    assert claims["aud"] == ["https://a.example.com", "https://b.example.com"]
    for bad in ("https://c.example.com", "not a uri", "https://a.example.com#frag", "http://[",
                "\u00e9"):
        refused = provider.client_credentials(client, resource=bad)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", bad


def test_grant_must_be_registered_and_client_confidential(provider, service):
    web = provider.register("Web only", "--redirect-uri", "https://rp.example.com/cb")
    refused = provider.client_credentials(web)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    public = provider.register("SPA", "--public", "--redirect-uri", "https://rp.example.com/cb")
    refused = provider.post("token_endpoint", public, how="post", grant_type="client_credentials")
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client"


def test_wrong_or_missing_secret_is_401_invalid_client(provider, service):
    service.secret = wrong_secret(service.secret)
    refused = provider.client_credentials(service)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    bare = requests.post(provider.metadata["token_endpoint"], timeout=5,
                         data={"grant_type": "client_credentials"})
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"


def test_a_planned_secret_rotation_breaks_no_caller(provider, service, caplog):
    """`rotate-secret --keep-old-for`: until every instance of the service has the new secret,
    the old one still works, and the audit log says who still uses it."""
    old = SimpleNamespace(client_id=service.client_id, secret=service.secret)
    rotated = provider.idp("clients", "rotate-secret", service.client_id, "--keep-old-for", "1h")
    new = SimpleNamespace(client_id=service.client_id, secret=rotated["client_secret"])
    with caplog.at_level(logging.INFO, logger="idp.audit"):
        for _ in range(3):
            assert provider.client_credentials(old).status_code == 200
        token = provider.client_credentials(new, how="post").json()["access_token"]
        assert provider.introspect(old, token)["active"] is True
    told = [r.getMessage() for r in caplog.records
            if "client_auth.previous_secret_used" in r.getMessage()]
    assert len(told) == 1 and service.client_id in told[0]  # at most once a minute
    assert old.secret not in caplog.text and new.secret not in caplog.text

    provider.idp("clients", "end-previous-secret", service.client_id)
    refused = provider.client_credentials(old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert provider.client_credentials(new).status_code == 200


def test_a_change_to_the_client_holds_from_the_next_request(provider, service):
    """The token endpoint reads its client afresh for every request (models/hot_read.py): a
    rotated secret, a narrowed scope or a deleted client is never served from a stale copy."""
    assert provider.client_credentials(service).status_code == 200
    old_secret = service.secret
    service.secret = provider.idp("clients", "rotate-secret", service.client_id)["client_secret"]
    assert provider.client_credentials(service).status_code == 200
    stale = SimpleNamespace(client_id=service.client_id, secret=old_secret)
    assert provider.client_credentials(stale).json()["error"] == "invalid_client"

    provider.idp("clients", "update", service.client_id, "--scope", "orders:read")
    refused = provider.client_credentials(service, scope="orders:write")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"

    provider.idp("clients", "delete", service.client_id, "--yes")
    refused = provider.client_credentials(service)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_client_secret_is_stored_as_a_keyed_hash(provider, service):
    with provider.app.app_context():
        stored = Client.by_client_id(service.client_id).secret_hash
        key = provider.app.config["HASH_KEY"].encode()
    assert len(service.secret) >= 43  # 256 bits, base64url
    assert service.secret not in stored
    assert stored != hashlib.sha256(service.secret.encode()).hexdigest()
    assert stored == hmac.new(key, service.secret.encode(), hashlib.sha256).hexdigest()


def test_failed_client_authentication_is_throttled_per_client_and_address(provider, service):
    limit = provider.app.config["CLIENT_AUTH_MAX_FAILURES"]
    wrong = type(service)(client_id=service.client_id, secret="wrong")
    for _ in range(limit):
        assert provider.client_credentials(wrong).status_code == 401
    throttled = provider.client_credentials(wrong)
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "invalid_client"
    assert int(throttled.headers["Retry-After"]) == provider.app.config[
        "CLIENT_AUTH_WINDOW_SECONDS"]
    assert throttled.headers["Cache-Control"] == "no-store"
    # the pair stays blocked for the window, whatever the secret; other clients are not
    assert provider.client_credentials(service).status_code == 429
    assert provider.post("introspection_endpoint", service, token="x").status_code == 429
    other = provider.register("Other", "--grant-type", "client_credentials", "--scope", "x")
    assert provider.client_credentials(other).status_code == 200


def test_failed_authentication_is_audited_without_the_secret(provider, service, caplog):
    swapped = type(service)(client_id=service.secret, secret=service.client_id)
    with caplog.at_level("INFO", logger="idp.audit"):
        assert provider.client_credentials(swapped).status_code == 401
        assert provider.client_credentials(type(service)(
            client_id=service.client_id, secret="wrong")).status_code == 401
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "idp.audit"]
    failures = [e for e in events if e["event"] == "client_auth.failed"]
    assert len(failures) == 2 and failures[1]["client_id"] == service.client_id
    assert service.secret not in caplog.text
