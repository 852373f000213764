"""The Device Authorization Grant (RFC 8628), for a TV, a command-line tool on a server, or
anything that cannot show a sign-in page: the device asks /device_authorization for a pair of
codes, shows the user a short user_code and the address of /device, and polls the token
endpoint with its device_code while the user signs in there, on a phone or a laptop, and
approves or refuses it.

An approval is kept as an authorization code that is never handed out: the device's tokens
are then built as a code exchange's are (a token family, an ID token with the sign-in's
auth_time, amr, acr and sid, refresh tokens with offline_access), and back-channel logout and
the revocations reach them the same way. The device gets one token response; a device_code
that was answered already is refused with invalid_grant.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc8628 import AuthorizationPendingError
from authlib.oauth2.rfc8628 import ExpiredTokenError
from authlib.oauth2.rfc8628 import SlowDownError
from authlib.oidc.core.grants import OpenIDToken
from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..models import AuthorizationCode
from ..models import DeviceAuthorization
from ..models import db
from ..models import utcnow
from ..models.client import ANY_AUTH_METHOD
from ..security.hashing import hash_secret
from ..security.hashing import new_secret
from .grants import IssuesTokens
from .oidc import SignsIdTokens
from .tokens import record_user_tokens
from .tokens import requested_audience
from .tokens import start_family

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
LIFETIME_SECONDS = 600
INTERVAL_SECONDS = 5
# RFC 8628 §6.1: consonants only (no word can be spelt, nothing looks like a digit), 8 of
# them, shown as BDFH-JKLM: 20^8, about 34 bits, against guesses that are rate-limited.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


def normalize_user_code(typed: str) -> str:
    """What the user typed, as it was issued: case, dashes and spaces do not matter."""
    return "".join(ch for ch in typed.upper() if ch in USER_CODE_ALPHABET)[:USER_CODE_LENGTH]


def start(client, scope: str, resources: list[str]) -> dict:
    """A new device authorization for `client`: the body of the device authorization
    response (RFC 8628 §3.2). Commits."""
    device_code = new_secret()
    issuer = current_app.config["ISSUER"]
    for _ in range(5):  # a user code still kept for another request: draw again
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        try:
            with db.session.begin_nested():
                db.session.add(DeviceAuthorization(
                    device_code_hash=hash_secret(device_code),
                    user_code_hash=hash_secret(user_code), client_id=client.client_id,
                    scope=scope, resources=resources, interval=INTERVAL_SECONDS,
                    expires_at=utcnow() + timedelta(seconds=LIFETIME_SECONDS)))
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError("no free user code in five draws")  # 20^8 codes: never
    db.session.commit()
    shown = f"{user_code[:4]}-{user_code[4:]}"
    return {"device_code": device_code, "user_code": shown,
            "verification_uri": f"{issuer}/device",
            "verification_uri_complete": f"{issuer}/device?user_code={shown}",
            "expires_in": LIFETIME_SECONDS, "interval": INTERVAL_SECONDS}


def find_pending(user_code: str) -> DeviceAuthorization | None:
    """The unanswered, unexpired request the user's code names, if any."""
    normalized = normalize_user_code(user_code)
    if len(normalized) != USER_CODE_LENGTH:
        return None
    device = db.session.execute(
        db.select(DeviceAuthorization).filter_by(user_code_hash=hash_secret(normalized))
    ).scalar_one_or_none()
    if device is None or device.decision is not None or device.expires_at <= utcnow():
        return None
    return device


def answer(device: DeviceAuthorization, login, allow: bool) -> bool:
    """Record the signed-in user's answer, once; False if it was answered meanwhile. An
    approval is kept as an authorization code nobody holds. The caller commits."""
    code = None
    if allow:
        code = AuthorizationCode(
            code_hash=hash_secret(new_secret()), client_id=device.client_id,
            user_id=login.user_id, redirect_uri=GRANT_TYPE, scope=device.scope,
            code_challenge="", auth_time=login.auth_time, amr=login.amr, acr=login.acr,
            sid=login.oidc_sid, resources=list(device.resources), expires_at=device.expires_at)
        db.session.add(code)
        db.session.flush()
    answered = db.session.execute(
        update(DeviceAuthorization)
        .where(DeviceAuthorization.id == device.id, DeviceAuthorization.decision.is_(None))
        .values(decision="allow" if allow else "deny",
                authorization_code_id=code.id if code else None)
    ).rowcount
    return answered == 1


class DeviceCodeGrant(IssuesTokens, grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8628 §3.4-3.5 at the token endpoint."""

    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = list(ANY_AUTH_METHOD)

    def validate_token_request(self) -> None:
        device_code = self.request.form.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code' in request.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the device_code grant.")
        device = db.session.execute(
            db.select(DeviceAuthorization).filter_by(device_code_hash=hash_secret(device_code))
        ).scalar_one_or_none()
        if device is None or device.client_id != client.client_id or device.used_at:
            raise InvalidGrantError("The device_code is invalid, another client's, or used.")
        if device.expires_at <= utcnow():
            raise ExpiredTokenError()
        if device.decision == "deny":
            raise AccessDeniedError()
        if device.decision is None:
            self._wait(device)
        code = device.authorization_code
        if code is None or code.user.disabled:  # the user was deleted or disabled since
            raise AccessDeniedError()
        spent = db.session.execute(
            update(DeviceAuthorization)
            .where(DeviceAuthorization.id == device.id, DeviceAuthorization.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount
        db.session.commit()
        if spent != 1:  # a parallel poll got the tokens
            raise InvalidGrantError("The device_code is invalid, another client's, or used.")
        self.request.client = client
        self.request.user = code.user
        self.request.authorization_code = code
        self.request.audience = requested_audience(
            self.request.form.getlist("resource"), client, granted=device.resources)

    @staticmethod
    def _wait(device: DeviceAuthorization) -> None:
        """authorization_pending, or slow_down for a device that polls more often than its
        interval, which then grows by 5 s (§3.5)."""
        now = utcnow()
        too_soon = (device.last_polled_at is not None
                    and now - device.last_polled_at < timedelta(seconds=device.interval))
        device.last_polled_at = now
        if too_soon:
            device.interval += 5
        db.session.commit()
        raise SlowDownError() if too_soon else AuthorizationPendingError()

    def issues_refresh_token(self, scope: str) -> bool:
        # As for a code: the refresh_token grant registered, and offline_access granted.
        return "offline_access" in scope_to_list(scope)

    @hooked  # the ID token is added after (OpenIDDevice)
    def create_token_response(self):
        client = self.request.client
        token = self.generate_token(
            user=self.request.user, scope=self.request.authorization_code.scope,
            include_refresh_token=client.check_grant_type("refresh_token"))
        code = self.request.authorization_code
        code.used_at = utcnow()  # as an exchanged code: back-channel logout and retention
        record_user_tokens(token, start_family(client, self.request.user, code,
                                               self.request.dpop_jkt))
        return 200, token, self.TOKEN_RESPONSE_HEADER


class OpenIDDevice(SignsIdTokens, OpenIDToken):
    """With `openid` granted, the device gets an ID token too, of the sign-in on the other
    device (auth_time, amr, acr, sid), without a nonce: the device sent none."""
