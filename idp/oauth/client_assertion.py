"""`private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a service proves
who it is with a JWT signed by its own private key, registered as a public JWKS, so no shared
secret exists to leak. Authlib checks the assertion; here are the rules it leaves to us:

- the audience is this provider: its issuer (FAPI 2.0 asks for that) or the URL of the
  endpoint called;
- only asymmetric algorithms (a `none` or HMAC assertion is refused whatever the key set),
  or only the one the client registered (token_endpoint_auth_signing_alg);
- an assertion lives an hour at most (the default of Authlib's own client), and its `jti` is
  accepted once: it is remembered (a rate-limit counter, pruned after its window) until the
  assertion has expired;
- a `client_id` sent beside the assertion must be its subject (RFC 7523 §3).
"""

from __future__ import annotations

import base64
import json
import time
import warnings

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from flask import g
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from ..security import audit
from ..security import rate_limit
from ..security.hashing import hash_secret
from . import client_keys

METHOD = "private_key_jwt"
# Ed25519 is RFC 9864's name for what clients still often call EdDSA: both are taken.
ALGORITHMS = ["RS256", "PS256", "ES256", "Ed25519", "EdDSA"]
MAX_LIFETIME_SECONDS = 3600
LEEWAY_SECONDS = 60
# How long a jti must be remembered: an assertion's whole life, clock leeway included.
JTI_MEMORY_SECONDS = MAX_LIFETIME_SECONDS + 2 * LEEWAY_SECONDS


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = METHOD

    def __init__(self):
        super().__init__(validate_jti=True, leeway=LEEWAY_SECONDS)

    def __call__(self, query_client, request):
        sent_client_id = request.form.get("client_id")
        try:
            client = super().__call__(query_client, request)
        except RecursionError:  # Authlib's json.loads of the claims: nested past its depth
            raise InvalidClientError(description="The client assertion cannot be read.") from None
        if client is not None and sent_client_id and sent_client_id != client.client_id:
            raise InvalidClientError(description="client_id is not the assertion's subject.")
        return client

    def get_audiences(self) -> list[str]:
        issuer = current_app.config["ISSUER"]
        endpoints = ("/token", "/introspect", "/revoke", "/par")
        return [issuer, *(f"{issuer}{path}" for path in endpoints)]

    def resolve_client_public_key(self, client) -> KeySet:
        # Authlib checks the assertion next, without the client: its algorithm, for then.
        g.assertion_algorithms = ([client.token_endpoint_auth_signing_alg]
                                  if client.token_endpoint_auth_signing_alg else ALGORITHMS)
        if client.jwks:
            return KeySet.import_key_set(client.jwks)
        if not client.jwks_uri:
            raise InvalidClientError(description="The client has no registered keys.")
        try:
            jwks = client_keys.keys_at(client.jwks_uri, _unverified_kid(
                flask_request.form.get("client_assertion")), client.self_registered)
        except client_keys.KeysUnavailable as error:
            audit.log("client_auth.jwks_unavailable", client_id=client.client_id,
                      reason=str(error))
            raise InvalidClientError(
                description="The client's keys cannot be fetched from its jwks_uri.") from None
        return KeySet.import_key_set(jwks)

    def process_assertion_claims(self, assertion, key):
        try:
            with warnings.catch_warnings():  # joserfc warns that "EdDSA" is deprecated
                warnings.simplefilter("ignore", SecurityWarning)
                token = jwt.decode(assertion, key,
                                   algorithms=g.get("assertion_algorithms", ALGORITHMS))
        except (JoseError, ValueError) as error:
            raise InvalidClientError(description="The client assertion is not valid.") from error
        claims = token.claims
        self.verify_claims(claims)  # iss = sub, aud, exp, then the jti, once
        return claims

    def verify_claims(self, claims) -> None:
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp > time.time() + MAX_LIFETIME_SECONDS + \
                LEEWAY_SECONDS:
            raise InvalidClientError(
                description=f"The client assertion may live {MAX_LIFETIME_SECONDS} s at most.")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or not jti:
            return False
        key = f"assertion:{hash_secret(str(claims['sub']) + ' ' + jti)}"
        return rate_limit.count_attempt(key, JTI_MEMORY_SECONDS) == 1


def claimed_subject(assertion) -> str | None:
    """The `sub` an assertion claims, unverified: only to count its failures (server.py)."""
    return _unverified_member(assertion, 1, "sub")


def _unverified_kid(assertion) -> str | None:
    """The `kid` of an assertion's header, unverified: only to see whether a client's cached
    keys have it (client_keys.py)."""
    return _unverified_member(assertion, 0, "kid")


def _unverified_member(assertion, part: int, name: str) -> str | None:
    if not isinstance(assertion, str) or assertion.count(".") != 2 or len(assertion) > 16384:
        return None
    encoded = assertion.split(".")[part]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, RecursionError):  # bad base64, UTF-8 or JSON, or nested too deep
        return None
    value = decoded.get(name) if isinstance(decoded, dict) else None
    return value if isinstance(value, str) else None
