"""Request objects (RFC 9101, OIDC Core §6) over real HTTP: a client with keys signs its
authorization request, sends it by value or publishes it at a request_uri it registered, and
only the object's parameters count; named after the conformance suite's modules where one
applies. Also signed UserInfo (oidcc-userinfo-rs256)."""

from __future__ import annotations

import json
import random
import secrets
import time
import warnings
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jws
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from jwskate import Jwk
from requests_oauth2client import DPoPKey
from requests_oauth2client import DPoPToken
from requests_oauth2client import OAuth2Client
from requests_oauth2client import PrivateKeyJwt

from idp.models import PushedRequest
from idp.models import db
from idp.oauth import request_objects

from ..helpers import pkce_pair
from ..helpers import query_of
from .test_oidc_client import CALLBACK
from .test_oidc_client import sign_in_and_consent
from .test_private_key_jwt import ASSERTION_TYPE
from .test_private_key_jwt import assertion
from .test_private_key_jwt import jwks_file


@pytest.fixture
def live_config() -> dict:
    # The request objects' server is on loopback, which only an operator's setting allows.
    return {"OUTBOUND_PRIVATE_NETWORKS": "127.0.0.1/32"}


@pytest.fixture
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rp-1"})


@pytest.fixture
def rp(provider, key, tmp_path, documents):
    """A web app with keys (private_key_jwt), which publishes request objects at /ro."""
    data = provider.idp("clients", "create", "--name", "Signing App", "--redirect-uri", CALLBACK,
                        "--jwks-file", jwks_file(tmp_path, key),
                        "--request-uri", documents.url("/ro"), "--signed-userinfo")
    assert data["request_uris"] == [documents.url("/ro")]
    return data["client_id"]


def request_params(client_id: str, challenge: str, **extra) -> dict:
    return {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
            "scope": "openid profile", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def request_object(provider, params: dict, key, alg="RS256", **claims) -> str:
    now = int(time.time())
    claims = {"iss": params["client_id"], "aud": provider.metadata["issuer"], "iat": now,
              "nbf": now, "exp": now + 300, **params, **claims}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "oauth-authz-req+jwt"}, claims, key,
                      algorithms=[alg])


def authorize_url(provider, **query) -> str:
    return f"{provider.metadata['authorization_endpoint']}?{urlencode(query)}"


def redeem(provider, client_id, key, callback: str, verifier: str) -> dict:
    response = provider.post("token_endpoint", None, grant_type="authorization_code",
                             code=query_of(callback)["code"], redirect_uri=CALLBACK,
                             code_verifier=verifier, client_assertion_type=ASSERTION_TYPE,
                             client_assertion=assertion(provider, client_id, key))
    assert response.status_code == 200, response.text
    return response.json()


def id_token_claims(provider, tokens: dict) -> dict:
    keys = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    return jwt.decode(tokens["id_token"], keys).claims


def error_page(response) -> str:
    """An error shown to the user, never sent to a redirect URI the object named."""
    assert response.status_code == 400, response.text
    assert "Location" not in response.headers
    return response.text


def test_a_request_object_too_large_for_the_cookie_waits_in_the_database(provider, alice, key,
                                                                         tmp_path):
    """Its parameters, as verified, wait as a pushed request's would; the browser comes back
    from sign-in with the request_uri alone, which a client that must sign every request
    (FAPI 2.0 Message Signing) accepts as it accepts a pushed one."""
    client_id = provider.idp("clients", "create", "--name", "Bank App", "--redirect-uri",
                             CALLBACK, "--jwks-file", jwks_file(tmp_path, key),
                             "--require-signed-request-object")["client_id"]
    verifier, challenge = pkce_pair()
    params = request_params(client_id, challenge, state=secrets.token_urlsafe(2500))
    url = authorize_url(provider, client_id=client_id, response_type="code", scope="openid",
                        request=request_object(provider, params, key))
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert query_of(callback)["state"] == params["state"]
    with provider.app.app_context():
        [parked] = db.session.scalars(db.select(PushedRequest)).all()
        assert "request" not in parked.params and parked.params["state"] == params["state"]
    tokens = redeem(provider, client_id, key, callback, verifier)
    assert id_token_claims(provider, tokens)["nonce"] == params["nonce"]


def test_discovery_offers_signed_request_objects_and_userinfo(provider):
    metadata = provider.metadata
    assert metadata["request_parameter_supported"] is True
    assert metadata["request_uri_parameter_supported"] is True
    assert metadata["require_request_uri_registration"] is True
    assert "RS256" in metadata["request_object_signing_alg_values_supported"]
    assert not {"none", "HS256"} & set(metadata["request_object_signing_alg_values_supported"])
    assert metadata["userinfo_signing_alg_values_supported"] == ["RS256"]


def test_oidcc_request_object_signed_rs256_by_value(provider, alice, rp, key):
    verifier, challenge = pkce_pair()
    params = request_params(rp, challenge)
    # OIDC Core §6.1: response_type, client_id and scope are in the URL too.
    url = authorize_url(provider, client_id=rp, response_type="code", scope="openid",
                        request=request_object(provider, params, key))
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert callback.startswith(CALLBACK + "?")
    assert query_of(callback)["state"] == params["state"]
    tokens = redeem(provider, rp, key, callback, verifier)
    assert tokens["scope"] == "openid profile"
    assert id_token_claims(provider, tokens)["nonce"] == params["nonce"]


def test_oidcc_ensure_request_object_with_redirect_uri(provider, alice, rp, key):
    """Only the object's parameters count: a redirect_uri, state or scope added in the URL
    changes nothing."""
    verifier, challenge = pkce_pair()
    params = request_params(rp, challenge)
    url = authorize_url(provider, client_id=rp, response_type="code", scope="openid email",
                        state="from-the-url", redirect_uri="https://attacker.example/cb",
                        request=request_object(provider, params, key))
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert callback.startswith(CALLBACK + "?")
    assert query_of(callback)["state"] == params["state"]
    assert redeem(provider, rp, key, callback, verifier)["scope"] == "openid profile"


def test_oidcc_request_uri_signed_rs256(provider, alice, rp, key, documents):
    verifier, challenge = pkce_pair()
    params = request_params(rp, challenge, max_age=3600)
    documents.answers["/ro"] = (200, {"Content-Type": "application/oauth-authz-req+jwt"},
                                request_object(provider, params, key).encode())
    url = authorize_url(provider, client_id=rp, response_type="code", scope="openid",
                        request_uri=documents.url("/ro"))
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert query_of(callback)["state"] == params["state"]
    assert id_token_claims(provider, redeem(provider, rp, key, callback, verifier))["nonce"] \
        == params["nonce"]
    # Fetched for each pass through /authorize: before sign-in, and after it and consent.
    assert documents.requests == ["/ro"] * 3


def test_only_a_registered_request_uri_is_fetched(provider, rp, key, documents):
    documents.answers["/other"] = (200, {}, b"x")
    page = requests.get(authorize_url(provider, client_id=rp, request_uri=documents.url("/other")),
                        timeout=5, allow_redirects=False)
    assert "invalid_request_uri" in error_page(page)
    assert documents.requests == []


@pytest.mark.parametrize("status, body", [(404, b"{}"), (200, "é".encode()), (200, b"x.y.z")])
def test_a_request_uri_that_gives_no_object_is_an_error_page(provider, rp, documents, status,
                                                              body, caplog):
    documents.answers["/ro"] = (status, {}, body)
    page = requests.get(authorize_url(provider, client_id=rp, request_uri=documents.url("/ro")),
                        timeout=5, allow_redirects=False)
    assert "invalid_request" in error_page(page)
    if status != 200 or not body.isascii():  # not fetched as text at all: audited
        assert "request_object.fetch_failed" in caplog.text and rp in caplog.text


def unsigned(provider, params: dict) -> str:
    """oidcc-unsigned-request-object-...: refused, as discovery offers no `none`."""
    with warnings.catch_warnings():  # joserfc warns that "none" is deprecated
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode({"alg": "none"}, {**params, "iss": params["client_id"],
                                            "aud": provider.metadata["issuer"]}, None,
                          algorithms=["none"])


def other_key():
    return RSAKey.generate_key(2048, parameters={"kid": "rp-1"})


@pytest.mark.parametrize("change, error", [
    (lambda p, k: request_object(p["provider"], p["params"], other_key()),
     "invalid_request_object"),
    (lambda p, k: request_object(p["provider"], p["params"], k, iss="someone-else"),
     "invalid_request_object"),
    (lambda p, k: request_object(p["provider"], p["params"], k, aud="https://other.example"),
     "invalid_request_object"),
    (lambda p, k: request_object(p["provider"], p["params"], k, exp=int(time.time()) - 300),
     "invalid_request_object"),
    (lambda p, k: request_object(p["provider"], p["params"], k, client_id="someone-else"),
     "invalid_request"),
    (lambda p, k: request_object(p["provider"], p["params"], k, request="nested"),
     "invalid_request"),
    (lambda p, k: request_object(p["provider"], p["params"], k, max_age=True),
     "invalid_request_object"),
    (lambda p, k: request_object(p["provider"], p["params"], k, nonce="a\x00b"),
     "invalid_request_object"),
    (lambda p, k: unsigned(p["provider"], p["params"]), "invalid_request"),
    (lambda p, k: "not.a.jwt", "invalid_request_object"),
    (lambda p, k: "e30." + "W" * 3000 + ".sig", "invalid_request_object"),
])
def test_an_object_that_cannot_be_trusted_is_an_error_page(provider, rp, key, change, error):
    _, challenge = pkce_pair()
    signed = change({"provider": provider, "params": request_params(rp, challenge)}, key)
    page = requests.get(authorize_url(provider, client_id=rp, request=signed), timeout=5,
                        allow_redirects=False)
    assert error in error_page(page)


def test_an_object_deeply_nested_is_an_error_page(provider, rp, key):
    _, challenge = pkce_pair()
    header = {"alg": "RS256", "kid": key.kid}
    payload = json.dumps({"client_id": rp, "x": 0}).replace("0", "[" * 10000 + "]" * 10000)
    signed = jws.serialize_compact(header, payload.encode(), key)
    page = requests.post(provider.metadata["authorization_endpoint"], timeout=5,
                         allow_redirects=False, data={"client_id": rp, "request": signed})
    assert "invalid_request" in error_page(page)


def test_a_client_without_keys_cannot_send_an_object(provider, key):
    web_app = provider.register("Secret App", "--redirect-uri", CALLBACK)
    _, challenge = pkce_pair()
    signed = request_object(provider, request_params(web_app.client_id, challenge), key)
    page = requests.get(authorize_url(provider, client_id=web_app.client_id, request=signed),
                        timeout=5, allow_redirects=False)
    assert "no registered keys" in error_page(page)


def test_an_ec_key_and_a_registered_algorithm(provider, alice, tmp_path, documents):
    ec_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    client_id = provider.idp("clients", "create", "--name", "EC App", "--redirect-uri", CALLBACK,
                             "--jwks-file", jwks_file(tmp_path, ec_key))["client_id"]
    verifier, challenge = pkce_pair()
    params = request_params(client_id, challenge)
    url = authorize_url(provider, client_id=client_id,
                        request=request_object(provider, params, ec_key, alg="ES256"))
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert query_of(callback)["state"] == params["state"]


def test_a_client_that_requires_objects_gets_no_code_without_one(provider, alice, rp, key):
    provider.idp("clients", "update", rp, "--require-signed-request-object")
    _, challenge = pkce_pair()
    plain = requests.get(authorize_url(provider, **request_params(rp, challenge)), timeout=5,
                         allow_redirects=False)
    # The redirect URI is registered, so the client is told.
    assert plain.status_code == 302
    answer = query_of(plain.headers["Location"])
    assert answer["error"] == "invalid_request" and "code" not in answer
    pushed = provider.post("pushed_authorization_request_endpoint", None,
                           client_assertion_type=ASSERTION_TYPE,
                           client_assertion=assertion(provider, rp, key),
                           **request_params(rp, challenge))
    assert pushed.status_code == 400 and pushed.json()["error"] == "invalid_request"
    assert pushed.headers["Cache-Control"] == "no-store"


def test_an_object_pushed_to_par(provider, alice, rp, key):
    """RFC 9126 §3 (FAPI 2.0 message signing): the object goes to /par, the browser carries
    the request_uri, and the code is for the object's parameters."""
    provider.idp("clients", "update", rp, "--require-signed-request-object")
    verifier, challenge = pkce_pair()
    params = request_params(rp, challenge)
    pushed = provider.post("pushed_authorization_request_endpoint", None, client_id=rp,
                           client_assertion_type=ASSERTION_TYPE,
                           client_assertion=assertion(provider, rp, key),
                           request=request_object(provider, params, key))
    assert pushed.status_code == 201, pushed.text
    url = authorize_url(provider, client_id=rp, request_uri=pushed.json()["request_uri"])
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    assert query_of(callback)["state"] == params["state"]
    assert redeem(provider, rp, key, callback, verifier)["scope"] == "openid profile"

    tampered = provider.post("pushed_authorization_request_endpoint", None, client_id=rp,
                             client_assertion_type=ASSERTION_TYPE,
                             client_assertion=assertion(provider, rp, key),
                             request=request_object(provider, params, other_key()))
    assert tampered.status_code == 400 and tampered.json()["error"] == "invalid_request_object"


def test_oidcc_userinfo_rs256(provider, alice, rp, key):
    """A client registered for it gets /userinfo as a JWT signed by the provider's key, named
    by its kid, with iss and aud (OIDC Core §5.3.2); checked here by jwcrypto."""
    verifier, challenge = pkce_pair()
    params = request_params(rp, challenge)
    url = authorize_url(provider, request=request_object(provider, params, key), client_id=rp)
    tokens = redeem(provider, rp, key, sign_in_and_consent(requests.Session(), provider.url, url),
                    verifier)
    response = provider.userinfo(tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jwt"
    assert response.headers["Cache-Control"] == "no-store"
    keys = jwcrypto_jwk.JWKSet.from_json(requests.get(provider.metadata["jwks_uri"],
                                                      timeout=5).text)
    signed = jwcrypto_jwt.JWT(jwt=response.text, key=keys, algs=["RS256"])
    claims = jwcrypto_jwt.json_decode(signed.claims)
    assert signed.token.jose_header["kid"] in {k["kid"] for k in keys.export(as_dict=True,
                                                                            private_keys=False)["keys"]}
    assert claims["iss"] == provider.metadata["issuer"] and claims["aud"] == rp
    assert claims["sub"] == id_token_claims(provider, tokens)["sub"]
    assert claims["name"] == alice.name

    provider.idp("clients", "update", rp, "--no-signed-userinfo")
    plain = provider.userinfo(tokens["access_token"])
    assert plain.headers["Content-Type"] == "application/json"
    assert plain.json()["sub"] == claims["sub"]


def test_an_error_goes_back_the_way_the_object_asked(provider, rp, key):
    """response_mode=form_post inside the object: a login_required for prompt=none is POSTed
    to the object's redirect_uri, not put in a query."""
    _, challenge = pkce_pair()
    params = request_params(rp, challenge, prompt="none", response_mode="form_post")
    page = requests.get(authorize_url(provider, client_id=rp,
                                      request=request_object(provider, params, key)),
                        timeout=5, allow_redirects=False)
    assert page.status_code == 200 and "Location" not in page.headers
    assert f'action="{CALLBACK}"' in page.text and 'value="login_required"' in page.text
    assert f'value="{params["state"]}"' in page.text


def test_request_uri_fetches_are_limited_per_address(provider, rp, key, documents,
                                                      monkeypatch):
    monkeypatch.setattr(request_objects, "FETCHES_PER_WINDOW", 2)
    _, challenge = pkce_pair()
    documents.answers["/ro"] = (200, {}, request_object(
        provider, request_params(rp, challenge), key).encode())
    url = authorize_url(provider, client_id=rp, request_uri=documents.url("/ro"))
    for _ in range(2):
        assert requests.get(url, timeout=5, allow_redirects=False).status_code == 302
    refused = requests.get(url, timeout=5, allow_redirects=False)
    assert refused.status_code == 429 and "Location" not in refused.headers
    assert "invalid_request_uri" in refused.text and "try again later" in refused.text
    assert documents.requests == ["/ro"] * 2


JUNK = [None, True, 0, -1, 1e308, "", "x", "\x00", "\ud800", "é☃", CALLBACK, "none", "openid",
        "code", "S256", [], [None], ["x"], [[]], {}, {"a": {"b": []}}, "x" * 3000]
PARAMETERS = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
              "code_challenge", "code_challenge_method", "max_age", "prompt", "resource",
              "response_mode", "acr_values", "claims", "id_token_hint", "login_hint", "dpop_jkt",
              "request", "request_uri", "registration", "iss", "aud", "exp", "nbf", "iat"]


def test_no_request_object_makes_a_500(provider, rp, key):
    """A seeded fuzz: signed objects whose parameters hold every kind of wrong value, one to
    three at a time, each answered by a redirect (to sign in, or with an error) or a page."""
    generator = random.Random(20261204)
    _, challenge = pkce_pair()
    answers = []
    for _ in range(150):
        params = request_params(rp, challenge)
        for name in generator.sample(PARAMETERS, generator.randint(1, 3)):
            params[name] = generator.choice(JUNK)
        claims = {"iss": rp, "aud": provider.metadata["issuer"], "client_id": rp, **params}
        # json.dumps escapes what UTF-8 cannot carry (a lone surrogate): the server reads it.
        signed = jws.serialize_compact({"alg": "RS256", "kid": key.kid},
                                       json.dumps(claims).encode(), key)
        response = requests.post(provider.metadata["authorization_endpoint"], timeout=5,
                                 allow_redirects=False, data={"client_id": rp, "request": signed})
        assert response.status_code in (200, 302, 400), (response.status_code, params)
        answers.append(response.status_code)
    assert answers.count(302) >= 20 and answers.count(400) >= 20  # both kinds were tried


def test_a_lone_surrogate_in_an_object_is_an_error_page(provider, rp, key):
    _, challenge = pkce_pair()
    claims = {"iss": rp, "aud": provider.metadata["issuer"],
              **request_params(rp, challenge, state="\ud800")}
    signed = jws.serialize_compact({"alg": "RS256", "kid": key.kid},
                                   json.dumps(claims).encode(), key)
    page = requests.post(provider.metadata["authorization_endpoint"], timeout=5,
                         allow_redirects=False, data={"client_id": rp, "request": signed})
    assert "invalid_request_object" in error_page(page)


def test_an_object_may_expire_while_the_user_signs_in(provider, alice, rp, key, monkeypatch):
    """Checked again when the browser comes back from sign-in, an object that was valid when
    it came may have expired since (pushed_requests.RESUME_SECONDS); a browser that did not
    bring it then gets an error page."""
    _, challenge = pkce_pair()
    params = request_params(rp, challenge)
    url = authorize_url(provider, client_id=rp, request=request_object(
        provider, params, key, exp=int(time.time()) - 10))  # within the leeway, now
    browser = requests.Session()
    assert browser.get(url, allow_redirects=False).headers["Location"] == "/login"
    monkeypatch.setattr(request_objects, "LEEWAY_SECONDS", 0)  # and now past it
    assert "invalid_request_object" in error_page(
        requests.get(url, timeout=5, allow_redirects=False))
    callback = sign_in_and_consent(browser, provider.url, url)
    assert query_of(callback)["state"] == params["state"]


@pytest.mark.parametrize("lifetime, message", [  # seconds from now; None: left out
    ({"iss": None}, "client_id as iss"),  # FAPI: required, not just checked where present
    ({"aud": None}, "issuer as aud"),
    ({"exp": None}, "must have exp and nbf"),
    ({"nbf": None}, "must have exp and nbf"),
    ({"nbf": True}, "nbf"),  # joserfc: not a NumericDate
    ({"exp": 3700}, "60 minutes at most"),
    ({"nbf": -3700, "exp": 60}, "60 minutes at most"),
    ({"nbf": -3700, "exp": -100}, "expired"),
])
def test_fapi2_message_signing_bounds_the_lifetime_of_a_required_object(
        provider, rp, key, lifetime, message):
    """FAPI 2.0 Message Signing: a client that must sign every request sends iss and aud, and
    exp and nbf at most an hour apart, so that nbf is at most an hour old too."""
    provider.idp("clients", "update", rp, "--require-signed-request-object")
    _, challenge = pkce_pair()
    now = int(time.time())
    claims = {**request_params(rp, challenge), "iss": rp, "aud": provider.metadata["issuer"],
              "nbf": now, "exp": now + 300}
    for name, value in lifetime.items():
        claims[name] = now + value if type(value) is int and name in ("exp", "nbf") else value
    claims = {name: value for name, value in claims.items() if value is not None}
    signed = jws.serialize_compact({"alg": "RS256", "kid": key.kid},
                                   json.dumps(claims).encode(), key)
    pushed = provider.post("pushed_authorization_request_endpoint", None, client_id=rp,
                           client_assertion_type=ASSERTION_TYPE,
                           client_assertion=assertion(provider, rp, key), request=signed)
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_request_object"
    assert message in pushed.json()["error_description"]


def test_a_client_that_names_its_algorithm_signs_with_it_alone(provider, alice, rp, key):
    provider.idp("clients", "update", rp, "--request-object-signing-alg", "PS256")
    _, challenge = pkce_pair()
    rs256 = requests.get(authorize_url(provider, client_id=rp, request=request_object(
        provider, request_params(rp, challenge), key)), timeout=5, allow_redirects=False)
    assert "invalid_request" in error_page(rs256)
    ps256 = requests.get(authorize_url(provider, client_id=rp, request=request_object(
        provider, request_params(rp, challenge), key, alg="PS256")), timeout=5,
        allow_redirects=False)
    assert ps256.status_code == 302 and ps256.headers["Location"] == "/login"


# --- with requests-oauth2client, a relying-party library that signs requests itself ---------

def library_client(provider, client_id: str, key, alg="RS256") -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        f"{provider.url}/.well-known/openid-configuration", issuer=provider.url,
        redirect_uri=CALLBACK, testing=True,
        auth=PrivateKeyJwt(client_id, Jwk(key.as_dict(private=True)), alg=alg))


def test_a_library_signed_request_without_iss_or_aud_is_taken(provider, alice, rp, key):
    """requests-oauth2client signs the parameters alone, as RFC 9101 allows (iss and aud are a
    SHOULD): taken from a client not bound to FAPI's rules."""
    client = library_client(provider, rp, key)
    request = client.authorization_request(scope="openid profile")
    signed = request.sign(Jwk(key.as_dict(private=True)), alg="RS256", lifetime=300)
    callback = sign_in_and_consent(requests.Session(), provider.url, str(signed.uri))
    token = client.authorization_code(request.validate_callback(callback), validate=False)
    assert token.scope == "openid profile"


def test_fapi2_message_signing_happy_flow(provider, alice, tmp_path):
    """The FAPI 2.0 happy flow with message signing: a request object (PS256, iss, aud, nbf,
    exp) pushed to /par with private_key_jwt and a DPoP proof, the code exchanged with a
    proof, and /userinfo as a JWT the provider signs, fetched with the DPoP-bound token."""
    key = RSAKey.generate_key(2048, parameters={"kid": "bank-1"})
    client_id = provider.idp(
        "clients", "create", "--name", "Bank app", "--redirect-uri", CALLBACK,
        "--jwks-file", jwks_file(tmp_path, key), "--token-endpoint-auth-signing-alg", "PS256",
        "--require-par", "--require-signed-request-object", "--request-object-signing-alg",
        "PS256", "--require-dpop", "--signed-userinfo")["client_id"]
    client = library_client(provider, client_id, key, alg="PS256")
    dpop_key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="openid profile", dpop_key=dpop_key)
    # The library pushes only unsigned requests: the push is made here, as it would make it.
    par_url = provider.metadata["pushed_authorization_request_endpoint"]
    pushed = requests.post(par_url, timeout=5, headers={
        "DPoP": str(dpop_key.proof(htm="POST", htu=par_url))}, data={
        "client_id": client_id, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(provider, client_id, key, alg="PS256"),
        "request": request_object(provider, dict(request.args), key, alg="PS256")})
    assert pushed.status_code == 201, pushed.text
    url = authorize_url(provider, client_id=client_id, request_uri=pushed.json()["request_uri"])
    callback = sign_in_and_consent(requests.Session(), provider.url, url)
    token = client.authorization_code(request.validate_callback(callback), validate=False)
    assert isinstance(token, DPoPToken)
    response = requests.get(provider.metadata["userinfo_endpoint"], timeout=5,
                            auth=token)  # DPoP scheme, a proof naming the token
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jwt"
    keys = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    assert jwt.decode(response.text, keys).claims["aud"] == client_id
