"""The token endpoint for the code grant (RFC 6749 §4.1.3, §5; RFC 7636; RFC 9700 §4.2.4)."""

from datetime import timedelta

import pytest

from idp.models import AuthorizationCode
from idp.models import db
from idp.models import utcnow

from ..conftest import add_client
from ..helpers import Browserless
from ..helpers import basic_auth


def assert_oauth_error(response, status, error):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error
    assert not set(body.get("error_description", "")) & {"\r", "\n", "\t"}
    return body


def test_token_response_has_bearer_token_id_token_and_no_store(flow):
    response = flow.exchange(flow.code())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "openid profile email"
    assert body["access_token"].count(".") == 2
    assert body["id_token"].count(".") == 2


def test_oidcc_codereuse_fails_and_revokes_tokens(flow):
    code = flow.code()
    first = flow.exchange(code)
    assert first.status_code == 200
    access_token = first.get_json()["access_token"]
    headers = {"Authorization": f"Bearer {access_token}"}
    assert flow.http.get("/userinfo", headers=headers).status_code == 200

    assert_oauth_error(flow.exchange(code), 400, "invalid_grant")
    assert flow.http.get("/userinfo", headers=headers).status_code == 401


def test_oidcc_codereuse_30seconds(app, flow):
    code = flow.code()
    assert flow.exchange(code).status_code == 200
    with app.app_context():  # 30 s later, still inside the row's retention
        row = db.session.execute(db.select(AuthorizationCode)).scalar_one()
        row.used_at -= timedelta(seconds=30)
        db.session.commit()
    assert_oauth_error(flow.exchange(code), 400, "invalid_grant")


def test_expired_code_is_invalid_grant(app, flow):
    code = flow.code()
    with app.app_context():
        row = db.session.execute(db.select(AuthorizationCode)).scalar_one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert_oauth_error(flow.exchange(code), 400, "invalid_grant")


def test_code_lifetime_is_at_most_60_seconds(app, flow):
    flow.code()
    with app.app_context():
        row = db.session.execute(db.select(AuthorizationCode)).scalar_one()
        assert row.expires_at - row.created_at <= timedelta(seconds=60)


def test_code_is_stored_hashed(app, flow):
    code = flow.code()
    with app.app_context():
        row = db.session.execute(db.select(AuthorizationCode)).scalar_one()
        assert row.code_hash != code and code not in row.code_hash


def test_wrong_verifier_is_invalid_grant(flow):
    other_verifier = "x" * 64
    assert_oauth_error(flow.exchange(flow.code(), verifier=other_verifier), 400, "invalid_grant")


def test_missing_verifier_is_refused(flow):
    code = flow.code()
    response = flow.http.post("/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": flow.client.redirect_uris[0],
    }, headers=basic_auth(flow.client.client_id, flow.secret))
    assert_oauth_error(response, 400, "invalid_request")


def test_redirect_uri_mismatch_at_token_is_invalid_grant(app, flow):
    client = add_client(app, name="Two URIs", redirect_uris=[
        "https://rp.example.com/callback", "https://rp.example.com/other"])
    flow = Browserless(flow.http, client)
    code = flow.code()
    response = flow.exchange(code, redirect_uri="https://rp.example.com/other")
    assert_oauth_error(response, 400, "invalid_grant")


def test_wrong_client_secret_is_invalid_client(flow):
    code = flow.code()
    response = flow.http.post("/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": flow.client.redirect_uris[0], "code_verifier": flow.verifier,
    }, headers=basic_auth(flow.client.client_id, "wrong-secret"))
    assert_oauth_error(response, 401, "invalid_client")


def test_unknown_client_is_invalid_client(flow):
    response = flow.http.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                              headers=basic_auth("nobody", "nothing"))
    assert_oauth_error(response, 401, "invalid_client")


def test_invalid_client_says_the_same_for_an_unknown_client_and_a_wrong_secret(flow):
    """One description, naming the accepted methods in words (Authlib printed a Python list,
    and told an unknown client_id from a wrong secret)."""
    descriptions = {flow.http.post("/token", data={"grant_type": "client_credentials"},
                                   headers=basic_auth(client_id, "wrong-secret")
                                   ).get_json()["error_description"]
                    for client_id in (flow.client.client_id, "nobody")}
    assert descriptions == {"Client authentication failed; this endpoint accepts "
                            "client_secret_basic, client_secret_post or private_key_jwt."}


def test_oidcc_server_client_secret_post(flow):
    code = flow.code()
    response = flow.http.post("/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": flow.client.redirect_uris[0], "code_verifier": flow.verifier,
        "client_id": flow.client.client_id, "client_secret": flow.secret,
    })
    assert response.status_code == 200
    assert "id_token" in response.get_json()


def test_confidential_client_cannot_skip_authentication(flow):
    code = flow.code()
    response = flow.http.post("/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": flow.client.client_id,
        "redirect_uri": flow.client.redirect_uris[0], "code_verifier": flow.verifier,
    })
    assert_oauth_error(response, 401, "invalid_client")


def test_public_client_exchanges_with_pkce_only(http, user, public_client):
    flow = Browserless(http, public_client)
    response = flow.exchange(flow.code())
    assert response.status_code == 200
    assert "id_token" in response.get_json()


def test_code_is_bound_to_the_client(app, flow):
    code = flow.code()
    other = add_client(app, name="Other App")
    response = flow.http.post("/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": flow.client.redirect_uris[0], "code_verifier": flow.verifier,
    }, headers=basic_auth(other.client_id, other.secret))
    assert_oauth_error(response, 400, "invalid_grant")
    # and the rightful client can still use it: a foreign attempt does not burn it
    assert flow.exchange(code).status_code == 200


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x:unknown"])
def test_unsupported_grant_types_are_refused(flow, grant_type):
    response = flow.http.post("/token", data={"grant_type": grant_type},
                              headers=basic_auth(flow.client.client_id, flow.secret))
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_get_on_post_only_endpoints_is_json_405(flow, path):
    response = flow.http.get(path)
    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"


def test_disabled_user_code_is_refused(app, flow):
    from idp.models import User

    code = flow.code()
    with app.app_context():
        db.session.execute(db.update(User).values(disabled=True))
        db.session.commit()
    assert_oauth_error(flow.exchange(code), 400, "invalid_grant")
