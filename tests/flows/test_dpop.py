"""DPoP (RFC 9449), named after the FAPI 2.0 modules where one fits: tokens bound to a key the
client proves it holds, at the token endpoint, /userinfo, introspection and /par; the proof
checks of §4.3 one by one; and the bindings of codes (§10) and public clients' refresh tokens
(§5)."""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import time
import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey
from joserfc.jwk import OctKey
from joserfc.jwk import RSAKey

from idp.oauth import dpop
from idp.oauth.dpop import token_hash

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import basic_auth
from ..helpers import query_of
from .test_id_token import verify

ISSUER = "http://127.0.0.1:5000"
TOKEN_URL = f"{ISSUER}/token"


class Prover:
    """A client's DPoP key, and the proofs it signs (RFC 9449 §4.2); any part can be spoilt."""

    def __init__(self, key=None, alg="ES256"):
        self.key = key or ECKey.generate_key("P-256", private=True)
        self.alg = alg

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, htu=TOKEN_URL, htm="POST", access_token=None, header=None, drop=(),
              signer=None, **claims) -> str:
        protected = {"typ": "dpop+jwt", "alg": self.alg,
                     "jwk": self.key.as_dict(private=False), **(header or {})}
        payload = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                   "iat": int(time.time()), **claims}
        if access_token is not None:
            payload["ath"] = token_hash(access_token)
        for name in drop:
            protected.pop(name, None)
            payload.pop(name, None)
        return jws.serialize_compact(protected, json.dumps(payload), signer or self.key,
                                     algorithms=[protected.get("alg", self.alg)])


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def service(app):
    return add_client(app, name="Worker", grant_types=["client_credentials"], scope="jobs")


@pytest.fixture
def resource_server(app):
    return add_client(app, name="API", grant_types=["client_credentials"], introspect_any=True)


def client_credentials(http, client, proof=None, headers=None):
    headers = {**basic_auth(client.client_id, client.secret), **(headers or {})}
    if proof is not None:
        headers["DPoP"] = proof
    return http.post("/token", data={"grant_type": "client_credentials"}, headers=headers)


def assert_refused(response, status=400, error="invalid_dpop_proof"):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"
    assert "access_token" not in response.get_json()


# --- the token endpoint -------------------------------------------------------------------

def test_a_proof_binds_the_access_token_to_its_key(http, service, resource_server):
    prover = Prover()
    response = client_credentials(http, service, prover.proof())
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    claims = verify(http, body["access_token"])[1]
    assert claims["cnf"] == {"jkt": prover.jkt}
    introspected = http.post("/introspect", data={"token": body["access_token"]},
                             headers=basic_auth(resource_server.client_id,
                                                resource_server.secret)).get_json()
    assert introspected["active"] is True
    assert introspected["token_type"] == "DPoP"  # RFC 9449 §6.2
    assert introspected["cnf"] == {"jkt": prover.jkt}


def test_without_a_proof_the_token_is_a_bearer_token(http, service):
    body = client_credentials(http, service).get_json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims_of(body["access_token"])


def test_holder_of_key_required_for_a_client_registered_so(http, app):
    """FAPI 2.0 ensure-holder-of-key-required; `dpop_bound_access_tokens` (§5.2)."""
    bound = add_client(app, name="Bank worker", grant_types=["client_credentials"],
                       require_dpop=True)
    assert_refused(client_credentials(http, bound))
    assert client_credentials(http, bound, Prover().proof()).get_json()["token_type"] == "DPoP"


def audited(caplog, reason: str) -> dict:
    """The dpop.rejected audit event with this reason."""
    events = [json.loads(record.getMessage()) for record in caplog.records
              if record.name == "idp.audit"]
    return next(event for event in events
                if event["event"] == "dpop.rejected" and event["reason"] == reason)


def test_each_proof_is_accepted_once(http, service, caplog):
    caplog.set_level(logging.INFO)
    prover = Prover()
    proof = prover.proof()
    assert client_credentials(http, service, proof).status_code == 200
    assert_refused(client_credentials(http, service, proof))
    assert audited(caplog, "proof_replayed")["jkt"] == prover.jkt  # copied on its way?


def test_iat_ten_seconds_either_way_is_accepted(http, service):
    """FAPI 2.0 ensure-dpopproof-with-iat-10seconds-before/after-succeeds."""
    for skew in (-10, 10):
        proof = Prover().proof(iat=int(time.time()) + skew)
        assert client_credentials(http, service, proof).status_code == 200


def test_htu_is_compared_without_query_and_with_case_and_port_normalised(http, service):
    for htu in (f"{TOKEN_URL}?x=1", f"{TOKEN_URL}#f", "HTTP://127.0.0.1:5000/token"):
        assert client_credentials(http, service, Prover().proof(htu=htu)).status_code == 200


def test_exp_and_nbf_in_a_proof_are_honoured(http, service):
    """FAPI 2.0 check-dpop-proof-nbf-exp: a proof carrying them within range is fine."""
    now = int(time.time())
    fine = Prover().proof(nbf=now - 5, exp=now + 60)
    assert client_credentials(http, service, fine).status_code == 200
    assert_refused(client_credentials(http, service, Prover().proof(exp=now - 1)))
    assert_refused(client_credentials(http, service, Prover().proof(nbf=now + 600)))


HMAC_KEY = OctKey.import_key("a shared secret of 32 characters")


def small_rsa_proof() -> str:
    with warnings.catch_warnings():  # joserfc warns of the short key, as it should
        warnings.simplefilter("ignore", SecurityWarning)
        key = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=1024))
        return Prover(key, "RS256").proof()


BAD_PROOFS = {
    "typ is not dpop+jwt": lambda p: p.proof(header={"typ": "JWT"}),
    "no typ": lambda p: p.proof(drop=["typ"]),
    "HMAC": lambda p: p.proof(header={"alg": "HS256", "jwk": HMAC_KEY.as_dict()},
                              signer=HMAC_KEY),
    "no jwk": lambda p: p.proof(drop=["jwk"]),
    "a symmetric jwk": lambda p: p.proof(header={"jwk": HMAC_KEY.as_dict()}),
    "a private jwk": lambda p: p.proof(header={"jwk": p.key.as_dict(private=True)}),
    "a 1024-bit RSA key": lambda p: small_rsa_proof(),
    "signed by another key": lambda p: p.proof(signer=ECKey.generate_key("P-256", private=True)),
    "htm GET": lambda p: p.proof(htm="GET"),
    "htu of another endpoint": lambda p: p.proof(htu=f"{ISSUER}/userinfo"),
    "htu of another host": lambda p: p.proof(htu="https://attacker.example/token"),
    "htu not a URL": lambda p: p.proof(htu=["x"]),
    "iat 2 minutes old": lambda p: p.proof(iat=int(time.time()) - 120),
    "iat 2 minutes ahead": lambda p: p.proof(iat=int(time.time()) + 120),
    "iat a string": lambda p: p.proof(iat=str(int(time.time()))),
    "iat NaN": lambda p: p.proof(iat=float("nan")),  # Python's json reads it; never fresh
    "no jti": lambda p: p.proof(drop=["jti"]),
    "a long jti": lambda p: p.proof(jti="j" * 300),
    "no iat": lambda p: p.proof(drop=["iat"]),
    "not a JWS": lambda p: "not-a-proof",
    "garbage parts": lambda p: "a.b.c",
    "a proof and a second one": lambda p: f"{p.proof()}, {p.proof()}",
}


@pytest.mark.parametrize("spoilt", BAD_PROOFS.values(), ids=BAD_PROOFS.keys())
def test_dpop_negative_tests(http, service, spoilt):
    """FAPI 2.0 dpop-negative-tests: each check of RFC 9449 §4.3 refuses the request."""
    response = client_credentials(http, service, spoilt(Prover()))
    assert_refused(response)
    assert '"' not in response.get_json()["error_description"]


def test_two_dpop_headers_are_refused(http, service):
    prover = Prover()
    response = http.post("/token", data={"grant_type": "client_credentials"},
                         headers=[*basic_auth(service.client_id, service.secret).items(),
                                  ("DPoP", prover.proof()), ("DPoP", prover.proof())])
    assert_refused(response)


# --- user tokens: the code flow, refresh, /userinfo -------------------------------------------

@pytest.fixture
def spa(app, user):
    """A public browser app with refresh tokens, whose DPoP key lives in the browser."""
    client = add_client(app, name="SPA", public=True,
                        redirect_uris=["https://spa.example/callback"],
                        grant_types=["authorization_code", "refresh_token"],
                        scope="openid profile offline_access")
    return Browserless(app.test_client(), client)


def test_happy_flow_with_dpop_to_userinfo(spa):
    """FAPI 2.0 happy-flow with DPoP: the code is exchanged with a proof, and /userinfo takes
    the token only with the DPoP scheme and a proof naming it."""
    prover = Prover()
    tokens = spa.exchange(spa.code(scope="openid profile"), headers={"DPoP": prover.proof()})
    assert tokens.status_code == 200, tokens.get_json()
    access_token = tokens.get_json()["access_token"]
    assert tokens.get_json()["token_type"] == "DPoP"
    userinfo_url = f"{ISSUER}/userinfo"
    for method in ("GET", "POST"):
        answer = spa.http.open("/userinfo", method=method, headers={
            "Authorization": f"DPoP {access_token}",
            "DPoP": prover.proof(htu=userinfo_url, htm=method, access_token=access_token)})
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["preferred_username"] == "alice"
    # The scheme's name is case-insensitive (access-token-type-header-case-sensitivity).
    answer = spa.http.get("/userinfo", headers={
        "Authorization": f"dpop {access_token}",
        "DPoP": prover.proof(htu=userinfo_url, htm="GET", access_token=access_token)})
    assert answer.status_code == 200


def test_userinfo_refuses_a_bound_token_without_its_proof(spa, caplog):
    caplog.set_level(logging.INFO)
    prover = Prover()
    access_token = spa.exchange(spa.code(scope="openid profile"),
                                headers={"DPoP": prover.proof()}).get_json()["access_token"]
    userinfo_url = f"{ISSUER}/userinfo"
    other_token = spa.exchange(spa.code(scope="openid"),
                               headers={"DPoP": prover.proof()}).get_json()["access_token"]
    refusals = {
        # RFC 9449 §7.2: a bound token presented as a bearer token is refused.
        "as Bearer": ({"Authorization": f"Bearer {access_token}"}, "invalid_token"),
        "without a proof": ({"Authorization": f"DPoP {access_token}"}, "invalid_dpop_proof"),
        "proof by another key": (
            {"Authorization": f"DPoP {access_token}",
             "DPoP": Prover().proof(htu=userinfo_url, htm="GET", access_token=access_token)},
            "invalid_dpop_proof"),
        "proof naming another token": (
            {"Authorization": f"DPoP {access_token}",
             "DPoP": prover.proof(htu=userinfo_url, htm="GET", access_token=other_token)},
            "invalid_dpop_proof"),
        "proof with an ath no hash can be": (
            {"Authorization": f"DPoP {access_token}",
             "DPoP": prover.proof(htu=userinfo_url, htm="GET", ath="\ud800")},
            "invalid_dpop_proof"),
        "proof without ath": (
            {"Authorization": f"DPoP {access_token}",
             "DPoP": prover.proof(htu=userinfo_url, htm="GET")}, "invalid_dpop_proof"),
        "proof for the token endpoint": (
            {"Authorization": f"DPoP {access_token}",
             "DPoP": prover.proof(access_token=access_token)}, "invalid_dpop_proof"),
    }
    for name, (headers, error) in refusals.items():
        answer = spa.http.get("/userinfo", headers=headers)
        assert answer.status_code == 401, name
        assert answer.get_json()["error"] == error, name
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith(f'DPoP error="{error}"'), name
        assert 'algs="' in challenge, name
    # The two signs of a stolen token are audited, with the client it was issued to.
    for reason in ("bound_token_sent_as_bearer", "proof_of_another_key"):
        assert audited(caplog, reason)["client_id"] == spa.client.client_id


def test_userinfo_refuses_a_bearer_token_sent_as_dpop(http, flow):
    access_token = flow.tokens()["access_token"]
    answer = http.get("/userinfo", headers={
        "Authorization": f"DPoP {access_token}",
        "DPoP": Prover().proof(htu=f"{ISSUER}/userinfo", htm="GET", access_token=access_token)})
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


def test_userinfo_without_a_token_offers_both_schemes(http):
    challenge = http.get("/userinfo").headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer, DPoP algs=")


def test_a_public_clients_refresh_token_is_bound_to_its_key(spa, caplog):
    """RFC 9449 §5; FAPI 2.0 refresh-token. Refused tries do not spend the refresh token."""
    caplog.set_level(logging.INFO)
    prover = Prover()
    tokens = spa.exchange(spa.code(scope="openid offline_access"),
                          headers={"DPoP": prover.proof()}).get_json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
               "client_id": spa.client.client_id}
    assert_refused(spa.http.post("/token", data=refresh))
    assert_refused(spa.http.post("/token", data=refresh, headers={"DPoP": Prover().proof()}))
    assert audited(caplog, "refresh_token_of_another_key")["client_id"] == spa.client.client_id
    renewed = spa.http.post("/token", data=refresh, headers={"DPoP": prover.proof()})
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["token_type"] == "DPoP"
    assert claims_of(renewed.get_json()["access_token"])["cnf"] == {"jkt": prover.jkt}
    # ... and its successor is bound to the same key.
    again = {**refresh, "refresh_token": renewed.get_json()["refresh_token"]}
    assert_refused(spa.http.post("/token", data=again, headers={"DPoP": Prover().proof()}))


def test_a_confidential_clients_refresh_token_stays_bound_to_its_credentials(app, user):
    web = Browserless(app.test_client(), add_client(
        app, name="Web", grant_types=["authorization_code", "refresh_token"],
        scope="openid offline_access"))
    tokens = web.exchange(web.code(scope="openid offline_access"),
                          headers={"DPoP": Prover().proof()}).get_json()
    renewed = web.http.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                            headers=basic_auth(web.client.client_id, web.secret))
    assert renewed.status_code == 200
    assert renewed.get_json()["token_type"] == "Bearer"


# --- binding the code in advance (§10) ----------------------------------------------------

def test_dpop_jkt_binds_the_code_to_a_key(spa):
    """FAPI 2.0 ensure-mismatched-dpop-jkt-fails, through /authorize."""
    prover = Prover()
    code = spa.code(dpop_jkt=prover.jkt)
    assert_refused(spa.exchange(code, headers={"DPoP": Prover().proof()}))
    code = spa.code(dpop_jkt=prover.jkt)
    assert_refused(spa.exchange(code))
    code = spa.code(dpop_jkt=prover.jkt)
    response = spa.exchange(code, headers={"DPoP": prover.proof()})
    assert response.status_code == 200
    assert claims_of(response.get_json()["access_token"])["cnf"] == {"jkt": prover.jkt}


def test_a_malformed_dpop_jkt_is_refused_at_authorize(spa):
    response = spa.code_response(dpop_jkt="not-a-thumbprint", state="s1")
    assert response.status_code == 302
    assert response.location.startswith("https://spa.example/callback?")
    params = query_of(response.location)
    assert params["error"] == "invalid_request" and params["state"] == "s1"


def par(spa, proof=None, **params):
    headers = {"DPoP": proof} if proof else {}
    return spa.http.post("/par", data=spa.authorize_params(client_id=spa.client.client_id,
                                                           **params), headers=headers)


def test_a_proof_at_par_binds_the_code(spa):
    prover = Prover()
    pushed = par(spa, prover.proof(htu=f"{ISSUER}/par"), scope="openid")
    assert pushed.status_code == 201, pushed.get_json()
    code = spa.code(request_uri=pushed.get_json()["request_uri"], response_type=None,
                    redirect_uri=None, scope=None, state=None, nonce=None,
                    code_challenge=None, code_challenge_method=None)
    assert_refused(spa.exchange(code, headers={"DPoP": Prover().proof()}))


def test_par_refuses_a_dpop_jkt_that_is_not_the_proofs_key(spa):
    pushed = par(spa, Prover().proof(htu=f"{ISSUER}/par"), dpop_jkt=Prover().jkt)
    assert_refused(pushed)


def test_discovery_names_the_proof_algorithms(http):
    metadata = http.get("/.well-known/openid-configuration").get_json()
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert "HS256" not in metadata["dpop_signing_alg_values_supported"]


# --- server nonces (§8, §9), where the operator asks for them ------------------------------

@pytest.fixture
def nonce_app(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir, DPOP_NONCES=True)


def test_with_nonces_a_proof_needs_the_providers_nonce(nonce_app):
    http = nonce_app.test_client()
    service = add_client(nonce_app, name="Worker", grant_types=["client_credentials"])
    prover = Prover()
    first = client_credentials(http, service, prover.proof())
    assert_refused(first, error="use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    assert_refused(client_credentials(http, service, prover.proof(nonce="made-up")),
                   error="use_dpop_nonce")
    issued = client_credentials(http, service, prover.proof(nonce=nonce))
    assert issued.status_code == 200, issued.get_json()
    assert issued.headers["DPoP-Nonce"] == nonce  # the same until its period ends
    assert issued.get_json()["token_type"] == "DPoP"
    # Without a proof, nothing changes: no nonce asked for, none given.
    bearer = client_credentials(http, service)
    assert bearer.status_code == 200 and "DPoP-Nonce" not in bearer.headers


def test_with_nonces_a_nonce_lasts_its_period_and_the_next(nonce_app, monkeypatch):
    http = nonce_app.test_client()
    service = add_client(nonce_app, name="Worker", grant_types=["client_credentials"])
    nonce = client_credentials(http, service, Prover().proof()).headers["DPoP-Nonce"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + dpop.NONCE_PERIOD_SECONDS)
    assert client_credentials(http, service, Prover().proof(nonce=nonce)).status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + 2 * dpop.NONCE_PERIOD_SECONDS)
    stale = client_credentials(http, service, Prover().proof(nonce=nonce))
    assert_refused(stale, error="use_dpop_nonce")
    assert stale.headers["DPoP-Nonce"] != nonce


def test_with_nonces_userinfo_asks_for_one_with_a_dpop_challenge(nonce_app):
    add_user(nonce_app)
    spa = Browserless(nonce_app.test_client(), add_client(
        nonce_app, name="SPA", public=True, redirect_uris=["https://spa.example/callback"],
        scope="openid profile"))
    prover = Prover()
    nonce = spa.exchange(spa.code(scope="openid profile"),
                         headers={"DPoP": prover.proof()}).headers["DPoP-Nonce"]
    access_token = spa.exchange(spa.code(scope="openid profile"), headers={
        "DPoP": prover.proof(nonce=nonce)}).get_json()["access_token"]
    userinfo_url = f"{ISSUER}/userinfo"
    refused = spa.http.get("/userinfo", headers={
        "Authorization": f"DPoP {access_token}",
        "DPoP": prover.proof(htu=userinfo_url, htm="GET", access_token=access_token)})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
    answer = spa.http.get("/userinfo", headers={
        "Authorization": f"DPoP {access_token}",
        "DPoP": prover.proof(htu=userinfo_url, htm="GET", access_token=access_token,
                             nonce=refused.headers["DPoP-Nonce"])})
    assert answer.status_code == 200


# --- junk ---------------------------------------------------------------------------------

JUNK = [None, 1, -1, 1.5, float("nan"), float("inf"), True, "", "x", "\ud800", "é", [], {},
        [1], {"a": 1}, "a" * 5000, 10**30]


def junk_proof(rng: random.Random, key, htm="POST", htu=TOKEN_URL) -> str:
    """A proof with a member or two of its header, key or claims replaced by junk, signed or
    not."""
    jwk = key.as_dict(private=False)
    if rng.random() < 0.5:
        jwk[rng.choice(["kty", "crv", "x", "y", "n", "e", "d", "k", "alg"])] = rng.choice(JUNK)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk if rng.random() < 0.8
              else rng.choice(JUNK)}
    claims = {"jti": secrets.token_hex(4), "htm": htm, "htu": htu, "iat": int(time.time())}
    for part in (header, claims):
        if rng.random() < 0.6:
            names = [*part, "nonce", "exp", "nbf", "ath", "crit", "kid"]
            part[rng.choice(names)] = rng.choice(JUNK)
    payload = json.dumps(claims if rng.random() < 0.8 else rng.choice(JUNK))

    def encoded(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")

    unsigned = f"{encoded(json.dumps(header))}.{encoded(payload)}"
    try:
        return jws.serialize_compact(header, payload, key, algorithms=["ES256"])
    except Exception:  # joserfc will not sign that header: send it unsigned
        return unsigned + ".c2ln"


def test_proofs_of_junk_are_refused_without_a_500(http, service, spa):
    rng = random.Random(9449)
    key = ECKey.generate_key("P-256", private=True)
    access_token = spa.exchange(spa.code(scope="openid"),
                                headers={"DPoP": Prover(key).proof()}).get_json()["access_token"]
    for _ in range(300):
        issued = client_credentials(http, service, junk_proof(rng, key))
        assert issued.status_code in (200, 400), issued.get_data(as_text=True)
        if issued.status_code == 400:
            assert issued.get_json()["error"] == "invalid_dpop_proof"
        proof = junk_proof(rng, key, "GET", f"{ISSUER}/userinfo")
        answer = spa.http.get("/userinfo", headers={"Authorization": f"DPoP {access_token}",
                                                    "DPoP": proof})
        assert answer.status_code == 401, answer.get_data(as_text=True)  # none has a true ath
        assert answer.get_json()["error"] == "invalid_dpop_proof"
