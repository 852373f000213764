"""Dynamic client registration (RFC 7591): an application registers itself by POSTing its
metadata to /register, where the operator allows it (`IDP_CLIENT_REGISTRATION`).

What a self-registered client may be is narrower than what the operator can register with
`idp clients create`: it signs users in with the authorization code grant (PKCE, as every
client), and may refresh; it is never first-party, so the consent page always asks, and says
that the name is the client's own claim. With open registration anyone could make the
provider send requests into its own network: a `jwks_uri`, the `request_uris` where a
client with keys publishes request objects, a pairwise client's `sector_identifier_uri` and
a `logo_uri` (drawn on the consent page, logos.py) are fetched only from public addresses
(outbound.fetch_from_outside), and a `backchannel_logout_uri`, which the provider POSTs to,
needs the initial access token and is called the same guarded way.

Metadata this provider does not use (client_uri, contacts, software_id...) is
ignored and not echoed back (RFC 7591 §2); metadata asking for what it cannot do (encryption,
an ID token algorithm other than RS256) is refused.

Registration management (RFC 7592): the answer to a registration carries a registration
access token (256 bits, kept as a keyed hash) and the client's own URI, /register/CLIENT_ID,
where the client reads its registration (GET), replaces it (PUT, by the rules of a
registration) or deletes itself (DELETE). Each read or update answers with a new token, and
the one it was made with stops working: a token that leaks is good once. What the client
cannot change is how it authenticates and how it knows its users (`subject_type`); a new
back-channel logout URI still needs the operator. Clients the operator registered have no
token: `idp clients` manages them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import current_app

from ..keys import ALGORITHM
from ..models import Client
from ..models.client import KEY_AUTH_METHOD
from ..models.client import PUBLIC_SUBJECTS
from ..models.client import SUBJECT_TYPES
from ..models.client import problem_with_client_uri
from ..models.client import problem_with_request_uri
from ..models.client import problem_with_web_url
from ..models.user import problem_with_text
from ..security.hashing import hash_secret
from ..security.hashing import new_secret
from . import client_assertion
from . import logos
from . import sectors
from .claims import SUPPORTED_SCOPES
from .client_keys import problem_with_jwks
from .token_store import to_timestamp

AUTH_METHODS = ("client_secret_basic", "client_secret_post", KEY_AUTH_METHOD, "none")
# What the server says of a client, which the client may not send back (RFC 7592 §2.2).
SERVER_FIELDS = ("registration_access_token", "registration_client_uri",
                 "client_secret_expires_at", "client_id_issued_at")
GRANT_TYPES = ("authorization_code", "refresh_token")
DEFAULT_SCOPE = "openid profile email"
# What a client's metadata says of it, which a new description replaces as a whole.
DESCRIBED_FIELDS = ("name", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri",
                    "grant_types", "scope", "policy_uri", "tos_uri", "require_dpop", "jwks",
                    "jwks_uri", "request_uris", "require_signed_request_object",
                    "request_object_signing_alg", "userinfo_signed_response_alg",
                    "sector_identifier_uri", "token_endpoint_auth_signing_alg", "logo_uri", "logo")
MAX_URIS = 20  # of each kind
MAX_URI_LENGTH = 2000
NAME_MAX_LENGTH = 200


def enabled() -> bool:
    return current_app.config["CLIENT_REGISTRATION"] != "off"


class InvalidClientMetadata(OAuth2Error):
    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuth2Error):
    error = "invalid_redirect_uri"


class InvalidRequest(OAuth2Error):
    error = "invalid_request"


def client_from(metadata, with_token: bool) -> tuple[Client, str]:
    """A new client (not yet added to the session) as `metadata` describes it, and the
    token_endpoint_auth_method it asked for; InvalidClientMetadata or InvalidRedirectUri."""
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("The request body must be a JSON object of client metadata.")
    redirect_uris = _uris(metadata, "redirect_uris", InvalidRedirectUri, required=True)
    logout_uris = _uris(metadata, "post_logout_redirect_uris", InvalidClientMetadata)
    grant_types = _strings(metadata, "grant_types", ["authorization_code"])
    if "authorization_code" not in grant_types or not set(grant_types) <= set(GRANT_TYPES):
        raise InvalidClientMetadata("grant_types may be authorization_code, with "
                                    "refresh_token; other grants are registered by the operator.")
    if _strings(metadata, "response_types", ["code"]) != ["code"]:
        raise InvalidClientMetadata("response_types may only be code.")
    subject_type = _string(metadata, "subject_type") or PUBLIC_SUBJECTS
    if subject_type not in SUBJECT_TYPES:
        raise InvalidClientMetadata("subject_type must be public or pairwise.")
    method = _string(metadata, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata("token_endpoint_auth_method must be one of: "
                                    + ", ".join(AUTH_METHODS) + ".")
    _refuse_what_is_not_done(metadata)
    client = Client(
        name=_name(metadata, redirect_uris[0]),
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        backchannel_logout_uri=_backchannel_logout_uri(metadata, with_token),
        grant_types=grant_types,
        scope=_scope(metadata, grant_types),
        # As asked (private_key_jwt is set with the keys, below); either secret method is
        # accepted at the endpoints, the one named is what a read of the registration says.
        token_endpoint_auth_method=method if method != KEY_AUTH_METHOD else "client_secret_basic",
        self_registered=True,
        subject_type=subject_type,
        policy_uri=_web_url(metadata, "policy_uri"),
        tos_uri=_web_url(metadata, "tos_uri"),
        require_dpop=_boolean(metadata, "dpop_bound_access_tokens"),  # RFC 9449 §5.2
        userinfo_signed_response_alg=_one_of(metadata, "userinfo_signed_response_alg",
                                             [ALGORITHM]),
    )
    _keys(metadata, client, method)
    _request_objects(metadata, client)
    # Last, as they are fetched: a registration refused for anything else fetches nothing.
    client.sector_identifier_uri = _sector_identifier_uri(metadata, redirect_uris)
    if problem := client.settle_sector():
        raise InvalidClientMetadata(f"{problem}.")
    client.logo_uri, client.logo = _logo(metadata)
    return client, method


def update_from(client: Client, metadata) -> str:
    """RFC 7592 §2.2: replace a self-registered client's metadata with `metadata`, checked as a
    registration is; returns the token_endpoint_auth_method it names. The caller commits, or
    rolls back on an error."""
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("The request body must be a JSON object of client metadata.")
    if metadata.get("client_id") != client.client_id:
        raise InvalidRequest("client_id must be the client's own.")
    if sent := [name for name in SERVER_FIELDS if name in metadata]:
        raise InvalidRequest(f"{', '.join(sent)}: the server's to say, not the client's.")
    secret = metadata.get("client_secret")
    if secret is not None and not (isinstance(secret, str) and client.check_client_secret(secret)):
        raise InvalidClientMetadata("client_secret is not the client's secret.")
    # A back-channel logout URI registered with the initial access token may stay as it is.
    registered_uri = client.backchannel_logout_uri
    updated, method = client_from(metadata, with_token=registered_uri is not None and
                                  metadata.get("backchannel_logout_uri") == registered_uri)
    if _kind_of_auth(updated) != _kind_of_auth(client):
        raise InvalidClientMetadata("token_endpoint_auth_method cannot change: register a new "
                                    "client.")
    if updated.subject_type != client.subject_type:
        raise InvalidClientMetadata("subject_type cannot change: the client's users are known "
                                    "by their subjects.")
    for name in (*DESCRIBED_FIELDS, "token_endpoint_auth_method"):
        setattr(client, name, getattr(updated, name))
    if problem := client.settle_sector():
        raise InvalidRedirectUri(f"{problem}.")
    return method


def registered_auth_method(client: Client) -> str:
    """How the client authenticates, as registration metadata names it."""
    return client.token_endpoint_auth_method


def _kind_of_auth(client: Client) -> str:
    """What an update cannot change: no credentials, a secret, or keys. Between the two ways
    of sending a secret, a client may move."""
    return "none" if client.is_public else "keys" if client.uses_keys else "secret"


def management_credentials(client: Client) -> dict:
    """RFC 7592 §3: a new registration access token, which replaces the client's previous
    one, and the URI it works at. The caller commits."""
    token = new_secret()
    client.registration_token_hash = hash_secret(token)
    return {"registration_access_token": token,
            "registration_client_uri": f"{current_app.config['ISSUER']}/register/"
                                       f"{client.client_id}"}


def registration_response(client: Client, method: str, secret: str | None) -> dict:
    """RFC 7591 §3.2.1: the client's id, its secret if it has one (shown this once), and its
    metadata as registered."""
    body = {
        "client_id": client.client_id,
        "client_id_issued_at": to_timestamp(client.created_at),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "scope": client.scope,
        "subject_type": client.subject_type,
        "dpop_bound_access_tokens": client.require_dpop,
    }
    if secret is not None:
        body.update(client_secret=secret, client_secret_expires_at=0)  # 0: never
    if client.post_logout_redirect_uris:
        body["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.backchannel_logout_uri:
        body["backchannel_logout_uri"] = client.backchannel_logout_uri
    if client.jwks:
        body["jwks"] = client.jwks
    for name in ("jwks_uri", "policy_uri", "tos_uri", "logo_uri", "request_object_signing_alg",
                 "userinfo_signed_response_alg", "sector_identifier_uri",
                 "token_endpoint_auth_signing_alg"):
        if value := getattr(client, name):
            body[name] = value
    if client.request_uris:
        body["request_uris"] = list(client.request_uris)
    if client.require_signed_request_object:
        body["require_signed_request_object"] = True
    return body


def _uris(metadata: dict, name: str, error, required: bool = False) -> list[str]:
    uris = _strings(metadata, name, [])
    if required and not uris:
        raise error(f"{name} must name at least one URI.")
    if len(uris) > MAX_URIS:
        raise error(f"{name} may name at most {MAX_URIS} URIs.")
    for uri in uris:
        if problem := _problem_with(uri, problem_with_client_uri):
            # The URI itself is not repeated: it is the caller's text.
            raise error(f"A URI of {name} {problem}.")
    return list(dict.fromkeys(uris))


def _name(metadata: dict, first_redirect_uri: str) -> str:
    """client_name, or, without one, where the client's first redirect URI points."""
    name = _string(metadata, "client_name")
    if name is None:
        parts = urlsplit(first_redirect_uri)
        name = parts.netloc or parts.scheme
    if problem := problem_with_text(name, NAME_MAX_LENGTH):
        raise InvalidClientMetadata(f"client_name {problem}.")
    return name


def _scope(metadata: dict, grant_types: list[str]) -> str:
    """The scopes asked, each one this provider knows; without any, the default ones, and
    offline_access with the refresh_token grant (which needs it, OIDC Core §11)."""
    scope = _string(metadata, "scope")
    if scope is None:
        scopes = DEFAULT_SCOPE.split() + (["offline_access"]
                                          if "refresh_token" in grant_types else [])
    else:
        scopes = list(dict.fromkeys(scope.split()))
        if unknown := [s for s in scopes if s not in SUPPORTED_SCOPES]:
            raise InvalidClientMetadata(f"scope names {len(unknown)} unknown scope(s); the "
                                        "provider's are in scopes_supported.")
        if "refresh_token" in grant_types and "offline_access" not in scopes:
            raise InvalidClientMetadata("The refresh_token grant needs offline_access in scope.")
    return " ".join(scopes)


def _backchannel_logout_uri(metadata: dict, with_token: bool) -> str | None:
    uri = _string(metadata, "backchannel_logout_uri")
    if uri is None:
        return None
    if not with_token:
        raise InvalidClientMetadata("backchannel_logout_uri needs an initial access token: "
                                    "the provider would call it.")
    return _web_url(metadata, "backchannel_logout_uri")


def _web_url(metadata: dict, name: str) -> str | None:
    uri = _string(metadata, name)
    if uri is not None and (problem := _problem_with(uri, problem_with_web_url)):
        raise InvalidClientMetadata(f"{name} {problem}.")
    return uri


def _problem_with(uri: str, rule) -> str | None:
    return f"is longer than {MAX_URI_LENGTH} characters" if len(uri) > MAX_URI_LENGTH else rule(uri)


def _keys(metadata: dict, client: Client, method: str) -> None:
    """private_key_jwt (RFC 7523): the client's public keys, given inline in jwks or published
    at a jwks_uri, which is fetched as a URL anyone may name is (client_keys.py): https, to
    public addresses only. It is first fetched at the client's first assertion."""
    jwks, jwks_uri = metadata.get("jwks"), _web_url(metadata, "jwks_uri")
    if method != KEY_AUTH_METHOD:
        if jwks is not None or jwks_uri is not None:
            raise InvalidClientMetadata("jwks and jwks_uri are for token_endpoint_auth_method "
                                        "private_key_jwt.")
        return
    if (jwks is None) == (jwks_uri is None):
        raise InvalidClientMetadata("private_key_jwt needs the client's public keys: in jwks, "
                                    "or at a jwks_uri (one of the two).")
    client.token_endpoint_auth_method = KEY_AUTH_METHOD
    client.token_endpoint_auth_signing_alg = _one_of(
        metadata, "token_endpoint_auth_signing_alg", client_assertion.ALGORITHMS)
    if jwks_uri is not None:
        if urlsplit(jwks_uri).scheme != "https":  # loopback http is for redirects only
            raise InvalidClientMetadata("jwks_uri must be an https URL.")
        client.jwks_uri = jwks_uri
        return
    if problem := problem_with_jwks(jwks):
        # RFC 6749 §5.2 allows no double quote in a description.
        raise InvalidClientMetadata(f"jwks: {problem}.".replace('"', "'"))
    client.jwks = jwks


def _logo(metadata: dict) -> tuple[str | None, str | None]:
    """logo_uri, and the image fetched from it (logos.py)."""
    uri = _web_url(metadata, "logo_uri")
    if uri is None:
        return None, None
    if urlsplit(uri).scheme != "https":
        raise InvalidClientMetadata("logo_uri must be an https URL.")
    try:
        return uri, logos.fetch_logo(uri)
    except logos.LogoUnusable as problem:
        raise InvalidClientMetadata(f"logo_uri {problem}.") from None


def _sector_identifier_uri(metadata: dict, redirect_uris: list[str]) -> str | None:
    """OIDC Dynamic Registration §5: an https URL listing the redirect URIs, fetched now."""
    uri = _web_url(metadata, "sector_identifier_uri")
    if uri is None:
        return None
    if urlsplit(uri).scheme != "https":
        raise InvalidClientMetadata("sector_identifier_uri must be an https URL.")
    if problem := sectors.problem_with_sector_uri(uri, redirect_uris):
        raise InvalidClientMetadata(f"sector_identifier_uri {problem}.")
    return uri


# OIDC Dynamic Registration §2 metadata asking for encryption, which this provider does not
# do: a client that asked for it and got plain tokens would be right to refuse them.
ENCRYPTION_FIELDS = tuple(f"{what}_{part}" for what in (
    "id_token_encrypted_response", "userinfo_encrypted_response", "request_object_encryption",
    "authorization_encrypted_response", "introspection_encrypted_response")
    for part in ("alg", "enc"))


def _refuse_what_is_not_done(metadata: dict) -> None:
    """Metadata this provider cannot honour is refused, not ignored: the client would expect
    what it asked for. ID tokens and JARM responses are signed RS256 only."""
    if asked := [name for name in ENCRYPTION_FIELDS if metadata.get(name) is not None]:
        raise InvalidClientMetadata(f"{', '.join(asked)}: encryption is not supported.")
    _one_of(metadata, "id_token_signed_response_alg", [ALGORITHM])
    _one_of(metadata, "authorization_signed_response_alg", [ALGORITHM])  # JARM


def _request_objects(metadata: dict, client: Client) -> None:
    """RFC 9101 and OIDC Dynamic Registration §2: where the client publishes request objects,
    whether it always sends one, and what it signs them with. They are verified with the
    client's keys, so they are for a private_key_jwt client."""
    request_uris = _strings(metadata, "request_uris", [])
    if len(request_uris) > MAX_URIS:
        raise InvalidClientMetadata(f"request_uris may name at most {MAX_URIS} URIs.")
    for uri in request_uris:
        if problem := problem_with_request_uri(uri):
            raise InvalidClientMetadata(f"A URI of request_uris {problem}.")
    client.request_uris = list(dict.fromkeys(request_uris))
    client.require_signed_request_object = _boolean(metadata, "require_signed_request_object")
    client.request_object_signing_alg = _one_of(metadata, "request_object_signing_alg",
                                                client_assertion.ALGORITHMS)
    if not client.uses_keys and (client.request_uris or client.require_signed_request_object
                                 or client.request_object_signing_alg):
        raise InvalidClientMetadata("Request objects are verified with the client's keys: "
                                    "register them (jwks or jwks_uri, for private_key_jwt).")


def _one_of(metadata: dict, name: str, values: list[str]) -> str | None:
    value = _string(metadata, name)
    if value is not None and value not in values:
        raise InvalidClientMetadata(f"{name} must be one of: {', '.join(values)}.")
    return value


def _string(metadata: dict, name: str) -> str | None:
    value = metadata.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidClientMetadata(f"{name} must be a string.")
    return value


def _boolean(metadata: dict, name: str) -> bool:
    value = metadata.get(name, False)
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false.")
    return value


def _strings(metadata: dict, name: str, default: list[str]) -> list[str]:
    value = metadata.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings.")
    return value
