"""DPoP (RFC 9449): tokens bound to a key the client holds, so that a stolen access token, or
a stolen refresh token of a public client, is of no use without the private key.

The client signs a fresh proof for every request (a JWT naming the method, the URL and a
unique `jti`, with its public key in the header) and sends it in the `DPoP` header:
- at the token endpoint, the access token is then bound to that key (`cnf.jkt`, §6.1) and
  issued as `token_type: DPoP`; a public client's refresh tokens are bound to it too (§5);
- at /userinfo, a bound token is accepted only with the `DPoP` scheme and a proof by the same
  key that also names the token (`ath`, §7); a bound token sent as a Bearer token is refused;
- `dpop_jkt` at /authorize or /par binds the authorization code to a key in advance (§10), and
  a proof sent to /par does the same.

A proof is accepted once: its `jti` is remembered (a rate-limit counter) for as long as its
`iat` is within the window. The URL a proof names is compared with the endpoint's URL under
the issuer, as discovery publishes it, not with what a proxy in front may have rewritten.

With DPOP_NONCES on, a proof must also carry a nonce the provider gave out (§8, §9), so that
a proof signed ahead of time, by a client whose clock an attacker set, is useless. Every
answer to a request with a proof carries the current nonce in `DPoP-Nonce`; a proof without
it is refused with `use_dpop_nonce`, and the client signs again. A nonce is an HMAC of the
current period under HASH_KEY: every worker and host computes the same without sharing
state, and a nonce is taken during its period and the next.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
import warnings
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app
from flask import g
from flask import request
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry

from ..security import audit
from ..security import rate_limit
from ..security.hashing import hash_secret
from . import client_assertion

# The asymmetric algorithms taken from clients' own keys, as for client assertions.
ALGORITHMS = client_assertion.ALGORITHMS
# A proof is accepted while its `iat` is at most this far from our clock, either way: enough
# for a client whose clock is a little off (FAPI 2.0 tests ±10 s), short enough to keep the
# memory of spent proofs small.
IAT_WINDOW_SECONDS = 60
JTI_MEMORY_SECONDS = 2 * IAT_WINDOW_SECONDS + 5
MAX_PROOF_LENGTH = 8192  # an RSA-4096 key in the header fits several times over
MAX_JTI_LENGTH = 256
MIN_RSA_BITS = 2048
# A JWK SHA-256 thumbprint (RFC 7638), as `dpop_jkt` carries it: 32 bytes in base64url.
THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
DEFAULT_PORTS = {"http": 80, "https": 443}
NONCE_PERIOD_SECONDS = 300


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 §5: the proof is missing where required, malformed, or fails a check."""

    error = "invalid_dpop_proof"
    status_code = 400


class UseDPoPNonceError(InvalidDPoPProofError):
    """RFC 9449 §8: sign the proof again, with the nonce in the DPoP-Nonce header."""

    error = "use_dpop_nonce"
    description = "Sign the DPoP proof again with the nonce in the DPoP-Nonce header."


class ResourceDPoPError(OAuth2Error):
    """RFC 9449 §7.1: a protected resource's refusal, with a DPoP challenge naming the
    algorithms it takes. `error` is invalid_token or invalid_dpop_proof."""

    status_code = 401

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error

    def get_headers(self):
        return [*super().get_headers(),
                ("WWW-Authenticate", f'DPoP error="{self.error}", error_description='
                                     f'"{self.description}", algs="{" ".join(ALGORITHMS)}"')]


def challenge() -> str:
    """The DPoP challenge a resource adds beside Bearer when no token came at all."""
    return f'DPoP algs="{" ".join(ALGORITHMS)}"'


def endpoint_url(path: str) -> str:
    """The URL a proof must name for an endpoint of ours: the one discovery publishes."""
    return current_app.config["ISSUER"] + path


def proof_key(path: str, access_token: str | None = None) -> str | None:
    """The thumbprint (RFC 7638) of the key that signed the current request's DPoP proof, once
    the proof has passed every check of RFC 9449 §4.3 and has been spent; None when the
    request carries no proof. `access_token`: the token the proof must name (`ath`)."""
    values = request.headers.getlist("DPoP")
    if not values:
        return None
    if current_app.config["DPOP_NONCES"]:
        g.dpop_nonce = _nonce(int(time.time()) // NONCE_PERIOD_SECONDS)  # for the answer
    # A proof has no comma: one means two headers folded into one by the server.
    if len(values) > 1 or "," in values[0]:
        raise InvalidDPoPProofError("Send exactly one DPoP header.")
    claims, key = _verified(values[0].strip())
    _check_claims(claims, endpoint_url(path), access_token)
    if current_app.config["DPOP_NONCES"] and not _nonce_is_fresh(claims.get("nonce")):
        raise UseDPoPNonceError()
    thumbprint = key.thumbprint()
    spent = f"dpop:{hash_secret(thumbprint + ' ' + claims['jti'])}"
    if rate_limit.count_attempt(spent, JTI_MEMORY_SECONDS) != 1:  # copied on its way?
        audit.log("dpop.rejected", reason="proof_replayed", endpoint=path, jkt=thumbprint)
        raise InvalidDPoPProofError("The DPoP proof has been used before: sign a new one for "
                                    "every request.")
    return thumbprint


def add_nonce(response):
    """After a request with a proof, the nonce its next proof must carry (DPOP_NONCES)."""
    if nonce := g.get("dpop_nonce"):
        response.headers["DPoP-Nonce"] = nonce
    return response


def _nonce(period: int) -> str:
    return hash_secret(f"dpop-nonce {period}")[:32]


def _nonce_is_fresh(value) -> bool:
    period = int(time.time()) // NONCE_PERIOD_SECONDS
    return any(_same_text(value, _nonce(p)) for p in (period, period - 1))


def _same_text(value, expected: str) -> bool:
    """`value` is the string `expected`, compared in constant time. compare_digest takes
    ASCII text only, and a JSON string may hold anything, lone surrogates included."""
    return isinstance(value, str) and value.isascii() and hmac.compare_digest(value, expected)


def check_thumbprint(value) -> str | None:
    """A `dpop_jkt` request parameter: absent, or a SHA-256 JWK thumbprint."""
    if value is None:
        return None
    if not isinstance(value, str) or not THUMBPRINT.fullmatch(value):
        raise InvalidRequestError("dpop_jkt must be the base64url SHA-256 thumbprint of a JWK "
                                  "(RFC 7638).")
    return value


def token_hash(access_token: str) -> str:
    """`ath` (RFC 9449 §4.2): base64url SHA-256 of the token's ASCII."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _verified(proof: str) -> tuple[dict[str, Any], Any]:
    """The claims of a proof whose header is right and whose signature is by the key in it."""
    if len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise InvalidDPoPProofError("The DPoP proof is not a compact JWS.")
    try:
        header = jws.extract_compact(proof.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise InvalidDPoPProofError("The DPoP proof is not a compact JWS.") from None
    if header.get("typ") != "dpop+jwt":
        raise InvalidDPoPProofError("The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidDPoPProofError(f"The DPoP proof's alg must be one of {', '.join(ALGORITHMS)}.")
    key = _public_key(header.get("jwk"))
    try:
        with warnings.catch_warnings():  # joserfc warns that "EdDSA" is deprecated
            warnings.simplefilter("ignore", SecurityWarning)
            payload = jws.deserialize_compact(proof, key, algorithms=[alg]).payload
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProofError("The DPoP proof's signature does not verify with its "
                                    "jwk.") from None
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        claims = None
    if not isinstance(claims, dict):
        raise InvalidDPoPProofError("The DPoP proof's payload is not a JSON object.")
    return claims, key


def _public_key(jwk):
    """The key of the proof's `jwk` header: public, asymmetric, and an RSA key of 2048 bits or
    more."""
    if not isinstance(jwk, dict):
        raise InvalidDPoPProofError("The DPoP proof's header must carry its public key as jwk.")
    try:
        with warnings.catch_warnings():  # a short key: refused below, with a clearer reason
            warnings.simplefilter("ignore", SecurityWarning)
            key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProofError("The DPoP proof's jwk is not a usable key.") from None
    if key.key_type not in ("RSA", "EC", "OKP") or key.is_private:
        raise InvalidDPoPProofError("The DPoP proof's jwk must be an asymmetric public key.")
    if key.key_type == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
        raise InvalidDPoPProofError(f"An RSA key for DPoP needs {MIN_RSA_BITS} bits at least.")
    return key


def _check_claims(claims: dict[str, Any], url: str, access_token: str | None) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDPoPProofError(f"The DPoP proof needs a jti of 1 to {MAX_JTI_LENGTH} "
                                    "characters.")
    if claims.get("htm") != request.method:
        raise InvalidDPoPProofError(f"The DPoP proof's htm must be {request.method}.")
    htu = claims.get("htu")
    if not isinstance(htu, str) or _comparable(htu) != _comparable(url):
        raise InvalidDPoPProofError(f"The DPoP proof's htu must be {url}.")
    now = time.time()
    iat = claims.get("iat")
    if not _is_number(iat) or abs(iat - now) > IAT_WINDOW_SECONDS:
        raise InvalidDPoPProofError(f"The DPoP proof's iat must be within {IAT_WINDOW_SECONDS} "
                                    "s of the time now.")
    # Not required, but a proof that says it has expired, or is not valid yet, is not taken.
    if "exp" in claims and (not _is_number(claims["exp"]) or claims["exp"] <= now):
        raise InvalidDPoPProofError("The DPoP proof has expired.")
    if "nbf" in claims and (not _is_number(claims["nbf"])
                            or claims["nbf"] > now + IAT_WINDOW_SECONDS):
        raise InvalidDPoPProofError("The DPoP proof is not valid yet.")
    if access_token is not None:
        if not _same_text(claims.get("ath"), token_hash(access_token)):
            raise InvalidDPoPProofError("The DPoP proof's ath must be the hash of the access "
                                        "token sent with it.")


def _comparable(url: str) -> tuple | None:
    """RFC 9449 §4.3 step 9: the URL without query and fragment, with scheme and host in lower
    case and a default port left out (RFC 3986 §6.2.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").lower(),
            None if port == DEFAULT_PORTS.get(scheme) else port, parts.path or "/")


def _is_number(value) -> bool:
    """A JSON number; Python's json also reads NaN and Infinity, which no check can compare."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
