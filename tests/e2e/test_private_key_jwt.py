"""`private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9) over real HTTP: a
service registered with its public keys gets tokens with a JWT signed by its private key, as
Authlib's client sends it; a replayed, foreign, long-lived or misaddressed assertion, or a
secret, is refused. Keys come from a file, or from where the client publishes them."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
import warnings

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey

from idp.oauth import client_keys
from idp.oauth.client_assertion import claimed_subject

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "svc-1"})


def jwks_file(tmp_path, *keys, name="jwks.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return str(path)


@pytest.fixture
def service(provider, key, tmp_path):
    data = provider.idp("clients", "create", "--name", "Billing worker", "--grant-type",
                        "client_credentials", "--scope", "billing:read",
                        "--jwks-file", jwks_file(tmp_path, key))
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_method"] == "private_key_jwt"
    assert data["key_ids"] == ["svc-1"]
    return data["client_id"]


def assertion(provider, client_id, key, alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": provider.metadata["issuer"],
              "iat": now, "exp": now + 60, "jti": secrets.token_urlsafe(16), **overrides}
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def token_request(provider, signed: str, **form):
    return provider.post("token_endpoint", None, grant_type="client_credentials",
                         client_assertion_type=ASSERTION_TYPE, client_assertion=signed, **form)


def assert_invalid_client(response):
    # RFC 6749 §5.2: 401 is required only where the client authenticated with a header
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["Cache-Control"] == "no-store"


def test_discovery_lists_the_method_and_its_algorithms(provider):
    metadata = provider.metadata
    for endpoint in ("token", "introspection", "revocation"):
        assert "private_key_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "RS256" in metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert "HS256" not in metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]


def test_a_standard_client_library_gets_a_token_with_its_key(provider, service, key):
    session = OAuth2Session(service, key.as_pem(private=True).decode(),
                            token_endpoint_auth_method="private_key_jwt", scope="billing:read")
    session.register_client_auth_method(PrivateKeyJWT(provider.metadata["token_endpoint"]))
    token = session.fetch_token(provider.metadata["token_endpoint"],
                                grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "billing:read"
    # the same key authenticates it at introspection
    introspected = provider.post("introspection_endpoint", None, token=token["access_token"],
                                 client_assertion_type=ASSERTION_TYPE,
                                 client_assertion=assertion(provider, service, key))
    assert introspected.json()["active"] is True and introspected.json()["client_id"] == service


def test_an_assertion_is_accepted_once(provider, service, key):
    signed = assertion(provider, service, key)
    assert token_request(provider, signed).status_code == 200
    assert_invalid_client(token_request(provider, signed))


@pytest.mark.parametrize("overrides", [
    {"aud": "https://elsewhere.example.com"},  # another server's
    {"exp": int(time.time()) - 120},  # expired
    {"exp": int(time.time()) + 7200},  # lives too long to be remembered as used
    {"iss": "someone-else"},  # iss is not sub
    {"jti": None},  # nothing to recognise a replay by
])
def test_a_misaddressed_expired_or_unrecognisable_assertion_is_refused(
        provider, service, key, overrides):
    signed = assertion(provider, service, key, **overrides)
    assert_invalid_client(token_request(provider, signed))


def test_an_assertion_signed_by_another_key_or_with_hmac_is_refused(provider, service, key):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "svc-1"})
    assert_invalid_client(token_request(provider, assertion(provider, service, stranger)))
    # HMAC keyed with the public key's bytes: the classic algorithm confusion
    now = int(time.time())
    header = {"alg": "HS256", "kid": "svc-1"}
    claims = {"iss": service, "sub": service, "aud": provider.metadata["issuer"], "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(16)}
    signing_input = ".".join(b64(json.dumps(part).encode()) for part in (header, claims))
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    assert_invalid_client(token_request(provider, f"{signing_input}.{b64(mac)}"))


def small_rsa_jwk() -> dict:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    return {"kty": "RSA", "n": b64(numbers.n.to_bytes(128, "big")),
            "e": b64(numbers.e.to_bytes(3, "big"))}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_audience_may_be_the_token_endpoint_and_client_id_must_match(
        provider, service, key):
    at_endpoint = assertion(provider, service, key, aud=provider.metadata["token_endpoint"])
    assert token_request(provider, at_endpoint).status_code == 200
    assert_invalid_client(token_request(provider, assertion(provider, service, key),
                                        client_id="another-client"))


def test_a_key_client_has_no_secret_and_a_secret_client_no_keys(provider, service, key,
                                                                 tmp_path):
    assert_invalid_client(provider.post("token_endpoint", None, grant_type="client_credentials",
                                        client_id=service, client_secret="guess"))
    with_secret = provider.register("Secret service", "--grant-type", "client_credentials",
                                    "--scope", "")
    assert_invalid_client(token_request(provider, assertion(provider, with_secret.client_id,
                                                            key)))
    refused = provider.app.test_cli_runner().invoke(args=["clients", "rotate-secret", service])
    assert refused.exit_code != 0 and "private_key_jwt" in refused.output


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])  # RFC 9864's name, and the old one
def test_an_ed25519_key_signs_under_either_name(provider, tmp_path, alg):
    ed_key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
    client_id = provider.idp("clients", "create", "--name", "Edwards", "--grant-type",
                             "client_credentials", "--scope", "",
                             "--jwks-file", jwks_file(tmp_path, ed_key))["client_id"]
    with warnings.catch_warnings():  # joserfc warns when signing with "EdDSA"
        warnings.simplefilter("ignore", SecurityWarning)
        signed = assertion(provider, client_id, ed_key, alg=alg)
    assert token_request(provider, signed).status_code == 200


def test_keys_rotate_without_a_gap(provider, service, key, tmp_path):
    new_key = ECKey.generate_key("P-256", parameters={"kid": "svc-2"})
    both = provider.idp("clients", "update", service, "--jwks-file",
                        jwks_file(tmp_path, key, new_key, name="both.json"))
    assert both["key_ids"] == ["svc-1", "svc-2"]
    assert token_request(provider, assertion(provider, service, key)).status_code == 200
    assert token_request(provider, assertion(provider, service, new_key,
                                             alg="ES256")).status_code == 200
    provider.idp("clients", "update", service, "--jwks-file",
                 jwks_file(tmp_path, new_key, name="new.json"))
    assert_invalid_client(token_request(provider, assertion(provider, service, key)))


@pytest.mark.parametrize("content, message", [
    ("not json", "not a readable JSON file"),
    ('{"keys": []}', "not a JWKS"),
    ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "private or symmetric"),
    ('{"keys": [{"kty": "RSA"}]}', "cannot be read"),
    (json.dumps({"keys": [small_rsa_jwk()]}), "not RSA of 2048 bits"),
    (json.dumps({"keys": [ECKey.generate_key("secp256k1").as_dict(private=False)]}),
     "not RSA of 2048 bits or more, EC on P-256"),
])
def test_the_cli_refuses_keys_it_should_not_trust(provider, tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    result = provider.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "X", "--grant-type", "client_credentials",
        "--jwks-file", str(path)])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_the_cli_refuses_a_private_key(provider, key, tmp_path):
    path = tmp_path / "private.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    result = provider.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "X", "--grant-type", "client_credentials",
        "--jwks-file", str(path)])
    assert result.exit_code != 0 and "register only the public keys" in result.output


def test_failed_assertions_are_throttled_like_wrong_secrets(provider, service, key):
    """The throttle counts failures per claimed client and address; an assertion claims its
    client in `sub`."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "svc-1"})
    limit = provider.app.config["CLIENT_AUTH_MAX_FAILURES"]
    statuses = [token_request(provider, assertion(provider, service, stranger)).status_code
                for _ in range(limit + 1)]
    assert set(statuses[:limit]) <= {400, 401}
    assert statuses[limit] == 429
    # even the right key waits out the window from this address
    assert token_request(provider, assertion(provider, service, key)).status_code == 429


@pytest.mark.parametrize("text", [None, "", "a.b", "a.b.c", "a.!!!.c", "a.W10.c",
                                  "a.eyJzdWIiOjV9.c", "a.//79.c"])
def test_a_garbled_assertion_claims_no_subject(text):
    assert claimed_subject(text) is None


class KeyServer:
    """The client's own web server, publishing its public keys at /jwks.json on a loopback
    port; `body` is what it serves (None: it answers 503), `hits` how often it was asked."""

    def __init__(self, *keys):
        self.publish(*keys)
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                body = server.body
                self.send_response(200 if body is not None else 503)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, *keys):
        self.body = json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()


@pytest.fixture
def key_server(key):
    client_keys.forget()
    server = KeyServer(key)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def age_the_cached_keys(key_server, seconds: float) -> None:
    """As if this worker had fetched the client's keys `seconds` ago."""
    kept = client_keys._kept[key_server.url, False]  # False: registered by the operator
    client_keys._kept[key_server.url, False] = dataclasses.replace(
        kept, fetched_at=kept.fetched_at - seconds, tried_at=kept.tried_at - seconds)


@pytest.fixture
def published_service(provider, key_server):
    data = provider.idp("clients", "create", "--name", "Payroll worker", "--grant-type",
                        "client_credentials", "--scope", "", "--jwks-uri", key_server.url)
    assert data["client_secret"] is None and data["jwks_uri"] == key_server.url
    assert data["token_endpoint_auth_method"] == "private_key_jwt"
    return data["client_id"]


def test_keys_published_at_a_jwks_uri_are_fetched_once_and_kept(
        provider, published_service, key, key_server):
    hits_at_registration = key_server.hits  # the CLI checked the URI once
    for _ in range(3):
        signed = assertion(provider, published_service, key)
        assert token_request(provider, signed).status_code == 200
    assert key_server.hits == hits_at_registration + 1


def test_a_key_the_client_has_just_published_is_fetched_at_once(
        provider, published_service, key, key_server):
    assert token_request(provider, assertion(provider, published_service, key)).status_code == 200
    new_key = ECKey.generate_key("P-256", parameters={"kid": "svc-2"})
    key_server.publish(key, new_key)
    age_the_cached_keys(key_server, client_keys.REFETCH_MIN_SECONDS)
    signed = assertion(provider, published_service, new_key, alg="ES256")
    assert token_request(provider, signed).status_code == 200  # an unknown kid: fetched again
    # Made-up kids do not make the provider fetch again and again.
    hits = key_server.hits
    for number in range(3):
        stranger = RSAKey.generate_key(2048, parameters={"kid": f"made-up-{number}"})
        assert_invalid_client(token_request(provider, assertion(provider, published_service,
                                                                 stranger)))
    assert key_server.hits == hits


def test_a_client_server_that_is_down_does_not_lock_out_a_client_already_known(
        provider, published_service, key, key_server, caplog):
    assert token_request(provider, assertion(provider, published_service, key)).status_code == 200
    key_server.body = None  # 503 from now on
    age_the_cached_keys(key_server, client_keys.CACHE_SECONDS)
    hits = key_server.hits
    for _ in range(3):
        signed = assertion(provider, published_service, key)
        assert token_request(provider, signed).status_code == 200
    assert key_server.hits == hits + 1  # it tried once, and kept the keys it had

    client_keys.forget()  # a worker that never fetched them
    for _ in range(2):
        signed = assertion(provider, published_service, key)
        assert_invalid_client(token_request(provider, signed))
    assert key_server.hits == hits + 2  # the second waited for no timeout: it did not try
    assert "client_auth.jwks_unavailable" in caplog.text and "HTTP 503" in caplog.text


@pytest.mark.parametrize("body, reason", [
    (b"<html>", "not JSON"),
    (b"[" * 5000, "not JSON"),  # past the parser's depth: RecursionError
    (b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "private or symmetric"),
    (b" " * (70 * 1024), "bytes"),
])
def test_keys_that_should_not_be_trusted_are_not_used(
        provider, published_service, key, key_server, caplog, body, reason):
    client_keys.forget()
    key_server.body = body
    assert_invalid_client(token_request(provider, assertion(provider, published_service, key)))
    assert reason in caplog.text


@pytest.mark.parametrize("uri, message", [
    ("http://keys.example.com/jwks.json", "http on a non-loopback host"),
    ("https://keys.example.com/jwks.json#x", "fragment"),
    ("http://127.0.0.1:9/jwks.json", "does not serve usable keys now"),
])
def test_the_cli_refuses_a_jwks_uri_it_cannot_use(provider, uri, message):
    result = provider.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "X", "--grant-type", "client_credentials",
        "--jwks-uri", uri])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_client_moves_between_inline_keys_and_a_jwks_uri(
        provider, service, key, key_server, tmp_path):
    moved = provider.idp("clients", "update", service, "--jwks-uri", key_server.url)
    assert moved["jwks_uri"] == key_server.url and moved["key_ids"] == []
    assert token_request(provider, assertion(provider, service, key)).status_code == 200
    back = provider.idp("clients", "update", service, "--jwks-file", jwks_file(tmp_path, key))
    assert back["jwks_uri"] is None and back["key_ids"] == ["svc-1"]
    both = provider.app.test_cli_runner().invoke(args=[
        "clients", "update", service, "--jwks-uri", key_server.url,
        "--jwks-file", jwks_file(tmp_path, key)])
    assert both.exit_code != 0 and "exclude each other" in both.output


def test_fapi2_ensure_signed_client_assertion_with_rs256_fails(provider, service, key):
    """A client pinned to one algorithm (token_endpoint_auth_signing_alg, here PS256 as FAPI
    2.0 wants) has its assertions in any other refused."""
    provider.idp("clients", "update", service, "--token-endpoint-auth-signing-alg", "PS256")
    assert_invalid_client(token_request(provider, assertion(provider, service, key)))
    assert token_request(provider, assertion(provider, service, key, alg="PS256")
                         ).status_code == 200
    provider.idp("clients", "update", service, "--token-endpoint-auth-signing-alg", "any")
    assert token_request(provider, assertion(provider, service, key)).status_code == 200
