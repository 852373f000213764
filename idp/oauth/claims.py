"""Which user claims each scope releases (OIDC Core §5.4)."""

from __future__ import annotations

from datetime import UTC

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo

from ..models import User

SCOPE_CLAIMS = {
    "profile": ("name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}
SCOPE_DESCRIPTIONS = {
    "openid": "Know who you are (a stable identifier for your account)",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Keep access while you are not signed in (until you withdraw it)",
}
SUPPORTED_SCOPES = ["openid", "profile", "email", "offline_access"]
CLAIMS_SUPPORTED = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
                    "amr", "acr"] + [c for claims in SCOPE_CLAIMS.values() for c in claims]


def user_claims(user: User) -> dict:
    return {
        "name": user.name,
        "preferred_username": user.username,
        "updated_at": int(user.updated_at.replace(tzinfo=UTC).timestamp()),
        "email": user.email,
        "email_verified": bool(user.email_verified),
    }


def generate_user_info(user: User, scope: str) -> UserInfo:
    """`sub` always; other claims only for the granted scopes, and only when they have a value."""
    info = {"sub": user.subject}
    everything = user_claims(user)
    for name in scope_to_list(scope) or []:
        for claim in SCOPE_CLAIMS.get(name, ()):
            if everything.get(claim) is not None:
                info[claim] = everything[claim]
    return UserInfo(info)
