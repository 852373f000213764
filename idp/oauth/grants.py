"""The grants of the token endpoint: authorization code (RFC 6749 §4.1) with hashed,
single-use codes; refresh token (§6) with rotation and reuse detection (RFC 9700 §4.14.2);
client credentials (§4.4). Every token response is built by tokens.token_response."""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749 import scope_to_list
from flask import current_app
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import update

from ..models import AuthorizationCode
from ..models import Consent
from ..models import RefreshToken
from ..models import TokenFamily
from ..models import db
from ..models import utcnow
from ..models.client import ANY_AUTH_METHOD
from ..models.client import CONFIDENTIAL_AUTH_METHODS
from ..models.tokens import refresh_reuse_grace
from ..security import audit
from ..security.hashing import hash_secret
from . import dpop
from . import response_modes
from .token_store import find_refresh_token
from .token_store import revoke_families
from .token_store import revoke_family
from .tokens import InvalidTargetError
from .tokens import record_user_tokens
from .tokens import requested_audience
from .tokens import start_family
from .tokens import token_response

# One description for every refresh token refused as such: unknown, spent, expired, revoked
# or another client's. The audit log records which it was.
INVALID_REFRESH_TOKEN = "The refresh token is invalid, expired, used or revoked."


class IssuesTokens:
    """What our grants share, checked as soon as the client is known and before anything is
    consumed: the audience named by `resource` (RFC 8707) and the key of a DPoP proof (RFC
    9449); and one way to build a response."""

    def authenticate_token_endpoint_client(self):
        client = super().authenticate_token_endpoint_client()
        self.request.audience = requested_audience(self.request.form.getlist("resource"), client)
        self.request.dpop_jkt = dpop.proof_key("/token")
        if self.request.dpop_jkt is None and client.require_dpop:
            raise dpop.InvalidDPoPProofError("This client must send a DPoP proof with every "
                                             "token request.")
        return client

    def check_dpop_binding(self, bound_jkt: str | None, what: str) -> None:
        """A code or refresh token bound to a DPoP key is good only with a proof by that key:
        without it, it may be in the hands of someone else."""
        if bound_jkt is not None and bound_jkt != self.request.dpop_jkt:
            audit.log("dpop.rejected", reason=f"{what.replace(' ', '_')}_of_another_key",
                      client_id=self.request.client.client_id)
            raise dpop.InvalidDPoPProofError(f"The {what} is bound to another DPoP key than "
                                             "this proof's.")

    def issues_refresh_token(self, scope: str) -> bool:
        return False

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True):
        client = self.request.client
        with_refresh = bool(include_refresh_token) and self.issues_refresh_token(scope or "")
        token = token_response(client, user, scope or "", self.request.audience, with_refresh,
                               dpop_jkt=self.request.dpop_jkt)
        audit.log("token.issued", grant_type=self.GRANT_TYPE, client_id=client.client_id,
                  user_id=user.id if user is not None else None, scope=scope,
                  refresh_token_issued=with_refresh or None,
                  dpop_bound=self.request.dpop_jkt is not None or None)
        return token


class AuthorizationCodeGrant(IssuesTokens, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(ANY_AUTH_METHOD)

    def issues_refresh_token(self, scope: str) -> bool:
        # Authlib passes include_refresh_token only when the client may use the refresh_token
        # grant; the user must also have granted offline_access (OIDC Core §11).
        return "offline_access" in scope_to_list(scope)

    def save_token(self, token) -> None:
        family = start_family(self.request.client, self.request.user,
                              self.request.authorization_code, self.request.dpop_jkt)
        record_user_tokens(token, family)

    def validate_authorization_request(self) -> str:
        """Authlib's checks, then the response_mode (response_modes.py), then RFC 8707 §2:
        each `resource` must be registered for the client."""
        redirect_uri = super().validate_authorization_request()
        response_modes.validate(self.request.payload.data, redirect_uri)
        try:
            requested_audience(self.request.payload.datalist.get("resource", []),
                               self.request.client)
            dpop.check_thumbprint(self.request.payload.data.get("dpop_jkt"))
        except (InvalidTargetError, InvalidRequestError) as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    @staticmethod
    def validate_no_multiple_request_parameter(request) -> None:
        """RFC 6749 §3.1 for Authlib's five parameters, for the response_mode, which decides
        where the response goes, and for the DPoP key the code is bound to."""
        grants.AuthorizationCodeGrant.validate_no_multiple_request_parameter(request)
        for name in ("response_mode", "dpop_jkt"):
            if len(request.payload.datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"Multiple '{name}' in request.",
                                          state=request.payload.state)

    def validate_token_request(self) -> None:
        super().validate_token_request()  # client, code of this client, redirect URI, PKCE
        self.check_dpop_binding(self.request.authorization_code.dpop_jkt, "authorization code")
        # The resources the authorization asked for bound the token's audience (RFC 8707 §2).
        self.request.audience = requested_audience(
            self.request.form.getlist("resource"), self.request.client,
            granted=self.request.authorization_code.resources)

    @staticmethod
    def validate_authorization_redirect_uri(request, client) -> str:
        """OIDC Core §3.1.2.1: required, and registered character for character (a loopback
        IP redirect's port aside, RFC 8252 §7.3: models/client.py). The message
        never echoes the URI: it is attacker-chosen text (and Authlib refuses non-ASCII)."""
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        return redirect_uri

    def save_authorization_code(self, code: str, request) -> None:
        # `auth_context` is put on the request by views/oauth.py from the sign-in session.
        context = request.auth_context
        data = request.payload.data
        db.session.add(
            AuthorizationCode(
                code_hash=hash_secret(code),
                client_id=request.client.client_id,
                user_id=request.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=context["auth_time"],
                amr=context["amr"],
                acr=context.get("acr"),
                sid=context.get("sid"),
                resources=list(dict.fromkeys(request.payload.datalist.get("resource", []))),
                dpop_jkt=data.get("dpop_jkt"),
                expires_at=utcnow()
                + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_TTL_SECONDS"]),
            )
        )
        db.session.commit()

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        """Consume the code atomically: of two racing requests exactly one wins (RFC 6749
        §4.1.2). A code presented again revokes every token issued from it."""
        now = utcnow()
        code_hash = hash_secret(code)
        consumed_id = db.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == code_hash,
                AuthorizationCode.client_id == client.client_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(used_at=now)
            .returning(AuthorizationCode.id)
        ).scalar_one_or_none()
        db.session.commit()
        if consumed_id is not None:
            return db.session.get(AuthorizationCode, consumed_id)
        self._explain_rejected_code(code_hash, client)
        return None

    def _explain_rejected_code(self, code_hash: str, client) -> None:
        row = db.session.execute(
            db.select(AuthorizationCode).filter_by(code_hash=code_hash)
        ).scalar_one_or_none()
        if row is None:
            reason = "unknown_code"
        elif row.client_id != client.client_id:
            reason = "code_of_another_client"
        elif row.used_at is not None:
            reason = "code_reused"
            revoked = revoke_families("code_reuse", TokenFamily.authorization_code_id == row.id)
            db.session.commit()
            audit.log("token.code_reuse_revoked", client_id=client.client_id,
                      user_id=row.user_id, revoked_families=revoked)
        else:
            reason = "code_expired"
        audit.log("token.rejected", client_id=client.client_id, reason=reason)

    def delete_authorization_code(self, authorization_code) -> None:
        # Kept (marked used) until it expires, so that a replay can be detected.
        pass

    def authenticate_user(self, authorization_code: AuthorizationCode):
        user = authorization_code.user
        if user is None or user.disabled:
            return None
        return user


class RefreshTokenGrant(IssuesTokens, grants.RefreshTokenGrant):
    """Every use returns a new refresh token and spends the old one. A spent token presented
    again means it was copied: the whole family is revoked (RFC 9700 §4.14.2). The operator
    may allow reuse for a few seconds after the first use (REFRESH_TOKEN_REUSE_GRACE_SECONDS),
    for clients that refresh from several tabs or retry a lost response."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(ANY_AUTH_METHOD)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def issues_refresh_token(self, scope: str) -> bool:
        return True

    def _validate_request_token(self, client):
        """Authlib refuses an unknown, spent or other client's refresh token with a bare
        invalid_grant; say what it is, the same for each, so nothing tells them apart."""
        try:
            return super()._validate_request_token(client)
        except InvalidGrantError as error:
            if error.description:
                raise
            raise InvalidGrantError(INVALID_REFRESH_TOKEN) from None

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        row = find_refresh_token(refresh_token)
        if row is not None and not row.is_revoked() and not row.is_expired():
            return row
        if row is None:
            reason = "unknown_refresh_token"
        elif row.family.revoked_at is not None:
            reason = "family_revoked"
        elif row.is_spent():
            reason = "refresh_token_reuse"
            self._revoke(row.family, reason)
        else:
            reason = "refresh_token_expired"
        audit.log("token.rejected", client_id=self.request.client.client_id, reason=reason)
        return None

    def validate_token_request(self) -> None:
        super().validate_token_request()  # client, token of this client, scope within it
        row = self.request.refresh_token
        family = row.family
        if family.user.disabled:
            self._revoke(family, "user_disabled")
            raise InvalidGrantError("The user of this refresh token is disabled.")
        consent = Consent.find(family.user_id, family.client_id)
        if consent is None or not consent.covers(family.scope):
            self._revoke(family, "consent_withdrawn")
            raise InvalidGrantError("The user has withdrawn the consent for this application.")
        self.request.audience = requested_audience(  # before the token is spent
            self.request.form.getlist("resource"), self.request.client, granted=family.resources)
        self.check_dpop_binding(family.dpop_jkt, "refresh token")
        # Spend the token atomically, in the transaction that stores its successor: of two
        # concurrent uses exactly one wins, and the other is a replay. Within a reuse grace
        # window, both win; the window runs from the first use and is never extended.
        now = utcnow()
        unspent = RefreshToken.used_at.is_(None)
        if grace := refresh_reuse_grace():
            unspent = or_(unspent, RefreshToken.used_at > now - grace)
        spent = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, unspent)
            .values(used_at=func.coalesce(RefreshToken.used_at, now))
        ).rowcount
        if not spent:
            db.session.rollback()
            self._revoke(family, "refresh_token_reuse")
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        if row.used_at is not None:
            audit.log("token.refresh_reused_in_grace", client_id=family.client_id,
                      user_id=family.user_id, first_used_at=row.used_at.isoformat())

    def _revoke(self, family: TokenFamily, reason: str) -> None:
        revoke_family(family, reason)
        db.session.commit()
        audit.log("token.family_revoked", client_id=family.client_id, user_id=family.user_id,
                  reason=reason)

    def authenticate_user(self, refresh_token: RefreshToken):
        return refresh_token.family.user

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        pass  # spent in validate_token_request, in the same transaction as its successor

    def save_token(self, token) -> None:
        record_user_tokens(token, self.request.refresh_token.family)


class ClientCredentialsGrant(IssuesTokens, grants.ClientCredentialsGrant):
    """A service acting for itself. Nothing is written: the JWT is the whole token."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

    def validate_token_request(self) -> None:
        super().validate_token_request()  # client authentication and grant type
        self.request.granted_scope = self._granted_scope(self.request.client)

    def _granted_scope(self, client) -> str:
        """The scope asked for, all of which the client must be allowed; or, when none is
        asked, every scope the client is allowed."""
        allowed = scope_to_list(client.scope) or []
        requested = scope_to_list(self.request.payload.scope) or []
        if not requested:
            return " ".join(allowed)
        if any(scope not in allowed for scope in requested):
            raise InvalidScopeError("The client is not allowed a requested scope.")
        return " ".join(dict.fromkeys(requested))

    def create_token_response(self):
        token = self.generate_token(scope=self.request.granted_scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def save_token(self, token) -> None:
        pass
