"""Resource-side endpoints: /userinfo (OIDC Core §5.3) and end_session (RP-Initiated Logout)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app

from ..keys import ALGORITHM
from ..models import Token
from ..sessions import end_login_session
from .claims import generate_user_info


class JWTAccessTokenValidator(BearerTokenValidator):
    """A bearer token is valid when our key signed it, it is ours (iss), unexpired, and its
    row says it was not revoked and its user is still enabled."""

    def authenticate_token(self, token_string: str) -> Token | None:
        keystore = current_app.extensions["idp.keys"]
        try:
            jwt = keystore.verify(token_string)
        except Exception:  # any malformed or foreign token is simply not a valid token
            return None
        claims = jwt.claims
        if jwt.header.get("typ") != "at+jwt" or claims.get("iss") != current_app.config["ISSUER"]:
            return None
        jti = claims.get("jti")
        return Token.by_jti(jti) if isinstance(jti, str) else None

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if token.user is None or token.user.disabled:
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)


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

    def validate_request(self, request):
        end_session_request = super().validate_request(request)
        claims = end_session_request.id_token_claims
        if claims is not None and claims.get("iss") != current_app.config["ISSUER"]:
            raise InvalidRequestError("The id_token_hint was not issued by this provider.")
        return end_session_request

    def end_session(self, end_session_request) -> None:
        end_login_session(reason="rp_initiated_logout")
