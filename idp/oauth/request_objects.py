"""Request objects (RFC 9101, OIDC Core §6): the authorization request as a JWT signed by the
client, sent by value in `request` or fetched from a `request_uri` the client registered. The
signature proves the client wrote every parameter, so the browser cannot alter them; only the
object's parameters count, whatever else the URL holds (RFC 9101 §5).

Authlib's extension decodes the object; the rules it leaves to us:
- the client's keys verify it: those of private_key_jwt, registered inline or at its jwks_uri
  (client_keys.py). A client with a secret has none, as the secret is kept only as a hash;
- only asymmetric algorithms: no `none` (an unsigned object proves nothing the URL does not),
  no HMAC;
- `iss` is the client and `aud` this provider where present (RFC 9101 §10.8: a JWT the client
  signed for another server is not a request); `exp` and `nbf`, when present, hold
  with LEEWAY_SECONDS, and the object is checked again when the browser comes back from
  sign-in, when its `exp` may have passed up to pushed_requests.RESUME_SECONDS ago. For a
  client that must sign every request (require_signed_request_object, FAPI 2.0 Message
  Signing), `iss` and `aud` are required, and `exp` and `nbf` at most an hour apart;
- by reference, only a URI the client registered (`request_uris`), fetched as any URL a
  client names is: https, public addresses only, at most MAX_BYTES within TIMEOUT_SECONDS
  (outbound.fetch_from_outside). It is fetched at each pass through /authorize, as it usually
  holds the state and nonce of one request; at most FETCHES_PER_WINDOW times per client
  address in FETCH_WINDOW_SECONDS.

A request pushed to /par may carry an object too (RFC 9126 §3); its `request_uri` is then
the pushed request's (pushed_requests.py), not one to fetch.
"""

from __future__ import annotations

import json
import warnings

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError
from authlib.oauth2.rfc9101.errors import InvalidRequestUriError
from authlib.oidc.core.authorization_request import OpenIDJWTAuthenticationRequest
from flask import current_app
from flask import g
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from ..security import audit
from ..security import rate_limit
from . import client_keys
from . import outbound
from . import pushed_requests
from .client_assertion import ALGORITHMS

LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 3600  # of a client that must sign every request: FAPI 2.0
MAX_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5
FETCHES_PER_WINDOW = 60  # per client address
FETCH_WINDOW_SECONDS = 300
MEDIA_TYPE = "application/oauth-authz-req+jwt"
# Claims of the JWT itself, not parameters of the request it carries.
JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})


class InvalidRequestObject(InvalidRequestObjectError):
    def __init__(self, description: str):
        super().__init__(description=description)


class TooManyFetches(InvalidRequestUriError):
    status_code = 429
    description = ("Too many request objects were fetched for this address; try again "
                   "later.")


def sends_one(params) -> bool:
    """Whether these authorization parameters carry a request object (by value, or by a
    reference other than a pushed request's)."""
    return bool(params.get("request")) or (
        bool(params.get("request_uri"))
        and not pushed_requests.is_pushed(params.get("request_uri")))


class RequestObjects(OpenIDJWTAuthenticationRequest):
    @property
    def claims_validator(self) -> jwt.JWTClaimsRegistry:
        """exp and nbf with LEEWAY_SECONDS; for an object the browser brings back from
        sign-in or consent (checked when it came, views/oauth.py), RESUME_SECONDS more."""
        resumed = g.get("authorization_resumed", False)
        return jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS + (pushed_requests.RESUME_SECONDS if resumed else 0),
            client_id={"essential": True})

    def parse_authorization_request(self, server, request):
        """Replace the request's parameters with its object's; a request without one, or
        one naming a pushed request, is left as it is."""
        client_id = request.payload.client_id
        if not sends_one(request.payload.data) or (client := server.query_client(
                client_id)) is None:
            return  # an unknown client is refused as in any request, by the grant
        try:
            with warnings.catch_warnings():  # joserfc warns that "EdDSA" is deprecated
                warnings.simplefilter("ignore", SecurityWarning)
                super().parse_authorization_request(server, request)
        except OAuth2Error:
            raise
        except client_keys.KeysUnavailable as error:
            audit.log("request_object.jwks_unavailable", client_id=client_id, reason=str(error))
            raise InvalidRequestObject("The client's keys cannot be fetched from its "
                                       "jwks_uri.") from None
        except (ValueError, TypeError, RecursionError):  # unreadable past what joserfc names
            raise InvalidRequestObject("The request object cannot be read.") from None
        claims = request.payload.data
        if problem := _problem_with_addressing(claims, client_id,
                                               client.require_signed_request_object):
            raise InvalidRequestObject(f"The request object {problem}.")
        if client.require_signed_request_object and (problem := _problem_with_lifetime(claims)):
            raise InvalidRequestObject(f"The request object {problem}.")
        request.payload = pushed_requests.as_oauth2_request(_parameters(claims)).payload

    def get_server_metadata(self) -> dict:
        return {"require_request_uri_registration": True,
                "request_object_signing_alg_values_supported": ALGORITHMS}

    def get_request_object_signing_algorithms(self, client) -> list[str]:
        """OIDC Dynamic Registration §2: a client that named its algorithm signs with it."""
        named = client.request_object_signing_alg
        return [named] if named else ALGORITHMS

    def get_client_require_signed_request_object(self, client) -> bool:
        return client.require_signed_request_object

    def get_client_request_uris(self, client) -> list[str]:
        return list(client.request_uris)

    def validate_request_uri(self, request_uri: str, client) -> bool:
        return True  # a registered one (above), checked when it was registered

    def get_request_object(self, request_uri: str) -> str | None:
        # Each pass through /authorize fetches again: so that nobody makes the provider hammer
        # a client's server, fetches are counted per address (three make one sign-in).
        if rate_limit.count_attempt(f"request_uri:ip:{flask_request.remote_addr}",
                                    FETCH_WINDOW_SECONDS) > FETCHES_PER_WINDOW:
            raise TooManyFetches()
        try:
            body = outbound.fetch_from_outside(request_uri, max_bytes=MAX_BYTES,
                                               timeout=TIMEOUT_SECONDS, accept=MEDIA_TYPE).body
            return body.decode("ascii").strip()
        except outbound.FetchFailed as error:
            reason = str(error)
        except UnicodeDecodeError:
            reason = "not a JWT"
        # The client_id the browser sent: a registered one, whose request_uri this is.
        audit.log("request_object.fetch_failed", client_id=flask_request.values.get("client_id"),
                  reason=reason)
        return None  # Authlib answers invalid_request_uri

    def resolve_client_public_key(self, client):
        if client.jwks:
            return KeySet.import_key_set(client.jwks)
        if client.jwks_uri:
            def keys_for(token):  # by the kid it names: a client that just rotated is refetched
                kid = token.headers().get("kid")
                return KeySet.import_key_set(client_keys.keys_at(
                    client.jwks_uri, kid if isinstance(kid, str) else None,
                    client.self_registered))
            return keys_for
        raise InvalidRequestObject("This client has no registered keys to verify a request "
                                   "object with: register them for private_key_jwt.")


def _problem_with_addressing(claims: dict, client_id: str, required: bool) -> str | None:
    """RFC 9101 §4 and OIDC Core §6.1: `iss` SHOULD be the client and `aud` this provider, so
    that a JWT the client signed for another server is not taken for a request (§10.8). Where
    present they must be; a client that must sign every request (FAPI 2.0) sends both."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if (required or "iss" in claims) and claims.get("iss") != client_id:
        return "must have the client_id as iss"
    if (required or "aud" in claims) and current_app.config["ISSUER"] not in audiences:
        return "must have this provider's issuer as aud"
    return None


def _problem_with_lifetime(claims: dict) -> str | None:
    """FAPI 2.0 Message Signing §5.3.2, for the clients that must sign every request: `exp` and
    `nbf` both, at most MAX_LIFETIME_SECONDS apart. As `exp` is checked to be still ahead,
    `nbf` is then at most that old, as FAPI asks too."""
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not all(isinstance(value, int | float) and not isinstance(value, bool)
               for value in (exp, nbf)):
        return "must have exp and nbf"
    if exp - nbf > MAX_LIFETIME_SECONDS:
        return f"may live {MAX_LIFETIME_SECONDS // 60} minutes at most (from nbf to exp)"
    return None


def parameters_of(server, params: dict) -> dict:
    """The parameters of the request object these parameters carry, verified, as a request
    pushed to /par keeps them."""
    request = pushed_requests.as_oauth2_request(params)
    RequestObjects().parse_authorization_request(server, request)
    return pushed_requests.authorization_parameters(request.payload.data)


def _parameters(claims: dict) -> dict:
    """The authorization parameters an object's claims make, as strings, as they would be in
    a URL: numbers (max_age) in decimal, a JSON object (claims) as JSON, and a list only of
    strings (resource, RFC 8707)."""
    params = {}
    for name, value in claims.items():
        if name in JWT_CLAIMS:
            continue
        if isinstance(value, bool) or value is None:
            raise InvalidRequestObject(f"The request object's {_safe(name)} is not a string.")
        if isinstance(value, int | float):
            value = str(value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise InvalidRequestObject(f"The request object's {_safe(name)} is not a list of "
                                       "strings.")
        texts = [name, *(value if isinstance(value, list) else [value])]
        if any("\x00" in text for text in texts):
            raise InvalidRequestObject("The request object holds a NUL character, which no "
                                       "parameter may contain.")
        if not all(_is_unicode(text) for text in texts):  # a lone surrogate, from JSON's \ud800
            raise InvalidRequestObject("The request object holds text that is not valid "
                                       "Unicode.")
        params[name] = value
    return params


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _safe(name: str) -> str:
    """A claim name fit for an error description (printable ASCII, no quote or backslash)."""
    fit = name.isascii() and name.isprintable() and not set(name) & {'"', "\\"} and len(name) < 40
    return name if fit else "claim"
