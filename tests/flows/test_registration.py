"""Dynamic client registration (RFC 7591) at /register: off by default, open, or with an
initial access token (IDP_CLIENT_REGISTRATION); what a self-registered client may be, and how
the consent page shows one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from joserfc.jwk import RSAKey

from idp.models import Client
from idp.models import db

from ..conftest import add_client
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import basic_auth
from ..helpers import page_text
from ..helpers import query_of

REGISTRATION_TOKEN = "initial-access-token-" + "t" * 32
WEB_APP = {"client_name": "Notes", "redirect_uris": ["https://notes.example/cb"]}


@pytest.fixture
def app(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open")


def register(http, metadata, **headers):
    return http.post("/register", data=json.dumps(metadata),
                     content_type="application/json", headers=headers)


def assert_refused(response, error="invalid_client_metadata", status=400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error
    return body["error_description"]


def registered(http, metadata) -> SimpleNamespace:
    response = register(http, metadata)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return SimpleNamespace(client_id=body["client_id"], secret=body.get("client_secret"),
                           redirect_uris=body["redirect_uris"], body=body)


def test_a_web_app_registers_and_gets_a_secret_shown_once(app, http):
    response = register(http, {**WEB_APP, "contacts": ["ops@notes.example"]})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["client_name"] == "Notes"
    assert body["redirect_uris"] == ["https://notes.example/cb"]
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["scope"] == "openid profile email"
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0
    assert "contacts" not in body  # ignored (RFC 7591 §2)
    with app.app_context():
        client = Client.by_client_id(body["client_id"])
        assert client.self_registered and not client.first_party
        assert body["client_secret"] not in (client.secret_hash or "")  # kept hashed


def test_a_registered_web_app_signs_a_user_in(http, user):
    client = registered(http, WEB_APP)
    flow = Browserless(http, client)
    consent_page = flow.authorize()
    consent_page = flow.follow(flow.login())
    text = page_text(consent_page.get_data(as_text=True))
    assert "This application registered itself" in text
    assert "Your answer will go to notes.example" in text
    response = flow.follow(flow.consent(consent_page))
    tokens = flow.exchange(query_of(response.location)["code"])
    assert tokens.status_code == 200 and "id_token" in tokens.get_json()


def test_a_native_app_registers_as_a_public_client(http, user):
    client = registered(http, {"client_name": "Terminal", "token_endpoint_auth_method": "none",
                               "redirect_uris": ["http://127.0.0.1/cb", "com.example.term:/cb"],
                               "grant_types": ["authorization_code", "refresh_token"]})
    assert client.secret is None and "client_secret" not in client.body
    assert client.body["scope"] == "openid profile email offline_access"
    app = Browserless(http, client)
    redirect_uri = "http://127.0.0.1:49152/cb"  # RFC 8252: any port of the loopback IP
    code = app.code(redirect_uri=redirect_uri, scope="openid offline_access")
    tokens = app.exchange(code, redirect_uri=redirect_uri)
    assert tokens.status_code == 200 and "refresh_token" in tokens.get_json()


def test_a_client_registers_its_keys_for_private_key_jwt(app, http):
    public_key = RSAKey.generate_key(2048, parameters={"kid": "k1"}).as_dict(private=False)
    client = registered(http, {**WEB_APP, "token_endpoint_auth_method": "private_key_jwt",
                               "jwks": {"keys": [public_key]}})
    assert client.secret is None and client.body["jwks"]["keys"][0]["kid"] == "k1"
    with app.app_context():
        assert Client.by_client_id(client.client_id).uses_keys


def test_a_key_whose_kid_is_not_printable_is_refused(app, http):
    public_key = RSAKey.generate_key(2048, parameters={"kid": "a\x00b"}).as_dict(private=False)
    description = assert_refused(register(http, {
        **WEB_APP, "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [public_key]}}))
    assert "printable" in description


def test_the_secret_of_a_client_secret_post_client_works_in_the_body(http, user):
    client = registered(http, {**WEB_APP, "token_endpoint_auth_method": "client_secret_post"})
    assert client.body["token_endpoint_auth_method"] == "client_secret_post"
    flow = Browserless(http, client)
    code = flow.code()
    tokens = flow.exchange(code, auth=False, client_id=client.client_id,
                           client_secret=client.secret)
    assert tokens.status_code == 200, tokens.get_json()
    # RFC 7592: a read names the method it registered with; it may move to the other.
    read = manage(http, client).get_json()
    assert read["token_endpoint_auth_method"] == "client_secret_post"
    moved = manage(http, client, "PUT", read["registration_access_token"], metadata={
        **WEB_APP, "client_id": client.client_id,
        "token_endpoint_auth_method": "client_secret_basic"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["token_endpoint_auth_method"] == "client_secret_basic"
    assert flow.exchange(flow.code()).status_code == 200  # Basic, as it now says


@pytest.mark.parametrize("uri", [
    "http://notes.example/cb", "https://notes.example/cb#x", "https://user@notes.example/cb",
    "javascript:alert(1)", "/cb", "https://notes.example/c b", "https://notes.example/\x00",
    "https://notes.example/" + "a" * 2001,
])
def test_a_bad_redirect_uri_is_refused(http, uri):
    description = assert_refused(register(http, {**WEB_APP, "redirect_uris": [uri]}),
                                 "invalid_redirect_uri")
    assert uri not in description


@pytest.mark.parametrize("metadata, error", [
    ({}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://notes.example/cb"] * 21}, "invalid_redirect_uri"),
    ({"redirect_uris": "https://notes.example/cb"}, "invalid_client_metadata"),
    ({"redirect_uris": [["https://notes.example/cb"]]}, "invalid_client_metadata"),
])
def test_redirect_uris_must_be_a_list_of_one_to_twenty(http, metadata, error):
    assert_refused(register(http, metadata), error)


@pytest.mark.parametrize("extra", [
    {"grant_types": ["client_credentials"]},
    {"grant_types": ["authorization_code", "client_credentials"]},
    {"grant_types": ["refresh_token"]},
    {"grant_types": ["authorization_code", "implicit"]},
    {"grant_types": ["authorization_code", "refresh_token"], "scope": "openid"},
    {"response_types": ["code", "token"]},
    {"response_types": ["id_token"]},
    {"token_endpoint_auth_method": "client_secret_jwt"},
    {"token_endpoint_auth_method": "private_key_jwt"},  # without its keys
    {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}},
    {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},  # keys without private_key_jwt
    {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1/k"},
    {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://notes.example/k",
     "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9"
                        "uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}},
    {"jwks_uri": "https://notes.example/k"},  # keys without private_key_jwt
    {"scope": "openid admin"},
    {"scope": 7},
    {"client_name": ""},
    {"client_name": "Notes\nfrom the bank"},
    {"client_name": "N" * 201},
    {"client_name": ["Notes"]},
    {"post_logout_redirect_uris": ["http://notes.example/out"]},
    {"backchannel_logout_uri": "https://notes.example/logout"},  # needs the token
    {"request_uris": ["https://notes.example/ro"]},  # request objects need keys
    {"require_signed_request_object": True},
    {"userinfo_signed_response_alg": "HS256"},
    {"userinfo_signed_response_alg": "none"},
    {"id_token_signed_response_alg": "ES256"},  # only RS256: refused, not ignored
    {"id_token_encrypted_response_alg": "RSA-OAEP"},  # no encryption
    {"userinfo_encrypted_response_enc": "A128GCM"},
    {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [RSAKey.generate_key(
        2048).as_dict(private=False)]}, "token_endpoint_auth_signing_alg": "HS256"},
])
def test_metadata_a_self_registered_client_cannot_have_is_refused(app, http, extra):
    assert_refused(register(http, {**WEB_APP, **extra}))
    with app.app_context():
        assert db.session.query(Client).count() == 0  # nothing is kept


@pytest.mark.parametrize("body, content_type", [
    ("not json", "application/json"),
    ("[1, 2]", "application/json"),
    ('"text"', "application/json"),
    ("[" * 100_000, "application/json"),
    (json.dumps(WEB_APP), "application/x-www-form-urlencoded"),
    ("x" * 300_000, "application/json"),
    (b"\xff\xfe{}", "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_refused(http, body, content_type):
    assert_refused(http.post("/register", data=body, content_type=content_type))


def test_without_a_client_name_the_redirect_host_names_the_client(http):
    client = registered(http, {"redirect_uris": ["https://notes.example/cb"]})
    assert client.body["client_name"] == "notes.example"


def test_registration_is_off_by_default(tmp_path, signing_keys_dir):
    http = make_app(tmp_path, signing_keys_dir).test_client()
    response = register(http, WEB_APP)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    assert "registration_endpoint" not in http.get(
        "/.well-known/openid-configuration").get_json()


def test_discovery_names_the_endpoint_when_registration_is_on(http):
    document = http.get("/.well-known/openid-configuration").get_json()
    assert document["registration_endpoint"] == "http://127.0.0.1:5000/register"


def test_registrations_are_limited_per_address(tmp_path, signing_keys_dir):
    http = make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open",
                    CLIENT_REGISTRATION_MAX_PER_IP=2).test_client()
    assert register(http, WEB_APP).status_code == 201
    assert_refused(register(http, {"redirect_uris": []}), "invalid_redirect_uri")
    assert_refused(register(http, WEB_APP), "invalid_request", status=429)


@pytest.fixture
def token_http(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="token",
                    CLIENT_REGISTRATION_TOKEN=REGISTRATION_TOKEN).test_client()


@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Bearer wrong", f"Bearer {REGISTRATION_TOKEN}x", f"Basic {REGISTRATION_TOKEN}",
    "Bearer \u00e9t\u00e9",
])
def test_with_token_registration_a_missing_or_wrong_token_is_401(token_http, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = register(token_http, WEB_APP, **headers)
    assert_refused(response, "invalid_token", status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_with_the_token_a_client_registers_and_may_name_a_backchannel_logout_uri(token_http):
    response = register(token_http, {**WEB_APP,
                                     "backchannel_logout_uri": "https://notes.example/bc"},
                        Authorization=f"Bearer {REGISTRATION_TOKEN}")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["backchannel_logout_uri"] == "https://notes.example/bc"


def test_a_registration_is_audited_without_its_secret(http, caplog):
    caplog.set_level("INFO", logger="idp.audit")
    client = registered(http, WEB_APP)
    events = [json.loads(record.getMessage()) for record in caplog.records
              if record.name == "idp.audit"]
    assert any(e["event"] == "client.registered" and e["client_id"] == client.client_id
               for e in events)
    assert client.secret not in caplog.text


def test_the_cli_shows_a_client_registered_itself(app, http):
    client = registered(http, WEB_APP)
    shown = app.test_cli_runner().invoke(args=["clients", "show", client.client_id, "--json"])
    assert json.loads(shown.output)["self_registered"] is True


def test_browser_apps_may_register_across_origins(http):
    preflight = http.options("/register", headers={
        "Origin": "https://inspector.example", "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    response = register(http, WEB_APP, Origin="https://inspector.example")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_the_consent_page_links_the_clients_privacy_policy_and_terms(http, user):
    client = registered(http, {**WEB_APP, "policy_uri": "https://notes.example/privacy",
                               "tos_uri": "https://notes.example/terms"})
    assert client.body["policy_uri"] == "https://notes.example/privacy"
    flow = Browserless(http, client)
    flow.authorize()
    html = flow.follow(flow.login()).get_data(as_text=True)
    assert ('<a href="https://notes.example/privacy" id="policy-link" target="_blank" '
            'rel="noopener noreferrer">privacy policy</a>') in html
    assert 'href="https://notes.example/terms" id="tos-link"' in html
    assert "read Notes's privacy policy and terms of service" in page_text(html)


@pytest.mark.parametrize("name", ["policy_uri", "tos_uri"])
@pytest.mark.parametrize("uri", ["javascript:alert(1)", "http://notes.example/p",
                                 "com.example.app:/p", "https://notes.example/p#top"])
def test_a_document_link_must_be_an_https_url(http, name, uri):
    assert_refused(register(http, {**WEB_APP, name: uri}))


def test_a_client_may_register_for_dpop_bound_tokens_only(http):
    """RFC 9449 §5.2: `dpop_bound_access_tokens`; its token requests then need a proof."""
    body = registered(http, {**WEB_APP, "dpop_bound_access_tokens": True}).body
    assert body["dpop_bound_access_tokens"] is True
    assert registered(http, WEB_APP).body["dpop_bound_access_tokens"] is False
    assert "true or false" in assert_refused(
        register(http, {**WEB_APP, "dpop_bound_access_tokens": "yes"}))


def test_a_client_with_keys_registers_for_request_objects_and_signed_userinfo(app, http):
    """RFC 9101 and OIDC Dynamic Registration §2: where it publishes request objects (only
    those are fetched), that it always sends one, with which algorithm; and /userinfo as a
    JWT (oidcc-userinfo-rs256)."""
    public_key = RSAKey.generate_key(2048, parameters={"kid": "k1"}).as_dict(private=False)
    keys = {**WEB_APP, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [public_key]}}
    body = registered(http, {**keys, "request_uris": ["https://notes.example/ro#c2hh"],
                             "require_signed_request_object": True,
                             "request_object_signing_alg": "PS256",
                             "userinfo_signed_response_alg": "RS256"}).body
    assert body["request_uris"] == ["https://notes.example/ro#c2hh"]
    assert body["require_signed_request_object"] is True
    assert body["request_object_signing_alg"] == "PS256"
    assert body["userinfo_signed_response_alg"] == "RS256"
    pinned = registered(http, {**keys, "token_endpoint_auth_signing_alg": "ES256",
                               "id_token_signed_response_alg": "RS256"}).body
    assert pinned["token_endpoint_auth_signing_alg"] == "ES256"
    with app.app_context():
        client = Client.by_client_id(body["client_id"])
        assert client.request_uris == ["https://notes.example/ro#c2hh"]
        assert client.client_metadata["userinfo_signed_response_alg"] == "RS256"
    plain = registered(http, keys).body
    assert not {"request_uris", "require_signed_request_object",
                "userinfo_signed_response_alg"} & plain.keys()
    for bad in ({"request_uris": ["http://notes.example/ro"]},
                {"request_uris": ["https://notes.example/" + "r" * 512]},
                {"request_uris": ["https://user@notes.example/ro"]},
                {"request_uris": "https://notes.example/ro"},
                {"request_object_signing_alg": "none"},
                {"request_object_signing_alg": "HS256"},
                {"require_signed_request_object": "yes"}):
        assert_refused(register(http, {**keys, **bad}))


# --- registration management (RFC 7592) ---------------------------------------------------

def manage(http, client, method="GET", token=None, metadata=None):
    """A call to the client's own registration URI with its registration access token."""
    path = client.body["registration_client_uri"].removeprefix("http://127.0.0.1:5000")
    headers = {"Authorization": f"Bearer {token or client.body['registration_access_token']}"}
    if metadata is None:
        return http.open(path, method=method, headers=headers)
    return http.open(path, method=method, headers=headers, data=json.dumps(metadata),
                     content_type="application/json")


def test_a_client_reads_its_registration_and_each_read_turns_its_token(http):
    client = registered(http, WEB_APP)
    assert client.body["registration_client_uri"] == (
        f"http://127.0.0.1:5000/register/{client.client_id}")
    read = manage(http, client)
    assert read.status_code == 200 and read.headers["Cache-Control"] == "no-store"
    body = read.get_json()
    assert body["client_id"] == client.client_id and body["redirect_uris"] == WEB_APP[
        "redirect_uris"]
    assert "client_secret" not in body  # kept only as a hash
    assert body["registration_access_token"] != client.body["registration_access_token"]
    # The token the read was made with is spent; the new one works.
    assert_refused(manage(http, client), "invalid_token", 401)
    assert manage(http, client, token=body["registration_access_token"]).status_code == 200


def test_a_client_updates_its_registration(http, user):
    client = registered(http, WEB_APP)
    update = {**WEB_APP, "client_id": client.client_id, "client_name": "Notes 2",
              "redirect_uris": ["https://notes.example/new-cb"],
              "client_secret": client.secret}
    response = manage(http, client, "PUT", metadata=update)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["client_name"] == "Notes 2"
    assert body["redirect_uris"] == ["https://notes.example/new-cb"]
    flow = Browserless(http, SimpleNamespace(**{**vars(client),
                                                "redirect_uris": body["redirect_uris"]}))
    flow.authorize()
    assert "Notes 2" in flow.follow(flow.login()).get_data(as_text=True)  # the consent page
    old = flow.authorize(redirect_uri="https://notes.example/cb")
    assert old.status_code == 400  # the old redirect URI is gone: an error page


@pytest.mark.parametrize("change, error", [
    ({"client_id": "another"}, "invalid_request"),
    ({"registration_access_token": "x"}, "invalid_request"),
    ({"client_id_issued_at": 0}, "invalid_request"),
    ({"client_secret": "not the secret"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ({"subject_type": "pairwise"}, "invalid_client_metadata"),
    ({"redirect_uris": ["http://notes.example/cb"]}, "invalid_redirect_uri"),
    ({"backchannel_logout_uri": "https://notes.example/bc"}, "invalid_client_metadata"),
])
def test_an_update_is_checked_as_a_registration_is(app, http, change, error):
    client = registered(http, WEB_APP)
    update = {**WEB_APP, "client_id": client.client_id, **change}
    assert_refused(manage(http, client, "PUT", metadata=update), error)
    with app.app_context():  # nothing changed, and the token still works
        assert Client.by_client_id(client.client_id).redirect_uris == WEB_APP["redirect_uris"]
    assert manage(http, client).status_code == 200


def test_a_pairwise_clients_redirect_uris_stay_on_its_sector(http):
    client = registered(http, {**WEB_APP, "subject_type": "pairwise"})
    update = {**WEB_APP, "client_id": client.client_id, "subject_type": "pairwise",
              "redirect_uris": ["https://elsewhere.example/cb"]}
    assert "must stay on notes.example" in assert_refused(
        manage(http, client, "PUT", metadata=update), "invalid_redirect_uri")


def test_a_client_deletes_itself_with_its_tokens(app, http, user):
    client = registered(http, {**WEB_APP, "grant_types": ["authorization_code",
                                                          "refresh_token"]})
    tokens = Browserless(http, client).tokens(scope="openid offline_access")
    assert manage(http, client, "DELETE").status_code == 204
    with app.app_context():
        assert Client.by_client_id(client.client_id) is None
    refreshed = http.post("/token", data={"grant_type": "refresh_token",
                                          "refresh_token": tokens["refresh_token"]},
                          headers=basic_auth(client.client_id, client.secret))
    assert refreshed.status_code == 401  # no such client any more
    assert_refused(manage(http, client), "invalid_token", 401)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc", "Bearer "])
def test_management_needs_the_clients_own_token(http, authorization):
    client = registered(http, WEB_APP)
    other = registered(http, WEB_APP)
    path = f"/register/{client.client_id}"
    headers = {"Authorization": authorization} if authorization else {}
    for method in ("GET", "PUT", "DELETE"):
        assert_refused(http.open(path, method=method, headers=headers), "invalid_token", 401)
    # Another client's token, an unknown client, a client_id no client can have.
    token = other.body["registration_access_token"]
    for path in (f"/register/{client.client_id}", "/register/nobody", "/register/" + "x" * 65):
        assert_refused(http.get(path, headers={"Authorization": f"Bearer {token}"}),
                       "invalid_token", 401)


def test_an_operators_client_cannot_be_managed(app, http):
    operators = add_client(app, name="Operator's app")
    response = http.get(f"/register/{operators.client_id}",
                        headers={"Authorization": "Bearer anything"})
    assert_refused(response, "invalid_token", 401)
