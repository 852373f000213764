"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
client_id is the https URL of its own metadata, fetched by the provider on first use."""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import random
import re
import secrets
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from jwcrypto import jwk
from jwcrypto import jwt

from idp.models import Client
from idp.models import db
from idp.models import utcnow
from idp.oauth import client_keys
from idp.oauth import metadata_documents
from idp.oauth import outbound
from idp.security.client_throttle import throttle_key

from ..conftest import add_user
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import page_text
from .test_id_token import verify

CALLBACK = "https://agent.example/callback"


@pytest.fixture(autouse=True)
def _forget_what_workers_keep():
    """Failures and keys are kept per worker, by URL: a later test's server may have the
    same port."""
    yield
    metadata_documents._failed.clear()
    client_keys.forget()


def document_app(tmp_path, signing_keys_dir, **overrides):
    # The document server is on loopback, which only an operator's setting lets a client name.
    return make_app(tmp_path, signing_keys_dir, CLIENT_METADATA_DOCUMENTS=True,
                    OUTBOUND_PRIVATE_NETWORKS="127.0.0.1/32", **overrides)


@pytest.fixture
def app(tmp_path, signing_keys_dir):
    return document_app(tmp_path, signing_keys_dir)


@pytest.fixture
def user(app):
    return add_user(app)


def browser(http, client_id: str, redirect_uri: str = CALLBACK) -> Browserless:
    return Browserless(http, SimpleNamespace(client_id=client_id, secret=None,
                                             redirect_uris=[redirect_uri]))


def refused(response, reason: str) -> None:
    """An error page naming `reason`, and no redirect: no redirect URI can be trusted."""
    assert response.status_code == 400, response.status_code
    assert response.location is None
    assert "invalid_client" in response.get_data(as_text=True)
    assert reason in page_text(response.get_data(as_text=True))


def test_a_client_known_only_by_its_document_signs_a_user_in(app, http, user, documents,
                                                             caplog):
    client_id = documents.publish(client_name="Agent")
    flow = browser(http, client_id)
    response = flow.authorize()
    assert response.status_code == 302 and "/login" in response.location
    consent_page = flow.follow(flow.login())
    text = page_text(consent_page.get_data(as_text=True))
    # The user is told the name is the client's own claim, and where it describes itself.
    assert "registered itself" in text and f"describes itself at 127.0.0.1:{documents.port}" in text
    assert "will go to agent.example , another site ." in text
    callback = flow.follow(flow.consent(consent_page))
    assert callback.location.startswith(CALLBACK)

    tokens = flow.exchange(dict(p.split("=", 1) for p in
                                callback.location.split("?", 1)[1].split("&"))["code"]).get_json()
    _, claims = verify(http, tokens["id_token"])
    assert claims["aud"] == client_id and claims["sub"] == user.subject
    assert http.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).get_json()["sub"] == user.subject
    assert documents.requests == ["/client.json"]  # fetched once, then kept
    shown = json.loads(app.test_cli_runner().invoke(
        args=["clients", "show", client_id, "--json"]).output)
    assert shown["self_registered"] and shown["metadata_document_expires_at"]
    assert [r for r in caplog.records if r.name == "idp.audit"
            and "client_metadata.registered" in r.getMessage() and client_id in r.getMessage()]


def test_the_consent_page_says_nothing_more_when_the_answer_stays_on_the_documents_host(
        http, user, documents):
    client_id = documents.publish(redirect_uris=["https://127.0.0.1/callback"])
    flow = browser(http, client_id, "https://127.0.0.1/callback")
    flow.authorize()
    text = page_text(flow.follow(flow.login()).get_data(as_text=True))
    assert "will go to 127.0.0.1 . Allow only" in text


def test_discovery_says_whether_documents_are_accepted(http, tmp_path, signing_keys_dir):
    assert http.get("/.well-known/openid-configuration").get_json()[
        "client_id_metadata_document_supported"] is True
    default = make_app(tmp_path / "default", signing_keys_dir).test_client()
    assert default.get("/.well-known/openid-configuration").get_json()[
        "client_id_metadata_document_supported"] is False


def test_with_documents_off_a_url_is_nobody(tmp_path, signing_keys_dir, documents):
    http = make_app(tmp_path, signing_keys_dir).test_client()
    response = browser(http, documents.publish()).authorize()
    assert response.status_code == 400 and response.location is None
    assert documents.requests == []


def test_turning_documents_off_stops_the_clients_they_made(app, http, user, documents):
    client_id = documents.publish()
    assert browser(http, client_id).authorize().status_code == 302
    app.config["CLIENT_METADATA_DOCUMENTS"] = False
    response = browser(http, client_id).authorize()
    assert response.status_code == 400 and response.location is None
    assert "does not exist" in page_text(response.get_data(as_text=True))


def expire(app, client_id: str, seconds_ago: int = 1) -> None:
    with app.app_context():
        client = Client.by_client_id(client_id)
        client.metadata_document_expires_at = utcnow() - timedelta(seconds=seconds_ago)
        db.session.commit()


def test_the_document_is_kept_as_its_cache_control_says_then_fetched_again(
        app, http, user, documents):
    client_id = documents.publish(headers={"Cache-Control": "public, max-age=600"})
    assert browser(http, client_id).authorize().status_code == 302
    with app.app_context():
        kept_until = Client.by_client_id(client_id).metadata_document_expires_at
    assert timedelta(seconds=590) < kept_until - utcnow() <= timedelta(seconds=600)

    # The client moves its redirect URI: the provider learns of it once its time is up.
    moved = "https://agent.example/new-callback"
    documents.publish(redirect_uris=[moved])
    assert browser(http, client_id, moved).authorize().status_code == 400
    expire(app, client_id)
    assert browser(http, client_id, moved).authorize().status_code == 302
    assert browser(http, client_id).authorize().status_code == 400  # the old one is gone
    assert documents.requests == ["/client.json"] * 2


@pytest.mark.parametrize(("header", "seconds"), [
    (None, metadata_documents.DEFAULT_CACHE_SECONDS),
    ("max-age=60", metadata_documents.MIN_CACHE_SECONDS),
    ("public, max-age=7200", 7200),
    ("max-age=99999999", metadata_documents.MAX_CACHE_SECONDS),
    ("no-store", metadata_documents.MIN_CACHE_SECONDS),
    ("s-maxage=9000", metadata_documents.DEFAULT_CACHE_SECONDS),
])
def test_how_long_a_document_is_kept(header, seconds):
    assert metadata_documents._max_age(header) == seconds


LARGE = "x" * metadata_documents.MAX_BYTES


@pytest.mark.parametrize(("change", "reason"), [
    ({"client_id": "https://elsewhere.example/client.json"}, "client_id must be its URL"),
    ({"token_endpoint_auth_method": "client_secret_basic"}, "cannot share a secret"),
    ({"client_secret": "s3cret"}, "may hold no secret"),
    ({"backchannel_logout_uri": "https://agent.example/bc"}, "backchannel_logout_uri is not"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1/k"},
     "jwks_uri must be an https URL"),
    ({"grant_types": ["client_credentials"]}, "grant_types may be authorization_code"),
    ({"redirect_uris": ["https://agent.example/cb#x"]}, "A URI of redirect_uris"),
    ({"client_name": LARGE}, "more than 5120 bytes"),
], ids=["other-client-id", "secret-method", "secret", "backchannel", "http-jwks-uri", "grant",
        "redirect-fragment", "too-large"])
def test_a_document_the_provider_cannot_trust_is_refused(http, documents, change, reason,
                                                          caplog):
    client_id = documents.url()
    documents.publish(**change)
    refused(browser(http, client_id).authorize(), reason)
    assert any("client_metadata.refused" in r.getMessage() for r in caplog.records
               if r.name == "idp.audit")


@pytest.mark.parametrize(("answer", "reason"), [
    ((404, {}, b"{}"), "HTTP 404"),
    ((302, {"Location": "/elsewhere.json"}, b""), "HTTP 302"),  # not followed
    ((200, {}, b"<html>"), "not JSON"),
    ((200, {}, b"[1]"), "must be a JSON object"),
    ((200, {}, b"[" * 3000), "not JSON"),  # past the parser's depth: RecursionError
    ((200, {"Content-Length": "999999"}, b"{}"), "more than 5120 bytes"),
    # A digit, but not 0-9 (it was a 500): the length is ignored, the body read to its end.
    ((200, {"Content-Length": "\u00b2"}, b"{}"), "client_id must be its URL"),
])
def test_a_document_that_cannot_be_read_is_refused(http, documents, answer, reason):
    documents.answers["/client.json"] = answer
    documents.publish("/elsewhere.json")
    refused(browser(http, documents.url()).authorize(), reason)
    assert "/elsewhere.json" not in documents.requests


def test_a_server_that_drips_its_answer_is_cut_off(http, documents, monkeypatch):
    monkeypatch.setattr(metadata_documents, "TIMEOUT_SECONDS", 0.5)
    documents.publish()
    documents.delay = 0.05  # 20 bytes a second: the document would take 10 s
    started = time.monotonic()
    refused(browser(http, documents.url()).authorize(), "too slow")
    assert time.monotonic() - started < 3


def test_a_failure_is_remembered_for_a_while(http, documents, monkeypatch):
    client_id = documents.url()
    for _ in range(3):
        refused(browser(http, client_id).authorize(), "HTTP 404")
    assert documents.requests == ["/client.json"]  # not fetched for every request
    documents.publish()
    later = time.monotonic() + metadata_documents.RETRY_SECONDS
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert browser(http, client_id).authorize().status_code == 302


@pytest.mark.parametrize(("client_id", "reason"), [
    ("https://127.0.0.1:1", "must name a host and a path"),
    ("https://127.0.0.1:1/a/../client.json", "no . or .. path segments"),
    ("https://127.0.0.1:1/./client.json", "no . or .. path segments"),
    ("https://user:pw@127.0.0.1:1/client.json", "no fragment, user name or password"),
    ("https://127.0.0.1:1/client.json#x", "no fragment, user name or password"),
    ("https://127.0.0.1:99999/client.json", "is not a URL"),
    # Longer than the column: no client has it (server.could_be_client_id).
    ("https://127.0.0.1:1/" + "c" * 240, "does not exist on this server"),
])
def test_a_client_id_url_the_draft_forbids_is_not_fetched(http, client_id, reason):
    refused(browser(http, client_id).authorize(), reason)


def test_loopback_and_private_addresses_are_never_called(tmp_path, signing_keys_dir, documents):
    """Without the operator's OUTBOUND_PRIVATE_NETWORKS, a client_id leading into the
    provider's own network is refused before any connection is made."""
    http = make_app(tmp_path, signing_keys_dir, CLIENT_METADATA_DOCUMENTS=True).test_client()
    for client_id in (documents.publish(), f"https://localhost:{documents.port}/client.json",
                      "https://169.254.169.254/latest/meta-data.json",
                      "https://10.0.0.1/client.json", "https://[::1]/client.json"):
        refused(browser(http, client_id).authorize(), "not on the public internet")
    assert documents.requests == []


@pytest.mark.parametrize(("address", "allowed"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("255.255.255.255", False), ("::1", False), ("fe80::1%eth0", False), ("fd00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::", False), ("ff02::1", False),
    # IPv6 addresses that lead to an IPv4 one: NAT64, 6to4, Teredo (its client's address).
    ("64:ff9b::7f00:1", False), ("64:ff9b::808:808", True), ("2002:7f00:1::1", False),
    ("2002:a00:1::1", False), ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),
])
def test_which_addresses_a_client_may_lead_the_provider_to(address, allowed):
    assert outbound.may_call(address) is allowed


def test_the_operator_may_allow_a_private_network():
    allowed = outbound.parse_networks("10.20.0.0/16 fd00::/8")
    assert outbound.may_call("10.20.3.4", allowed) and outbound.may_call("fd00::5", allowed)
    assert not outbound.may_call("10.21.0.1", allowed)
    with pytest.raises(ValueError, match="not an IP network"):
        outbound.parse_networks("10.0.0.0/8 intranet")


def test_a_url_without_a_path_asks_for_the_root(app, documents):
    """The request line needs a target: https://host is GET /, and a form is POSTed there."""
    documents.answers["/"] = (200, {}, b"[]")
    with app.test_request_context():
        assert outbound.fetch_from_outside(documents.url(""), max_bytes=10, timeout=5).body \
            == b"[]"
    allowed = outbound.parse_networks("127.0.0.1/32")
    assert outbound.post_form_outside(documents.url(""), {"a": "b"}, timeout=5,
                                      allowed=allowed) == 200
    assert documents.requests == ["/"] and documents.posts[0][0] == "/"


def test_the_host_is_resolved_once_and_its_name_verified(http, documents, monkeypatch):
    """DNS rebinding: the name resolves to an allowed address when checked, then to another.
    The provider connects to the address it checked, and still verifies the certificate
    against the name."""
    real_getaddrinfo = socket.getaddrinfo
    answers = {"client.test": ["127.0.0.1", "192.0.2.1"], "other.test": ["127.0.0.1"] * 2}

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return real_getaddrinfo(address, port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    client_id = documents.publish(host="client.test")
    assert browser(http, client_id).authorize().status_code == 302
    # A name the certificate does not hold: the connection is refused, as for any site.
    refused(browser(http, documents.publish("/other.json", host="other.test")).authorize(),
            "TLS connection failed")


def test_the_operator_may_accept_documents_from_some_hosts_only(tmp_path, signing_keys_dir,
                                                                 documents):
    http = document_app(tmp_path, signing_keys_dir,
                        CLIENT_METADATA_DOCUMENT_HOSTS="agents.example .trusted.example "
                                                       "127.0.0.1").test_client()
    assert browser(http, documents.publish()).authorize().status_code == 302
    for client_id in ("https://evil.example/client.json",
                      "https://agents.example.evil.example/client.json"):
        refused(browser(http, client_id).authorize(), "not on a host this provider accepts")
    assert metadata_documents._host_matches("a.b.trusted.example", ".trusted.example")
    assert not metadata_documents._host_matches("trusted.example", ".trusted.example")


def test_a_client_with_keys_authenticates_with_them(app, http, user, documents):
    """A document may name no secret; a client that authenticates uses private_key_jwt with
    its keys inline."""
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="agent-1")
    client_id = documents.publish(token_endpoint_auth_method="private_key_jwt",
                                  jwks={"keys": [key.export_public(as_dict=True)]})
    flow = browser(http, client_id)
    code = flow.code()
    without_key = flow.exchange(code)
    assert without_key.status_code in (400, 401)
    assert without_key.get_json()["error"] == "invalid_client"

    response = exchange_with_assertion(http, client_id, key)
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        assert Client.by_client_id(client_id).token_endpoint_auth_method == "private_key_jwt"


def client_assertion(client_id: str, key: jwk.JWK) -> dict[str, str]:
    """The form fields of a private_key_jwt authentication (RFC 7523) signed by `key`."""
    assertion = jwt.JWT(header={"alg": "ES256", "kid": key.get("kid")}, claims={
        "iss": client_id, "sub": client_id, "aud": "http://127.0.0.1:5000",
        "jti": secrets.token_urlsafe(16), "exp": int(time.time()) + 60})
    assertion.make_signed_token(key)
    return {"client_assertion": assertion.serialize(),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


def exchange_with_assertion(http, client_id: str, key: jwk.JWK, redirect_uri: str = CALLBACK,
                            scope: str = "openid profile email"):
    """The code flow, the client authenticating at /token with an assertion signed by `key`."""
    flow = browser(http, client_id, redirect_uri)
    return flow.exchange(flow.code(scope=scope), **client_assertion(client_id, key))


def publish_keys(documents, key: jwk.JWK) -> str:
    documents.answers["/jwks.json"] = (200, {}, json.dumps(
        {"keys": [key.export_public(as_dict=True)]}).encode())
    return documents.url("/jwks.json")


def register_with_jwks_uri(http, jwks_uri: str, **metadata) -> str:
    response = http.post("/register", json={
        "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri, **metadata})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["jwks_uri"] == jwks_uri
    return response.get_json()["client_id"]


def test_a_client_publishes_its_keys_at_a_jwks_uri_in_its_document(http, user, documents):
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="agent-2")
    client_id = documents.publish(token_endpoint_auth_method="private_key_jwt",
                                  jwks_uri=publish_keys(documents, key))
    assert exchange_with_assertion(http, client_id, key).status_code == 200
    assert documents.requests == ["/client.json", "/jwks.json"]


def test_a_self_registered_client_publishes_its_keys_at_a_jwks_uri(
        tmp_path, signing_keys_dir, documents):
    app = document_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open")
    add_user(app)
    http = app.test_client()
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="app-1")
    client_id = register_with_jwks_uri(http, publish_keys(documents, key))
    response = exchange_with_assertion(http, client_id, key)
    assert response.status_code == 200, response.get_json()
    assert documents.requests == ["/jwks.json"]


def test_oidcc_registration_jwks_uri_and_refresh_token_rp_key_rotation(
        tmp_path, signing_keys_dir, documents):
    """The Dynamic OP plan's two modules: a client registers a jwks_uri, signs in with a key
    published there, then publishes a new key in its place and refreshes with it (the suite
    waits 60 s; here the keys fetched are made that old)."""
    app = document_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open")
    add_user(app)
    http = app.test_client()
    old_key, new_key = (jwk.JWK.generate(kty="EC", crv="P-256", kid=kid) for kid in "12")
    jwks_uri = publish_keys(documents, old_key)
    client_id = register_with_jwks_uri(http, jwks_uri,
                                       grant_types=["authorization_code", "refresh_token"])
    tokens = exchange_with_assertion(http, client_id, old_key,
                                     scope="openid offline_access").get_json()

    publish_keys(documents, new_key)
    kept = client_keys._kept[jwks_uri, True]  # True: the client named the URI itself
    client_keys._kept[jwks_uri, True] = dataclasses.replace(
        kept, fetched_at=kept.fetched_at - 60, tried_at=kept.tried_at - 60)
    response = http.post("/token", data={"grant_type": "refresh_token",
                                         "refresh_token": tokens["refresh_token"],
                                         **client_assertion(client_id, new_key)})
    assert response.status_code == 200, response.get_json()
    assert documents.requests == ["/jwks.json", "/jwks.json"]  # fetched again for the new kid


@pytest.fixture
def open_registration(tmp_path, signing_keys_dir):
    """Open registration, no private network allowed. Made before caplog: the migrations'
    logging set-up replaces the root logger's handlers, caplog's among them."""
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open")


def test_a_jwks_uri_a_client_names_never_leads_into_the_providers_network(
        open_registration, documents, caplog):
    """Registered by the client itself, not by the operator: fetched as its metadata document
    would be, from public addresses only, whatever OUTBOUND_PRIVATE_NETWORKS does not allow."""
    app = open_registration
    add_user(app)
    http = app.test_client()
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="app-1")
    client_id = register_with_jwks_uri(http, publish_keys(documents, key))
    response = exchange_with_assertion(http, client_id, key)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    assert documents.requests == []
    assert any("client_auth.jwks_unavailable" in r.getMessage()
               and "not on the public internet" in r.getMessage()
               for r in caplog.records if r.name == "idp.audit")


def test_a_client_whose_document_is_gone_stops_at_its_next_token_request(
        app, http, user, documents):
    client_id = documents.publish(grant_types=["authorization_code", "refresh_token"])
    flow = browser(http, client_id)
    tokens = flow.exchange(flow.code(scope="openid offline_access")).get_json()
    assert "refresh_token" in tokens
    del documents.answers["/client.json"]
    expire(app, client_id)
    response = http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                         "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 400 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "error": "invalid_client",
        "error_description": "Its metadata document could not be fetched: HTTP 404."}


def test_each_address_may_have_only_so_many_documents_fetched(tmp_path, signing_keys_dir,
                                                               documents):
    """A fetch registers a client, and counts as a registration at /register does."""
    http = document_app(tmp_path, signing_keys_dir,
                        CLIENT_REGISTRATION_MAX_PER_IP=2).test_client()
    for path in ("/one.json", "/two.json"):
        assert browser(http, documents.publish(path)).authorize().status_code == 302
    response = browser(http, documents.publish("/three.json")).authorize()
    assert response.status_code == 429 and response.location is None
    assert "Too many client metadata documents" in page_text(response.get_data(as_text=True))
    assert documents.requests == ["/one.json", "/two.json"]
    # A client already known is not fetched, so not counted.
    assert browser(http, documents.url("/one.json")).authorize().status_code == 302


@pytest.fixture
def one_fetch_an_address(tmp_path, signing_keys_dir):
    """Made before the test, so that the migrations' logging set-up does not undo caplog's."""
    return document_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION_MAX_PER_IP=1)


def test_a_known_client_whose_refetch_is_over_the_limit_keeps_its_metadata_a_while(
        one_fetch_an_address, documents, caplog):
    """Its users are not refused for other clients' fetches from their address (a shared
    office address, say): what the document said holds as while its server is down."""
    caplog.set_level(logging.INFO)
    app = one_fetch_an_address
    http = app.test_client()
    client_id = documents.publish("/one.json")
    assert browser(http, client_id).authorize().status_code == 302
    expire(app, client_id)
    assert browser(http, client_id).authorize().status_code == 302
    assert documents.requests == ["/one.json"]  # the limit spent: not fetched again
    assert any('"kept_for_now": true' in r.getMessage() and "client_metadata.throttled"
               in r.getMessage() for r in caplog.records if r.name == "idp.audit")
    expire(app, client_id, seconds_ago=metadata_documents.STALE_MAX_SECONDS + 1)
    response = browser(http, client_id).authorize()
    assert response.status_code == 429 and response.location is None


def test_a_document_client_pushes_its_request_to_par(http, user, documents):
    client_id = documents.publish()
    flow = browser(http, client_id)
    pushed = http.post("/par", data={**flow.authorize_params(), "client_id": client_id})
    assert pushed.status_code == 201, pushed.get_json()
    response = http.get("/authorize", query_string={
        "client_id": client_id, "request_uri": pushed.get_json()["request_uri"]})
    assert response.status_code == 302 and "/login" in response.location
    assert documents.requests == ["/client.json"]


@pytest.mark.parametrize(("jwks_uri", "reason"), [
    ("https://127.0.0.1:99999/jwks.json", "the URL is not valid"),
    ("https://%zz/jwks.json", "the host name does not resolve"),
    ("https://no-such-host.invalid/jwks.json", "the host name does not resolve"),
])
def test_a_jwks_uri_that_cannot_be_fetched_is_a_clear_error(open_registration, caplog,
                                                            jwks_uri, reason):
    add_user(open_registration)
    http = open_registration.test_client()
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="app-1")
    response = exchange_with_assertion(http, register_with_jwks_uri(http, jwks_uri), key)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    assert any(reason in r.getMessage() for r in caplog.records if r.name == "idp.audit")


JUNK = [None, True, 0, -1, 1e308, "", "x", "\x00", "\ud800", "é☃", "https://a.example/cb",
        "http://127.0.0.1/cb", "none", "private_key_jwt", "openid", [], [None], ["x"], [[]],
        [{"kty": "EC"}], {}, {"keys": []}, {"keys": [{}]}, "x" * 3000]
FIELDS = ["client_id", "client_name", "redirect_uris", "post_logout_redirect_uris",
          "grant_types", "response_types", "scope", "token_endpoint_auth_method", "jwks",
          "jwks_uri", "subject_type", "policy_uri", "tos_uri", "dpop_bound_access_tokens",
          "client_secret", "logo_uri", "backchannel_logout_uri", "sector_identifier_uri",
          "request_uris", "require_signed_request_object", "request_object_signing_alg",
          "userinfo_signed_response_alg"]


def test_no_document_makes_a_500(tmp_path, signing_keys_dir, documents):
    """A seeded fuzz: documents whose fields hold every kind of wrong value, one to three
    fields at a time, each answered at /authorize by a redirect or an error page."""
    http = document_app(tmp_path, signing_keys_dir,
                        CLIENT_REGISTRATION_MAX_PER_IP=1_000_000).test_client()
    generator = random.Random(20261203)
    answers = []
    for number in range(200):
        path = f"/fuzz-{number}.json"
        url = documents.url(path)
        document = {"client_id": url, "redirect_uris": [CALLBACK]}
        for name in generator.sample(FIELDS, generator.randint(1, 3)):
            document[name] = generator.choice(JUNK)
        body = json.dumps(document).encode()
        documents.answers[path] = (200, {}, body)
        response = browser(http, url).authorize()
        assert response.status_code in (302, 400), (response.status_code, document)
        assert response.status_code == 400 or "/login" in response.location
        answers.append(response.status_code)
    assert answers.count(302) >= 5 and answers.count(400) >= 100  # both kinds were tried


def test_the_user_removes_a_document_clients_access_from_the_account_page(http, user,
                                                                            documents):
    """Its client_id is a URL, slashes and all: the account page's form must still name it."""
    client_id = documents.publish(grant_types=["authorization_code", "refresh_token"])
    flow = browser(http, client_id)
    tokens = flow.exchange(flow.code(scope="openid offline_access")).get_json()
    account = http.get("/account").get_data(as_text=True)
    form = re.search(r'<li data-client-id="([^"]+)">.*?<form method="post" action="([^"]+)">'
                     r'(.*?)</form>', account, re.S)
    assert html.unescape(form.group(1)) == client_id
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(3)))
    response = http.post(html.unescape(form.group(2)),
                         data={name: html.unescape(value) for name, value in fields.items()})
    assert response.status_code == 303
    assert 'id="no-apps"' in http.get("/account").get_data(as_text=True)
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                          "refresh_token": tokens["refresh_token"]})
    assert refreshed.get_json()["error"] == "invalid_grant"


def test_failures_of_two_long_client_ids_alike_at_first_are_counted_apart():
    first, second = (f"https://agents.example/{'x' * 200}/{name}.json" for name in "ab")
    address = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"  # as long as an address gets
    assert throttle_key(first, address) != throttle_key(second, address)
    assert len(throttle_key(first, address)) <= 255  # the counter's key column


def test_while_a_clients_server_is_down_its_metadata_holds_for_an_hour(app, http, user,
                                                                        documents):
    """A brief outage of the client's web server does not stop its users' refreshes; a
    document that is gone (4xx) stops them at once (the test before)."""
    client_id = documents.publish(grant_types=["authorization_code", "refresh_token"])
    flow = browser(http, client_id)
    tokens = flow.exchange(flow.code(scope="openid offline_access")).get_json()
    documents.answers["/client.json"] = (503, {}, b"")
    expire(app, client_id)

    def refresh(refresh_token):
        return http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                         "refresh_token": refresh_token})

    refresh_token = tokens["refresh_token"]
    for _ in range(2):
        refreshed = refresh(refresh_token)
        assert refreshed.status_code == 200, refreshed.get_json()
        refresh_token = refreshed.get_json()["refresh_token"]
    assert documents.requests == ["/client.json", "/client.json"]  # tried again once

    expire(app, client_id, seconds_ago=metadata_documents.STALE_MAX_SECONDS + 1)
    response = refresh(refresh_token)
    assert response.get_json() == {"error": "invalid_client", "error_description":
                                   "Its metadata document could not be fetched: HTTP 503."}
