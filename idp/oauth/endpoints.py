"""Endpoints besides authorize and token: /userinfo (OIDC Core §5.3), end_session
(RP-Initiated Logout), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import MissingAuthorizationError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app

from ..keys import ALGORITHM
from ..models import RefreshToken
from ..models import db
from ..models.client import ANY_AUTH_METHOD
from ..models.client import CONFIDENTIAL_AUTH_METHODS
from ..security import audit
from ..sessions import end_login_session
from .claims import generate_user_info
from .subjects import subject_for
from .token_store import AccessToken
from .token_store import deny_access_token
from .token_store import load_access_token
from .token_store import load_token
from .token_store import revoke_family
from .token_store import to_timestamp


class JWTAccessTokenValidator(BearerTokenValidator):
    """/userinfo takes a live access token of ours that was issued to a user."""

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return load_access_token(token_string)

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if token.user is None:  # client credentials: there is no user to describe
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)


class NoAccessTokenError(OAuth2Error):
    """A request to /userinfo that carries no bearer token at all. RFC 6750 §3.1: the
    challenge then names no error, as the client may not have known a token was needed; the
    JSON body still says what is missing."""

    error = "invalid_token"
    description = "No access token: send one in the Authorization header as 'Bearer <token>'."
    status_code = 401

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", "Bearer")]


class BearerResourceProtector(ResourceProtector):
    """Authlib answers a missing Authorization header, or one of another scheme, with a
    `missing_authorization` or `unsupported_token_type` error code that RFC 6750 does not
    define for resource requests."""

    def parse_request_authorization(self, request):
        try:
            return super().parse_request_authorization(request)
        except (MissingAuthorizationError, UnsupportedTokenTypeError):
            raise NoAccessTokenError() from None


class UserInfoEndpoint(_UserInfoEndpoint):
    def generate_user_info(self, user, scope):
        return generate_user_info(user, scope)

    def get_issuer(self) -> str:
        return current_app.config["ISSUER"]

    def resolve_private_key(self):
        return current_app.extensions["idp.keys"].signing_key().private

    def get_supported_algorithms(self) -> list[str]:
        return [ALGORITHM]


class EndSessionEndpoint(_EndSessionEndpoint):
    """The id_token_hint must be one of ours: our key, our issuer; expiry does not matter
    (OIDC RP-Initiated Logout §2), so a hint signed by a key still published works."""

    def get_server_jwks(self):
        return current_app.extensions["idp.keys"].public_jwks()

    def get_algorithms(self) -> list[str]:
        return [ALGORITHM]

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        """Authlib makes joserfc's message, which can quote the hint's own header, the error
        description, and fails outright (a 500) when that holds characters RFC 6749 does not
        allow there. Whatever is wrong with the hint, say so without the sender's text."""
        try:
            return super()._validate_id_token_hint(id_token_hint)
        except Exception:
            raise InvalidRequestError(
                "The id_token_hint is not a valid ID token of this provider.") from None

    def validate_request(self, request):
        end_session_request = super().validate_request(request)
        claims = end_session_request.id_token_claims
        if claims is not None and claims.get("iss") != current_app.config["ISSUER"]:
            raise InvalidRequestError("The id_token_hint was not issued by this provider.")
        return end_session_request

    def end_session(self, end_session_request) -> None:
        end_login_session(reason="rp_initiated_logout")


class DetectsTokenType:
    """The kind of a token is told by its shape (token_store.load_token), so the optional
    token_type_hint is ignored, whatever it says (RFC 7662 §2.1, RFC 7009 §2.1)."""

    def check_params(self, request, client) -> None:
        if "token" not in request.form:
            raise InvalidRequestError("The 'token' parameter is required.")

    def query_token(self, token_string, token_type_hint):
        return load_token(token_string)


class IntrospectionEndpoint(DetectsTokenType, _IntrospectionEndpoint):
    """RFC 7662 for confidential clients. A client sees its own tokens; a resource server
    registered with `introspect_any` sees every token. Anything else — expired, revoked,
    malformed, another client's — is just {"active": false}."""

    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

    def check_permission(self, token, client, request) -> bool:
        return client.introspect_any or token.check_client(client)

    def introspect_token(self, token) -> dict:
        if isinstance(token, AccessToken):
            claims = token.claims
            return {
                "active": True,
                "token_type": "Bearer",
                **{name: claims[name] for name in
                   ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti")
                   if name in claims},
            }
        family = token.family
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": family.scope,
            "client_id": family.client_id,
            "sub": subject_for(family.user, family.client),
            "iss": current_app.config["ISSUER"],
            "exp": to_timestamp(min(token.expires_at, family.expires_at)),
            "iat": to_timestamp(token.issued_at),
        }


class RevocationEndpoint(DetectsTokenType, _RevocationEndpoint):
    """RFC 7009. A refresh token takes its family with it, access tokens included; an access
    token goes on the deny-list until it expires. Unknown or dead tokens: 200 all the same.
    Public clients may revoke their own tokens (a mobile app signing out)."""

    CLIENT_AUTH_METHODS = list(ANY_AUTH_METHOD)

    def revoke_token(self, token, request) -> None:
        if isinstance(token, RefreshToken):
            revoke_family(token.family, "revoked_by_client")
            db.session.commit()
            kind = "refresh_token"
        else:
            deny_access_token(token)
            kind = "access_token"
        audit.log("token.revoked", client_id=request.client.client_id, token_type=kind)
