"""The Authlib authorization server, wired to our models, keys and grants."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import UnsupportedResponseTypeError
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from flask import Flask
from flask import current_app

from ..models import Client
from .endpoints import EndSessionEndpoint
from .endpoints import IntrospectionEndpoint
from .endpoints import JWTAccessTokenValidator
from .endpoints import RevocationEndpoint
from .endpoints import UserInfoEndpoint
from .grants import AuthorizationCodeGrant
from .grants import ClientCredentialsGrant
from .grants import RefreshTokenGrant
from .oidc import OpenIDCode
from .pkce import S256CodeChallenge


class AuthorizationServer(_AuthorizationServer):
    def query_client(self, client_id):
        if not isinstance(client_id, str) or len(client_id) > 64:
            return None
        return Client.by_client_id(client_id)

    def get_authorization_grant(self, request):
        """Authlib echoes the requested response_type into the error description (and fails on
        non-ASCII); describe the error without the attacker's text instead."""
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            raise UnsupportedResponseType(redirect_uri=error.redirect_uri) from None
        except ValueError:
            raise UnsupportedResponseType() from None

    def authenticate_client(self, request, methods, endpoint="token"):
        try:
            return super().authenticate_client(request, methods, endpoint)
        except ValueError:  # Authlib's Basic parser raises on "Basic " or non-UTF-8 credentials
            raise InvalidClientError(status_code=401) from None


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
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.issuer_parameter = IssuerParameter()
    server.register_extension(server.issuer_parameter)
    resource_protector = ResourceProtector()
    resource_protector.register_token_validator(JWTAccessTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=resource_protector))
    server.register_endpoint(EndSessionEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    app.extensions["idp.authorization"] = server
    return server


def authorization() -> AuthorizationServer:
    return current_app.extensions["idp.authorization"]
