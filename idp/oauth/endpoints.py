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
from flask import request as flask_request
from joserfc.jwk import KeySet

from ..keys import ALGORITHM
from ..models import RefreshToken
from ..models import db
from ..models.client import ANY_AUTH_METHOD
from ..models.client import CONFIDENTIAL_AUTH_METHODS
from ..security import audit
from ..sessions import end_login_session
from . import dpop
from .claims import generate_user_info
from .subjects import subject_for
from .token_store import AccessToken
from .token_store import deny_access_token
from .token_store import load_access_token
from .token_store import load_token
from .token_store import revoke_family
from .token_store import to_timestamp


class JWTAccessTokenValidator(BearerTokenValidator):
    """/userinfo takes a live access token of ours that was issued to a user, as a Bearer
    token unless it is bound to a DPoP key."""

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = load_access_token(token_string)
        if token is not None and token.dpop_jkt is not None:  # RFC 9449 §7.2
            raise _misused(token, "bound_token_sent_as_bearer", "invalid_token",
                           "This access token is bound to a DPoP key: send it with the DPoP "
                           "scheme and a proof.")
        return token

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if token.user is None:  # client credentials: there is no user to describe
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)


class DPoPAccessTokenValidator(JWTAccessTokenValidator):
    """`Authorization: DPoP <token>` (RFC 9449 §7.1): a token bound to a key, with a proof by
    that key naming this request and the token. Refusals carry a DPoP challenge."""

    TOKEN_TYPE = "dpop"

    def authenticate_token(self, token_string: str) -> AccessToken:
        token = load_access_token(token_string)
        if token is None:
            raise dpop.ResourceDPoPError("invalid_token", InvalidTokenError.description)
        if token.dpop_jkt is None:
            raise dpop.ResourceDPoPError("invalid_token", "This access token is not bound to a "
                                         "DPoP key: send it as a Bearer token.")
        try:
            proof_jkt = dpop.proof_key(flask_request.path, access_token=token_string)
        except dpop.InvalidDPoPProofError as error:
            raise dpop.ResourceDPoPError(error.error, error.description) from None
        if proof_jkt is None:
            raise dpop.ResourceDPoPError("invalid_dpop_proof", "A DPoP-bound access token "
                                         "needs a DPoP proof in the DPoP header.")
        if proof_jkt != token.dpop_jkt:
            raise _misused(token, "proof_of_another_key", "invalid_dpop_proof",
                           "The DPoP proof is signed by another key than the one the token is "
                           "bound to.")
        return token

    def validate_token(self, token, scopes, request):
        try:
            super().validate_token(token, scopes, request)
        except InvalidTokenError as error:
            raise dpop.ResourceDPoPError(error.error, error.get_error_description()) from None


def _misused(token: AccessToken, reason: str, error: str,
             description: str) -> dpop.ResourceDPoPError:
    """A bound token used without its key: perhaps stolen, so audited with its client."""
    audit.log("dpop.rejected", reason=reason, client_id=token.claims["client_id"])
    return dpop.ResourceDPoPError(error, description)


class NoAccessTokenError(OAuth2Error):
    """A request to /userinfo that carries no bearer token at all. RFC 6750 §3.1: the
    challenge then names no error, as the client may not have known a token was needed; the
    JSON body still says what is missing."""

    error = "invalid_token"
    description = ("No access token: send one in the Authorization header as 'Bearer <token>' "
                   "or, if it is bound to a DPoP key, as 'DPoP <token>'.")
    status_code = 401

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", f"Bearer, {dpop.challenge()}")]


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

    def resolve_private_key(self) -> KeySet:
        """For a client registered with userinfo_signed_response_alg (OIDC Core §5.3.2): the
        active key, as a set of one, so that joserfc names its `kid` in the header and a
        relying party finds it in the JWKS during a rotation, as for ID tokens."""
        return KeySet([current_app.extensions["idp.keys"].signing_key().private])

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
                # RFC 9449 §6.2: a bound token says so, and names its key in `cnf`.
                "token_type": "DPoP" if token.dpop_jkt is not None else "Bearer",
                **{name: claims[name] for name in
                   ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "cnf")
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
