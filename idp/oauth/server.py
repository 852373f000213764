"""The Authlib authorization server, wired to our models, keys and grants."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import UnsupportedResponseTypeError
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from flask import Flask
from flask import current_app

from ..models import Client
from ..models import Token
from ..models import db
from .endpoints import EndSessionEndpoint
from .endpoints import JWTAccessTokenValidator
from .endpoints import UserInfoEndpoint
from .grants import AuthorizationCodeGrant
from .oidc import OpenIDCode
from .pkce import S256CodeChallenge
from .tokens import generate_token
from .tokens import unverified_claims


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

    def save_token(self, token, request) -> None:
        """Record user tokens so that they can be revoked; the JWT itself is not stored."""
        if request.user is None:
            return
        claims = unverified_claims(token["access_token"])
        code = getattr(request, "authorization_code", None)
        db.session.add(
            Token(
                jti=claims["jti"],
                client_id=request.client.client_id,
                user_id=request.user.id,
                authorization_code_id=code.id if code is not None else None,
                scope=token.get("scope", ""),
                issued_at=_from_timestamp(claims["iat"]),
                expires_at=_from_timestamp(claims["exp"]),
            )
        )
        db.session.commit()


class UnsupportedResponseType(UnsupportedResponseTypeError):
    def __init__(self, **kwargs):
        super().__init__(None, **kwargs)

    def get_error_description(self) -> str:
        return "Only response_type=code is supported."


class IssuerParameter(_IssuerParameter):
    """RFC 9207: `iss` on every authorization response, errors included."""

    def get_issuer(self) -> str:
        return current_app.config["ISSUER"]


def _from_timestamp(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


def init_app(app: Flask) -> AuthorizationServer:
    """One server per app, so that tests can build many apps in one process."""
    server = AuthorizationServer(app)
    server.register_token_generator("default", generate_token)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDCode()])
    server.issuer_parameter = IssuerParameter()
    server.register_extension(server.issuer_parameter)
    resource_protector = ResourceProtector()
    resource_protector.register_token_validator(JWTAccessTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=resource_protector))
    server.register_endpoint(EndSessionEndpoint)
    app.extensions["idp.authorization"] = server
    return server


def authorization() -> AuthorizationServer:
    return current_app.extensions["idp.authorization"]
