"""The Authlib authorization server, wired to our models, keys and grants."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749 import UnsupportedGrantTypeError
from authlib.oauth2.rfc6749 import UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from flask import Flask
from flask import current_app
from flask import request as flask_request

from ..models import RegisteredClient
from ..security import audit
from ..security.client_throttle import count_failure
from ..security.client_throttle import seconds_blocked
from ..security.client_throttle import throttle_key
from . import client_assertion
from . import device
from . import metadata_documents
from . import request_objects
from .endpoints import BearerResourceProtector
from .endpoints import DPoPAccessTokenValidator
from .endpoints import EndSessionEndpoint
from .endpoints import IntrospectionEndpoint
from .endpoints import JWTAccessTokenValidator
from .endpoints import RevocationEndpoint
from .endpoints import UserInfoEndpoint
from .grants import AuthorizationCodeGrant
from .grants import ClientCredentialsGrant
from .grants import RefreshTokenGrant
from .oidc import OpenIDCode
from .oidc import OpenIDRefresh
from .pkce import S256CodeChallenge


class AuthorizationServer(_AuthorizationServer):
    def create_oauth2_request(self, request):
        """A request rebuilt from a pushed one (pushed_requests.py) is used as it is; Flask's
        integration would read the current HTTP request instead."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def query_client(self, client_id):
        if not could_be_client_id(client_id):
            return None
        if metadata_documents.names_a_document(client_id):
            return metadata_documents.client_for(client_id)
        return RegisteredClient.find(client_id)

    def get_authorization_grant(self, request):
        """Authlib echoes the requested response_type into the error description (and fails on
        non-ASCII); describe the error without the attacker's text instead."""
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            raise UnsupportedResponseType(redirect_uri=error.redirect_uri) from None
        except ValueError:
            raise UnsupportedResponseType() from None

    def get_token_grant(self, request):
        """Authlib's error for an unknown grant_type carries no description in its body."""
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError:
            raise UnsupportedGrantType() from None

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib's client authentication, with failures audited and throttled."""
        attempted = attempted_client_id(request)
        key = throttle_key(attempted, flask_request.remote_addr) if attempted else None
        if key and (wait := seconds_blocked(key)):
            raise TooManyFailedAuthentications(wait)
        try:
            return super().authenticate_client(request, methods, endpoint)
        except ValueError:  # Authlib's Basic parser raises on "Basic " or non-UTF-8 credentials
            error = InvalidClientError("The Basic credentials cannot be read.", status_code=401)
        except metadata_documents.MetadataDocumentUnusable:
            raise  # not a failed authentication: no client to authenticate
        except InvalidClientError as exc:  # Authlib's description prints a Python list
            *others, last = methods
            exc.description = ("Client authentication failed; this endpoint accepts "
                               f"{', '.join(others)}{' or ' if others else ''}{last}.")
            error = exc
        # Only a registered client_id is logged: a confused caller may send its secret there.
        known = attempted if attempted and RegisteredClient.find(attempted) else None
        audit.log("client_auth.failed", endpoint=endpoint, client_id=known)
        if key and (wait := count_failure(key)):
            audit.log("client_auth.throttled", endpoint=endpoint, client_id=known)
            raise TooManyFailedAuthentications(wait) from None
        raise error from None


def could_be_client_id(value) -> bool:
    """Printable ASCII of at most 255 characters, as every client_id is (64 but for a
    metadata document's URL, metadata_documents.py). Anything else is nobody's and never
    reaches the database: Basic credentials are not among the parameters the app screens for
    NUL, which PostgreSQL refuses in any text."""
    return (isinstance(value, str) and 0 < len(value) <= metadata_documents.MAX_CLIENT_ID_LENGTH
            and value.isascii() and value.isprintable())


def attempted_client_id(request) -> str | None:
    """The client_id a request claims, from Basic credentials, the form or the subject of a
    client assertion; never trusted. None for one that no client can have: failures with it
    are not worth counting."""
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except ValueError:
        client_id = None
    client_id = (client_id or request.form.get("client_id")
                 or client_assertion.claimed_subject(request.form.get("client_assertion")))
    return client_id if could_be_client_id(client_id) else None


class TooManyFailedAuthentications(InvalidClientError):
    """429 with Retry-After: still `invalid_client`, which is what the client must fix."""

    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__("Too many failed authentications for this client from this address.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class UnsupportedGrantType(UnsupportedGrantTypeError):
    description = ("The grant_type is missing or not supported: use authorization_code, "
                   "refresh_token or client_credentials.")

    def __init__(self):
        super().__init__(None)


class UnsupportedResponseType(UnsupportedResponseTypeError):
    def __init__(self, **kwargs):
        super().__init__(None, **kwargs)

    def get_error_description(self) -> str:
        return "Only response_type=code is supported."


class IssuerParameter(_IssuerParameter):
    """RFC 9207: `iss` on every authorization response, errors included."""

    def get_issuer(self) -> str:
        return current_app.config["ISSUER"]


def init_app(app: Flask) -> AuthorizationServer:
    """One server per app, so that tests can build many apps in one process."""
    server = AuthorizationServer(app)
    # No token generator is registered: every grant builds its response with
    # tokens.token_response (grants.IssuesTokens).
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDCode()])
    server.register_grant(RefreshTokenGrant, [OpenIDRefresh()])
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(device.DeviceCodeGrant, [device.OpenIDDevice()])
    server.register_client_auth_method(client_assertion.METHOD, client_assertion.PrivateKeyJWT())
    server.issuer_parameter = IssuerParameter()
    server.register_extension(server.issuer_parameter)
    server.register_extension(request_objects.RequestObjects())
    resource_protector = BearerResourceProtector()
    resource_protector.register_token_validator(JWTAccessTokenValidator())
    resource_protector.register_token_validator(DPoPAccessTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=resource_protector))
    server.register_endpoint(EndSessionEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    app.extensions["idp.authorization"] = server
    return server


def authorization() -> AuthorizationServer:
    return current_app.extensions["idp.authorization"]
