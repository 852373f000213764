"""How long the provider keeps what it no longer needs, and the sweep that deletes it
(`idp prune`, safe to run from cron at any frequency and from several hosts at once).

Rows are kept as long as they can still matter:
- a used authorization code, while tokens issued from it can be alive, so that a replay of the
  code can still revoke them (RFC 6749 §4.1.2), and a refresh can renew the ID token with the
  sign-in's auth_time, acr and amr (OIDC Core §12.2); an unused one, until it expires;
- a token family with its refresh tokens and access-token records, until its absolute end plus
  one access-token lifetime (a spent refresh token must stay to recognise its replay);
- a deny-list entry or an access-token record, until the token it names has expired;
- a mailed link (password reset, address confirmation), until it expires;
- a pushed authorization request, until a browser coming back to it from sign-in can no longer
  resume it: pushed_requests.RESUME_SECONDS after it expired;
- a sign-in session, until it has ended or timed out;
- a rate-limit counter, until its window is over;
- a self-registered client (RFC 7591), while a user has authorized it or it holds a code or a
  token family, and for CLIENT_REGISTRATION_UNUSED_SECONDS after it registered: open
  registration would otherwise keep every abandoned registration for ever. Clients the
  operator registered are never deleted here.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from .models import AccessTokenRecord
from .models import AuthorizationCode
from .models import Client
from .models import Consent
from .models import DeviceAuthorization
from .models import LoginSession
from .models import MailedLink
from .models import PushedRequest
from .models import RateLimitCounter
from .models import RevokedAccessToken
from .models import TokenFamily
from .models import db
from .models import utcnow
from .oauth import pushed_requests
from .oauth.client_assertion import JTI_MEMORY_SECONDS


def prune() -> dict[str, int]:
    """Delete what is past its retention; returns the rows deleted per table."""
    config = current_app.config
    now = utcnow()

    def seconds(name: str) -> timedelta:
        return timedelta(seconds=config[name])

    token_lifetime = seconds("ACCESS_TOKEN_TTL_SECONDS")
    family_lifetime = seconds("REFRESH_TOKEN_ABSOLUTE_SECONDS") + token_lifetime
    # Every counter's window: a lockout must last as long as its window says, and a client
    # assertion's jti must be remembered until the assertion has expired.
    longest_window = timedelta(seconds=max(config["LOGIN_WINDOW_SECONDS"],
                                           config["CLIENT_AUTH_WINDOW_SECONDS"],
                                           config["MFA_WINDOW_SECONDS"],
                                           JTI_MEMORY_SECONDS))
    resumable = timedelta(seconds=pushed_requests.RESUME_SECONDS)
    sweeps = {
        TokenFamily: TokenFamily.expires_at < now - token_lifetime,
        AccessTokenRecord: AccessTokenRecord.expires_at < now,
        RevokedAccessToken: RevokedAccessToken.expires_at < now,
        MailedLink: MailedLink.expires_at < now,
        # A browser back from sign-in may still resume it that long after it expired.
        PushedRequest: PushedRequest.expires_at < now - resumable,
        DeviceAuthorization: DeviceAuthorization.expires_at < now,
        AuthorizationCode: db.or_(
            db.and_(AuthorizationCode.used_at.is_(None), AuthorizationCode.expires_at < now),
            AuthorizationCode.expires_at < now - family_lifetime,
        ),
        LoginSession: db.or_(
            LoginSession.ended_at.is_not(None),
            LoginSession.last_seen_at < now - seconds("SESSION_IDLE_TIMEOUT_SECONDS"),
            LoginSession.created_at < now - seconds("SESSION_ABSOLUTE_TIMEOUT_SECONDS"),
        ),
        RateLimitCounter: RateLimitCounter.window_start < now - longest_window,
        # Last: the sweeps above remove what kept a client in use.
        Client: db.and_(
            Client.self_registered,
            Client.created_at < now - seconds("CLIENT_REGISTRATION_UNUSED_SECONDS"),
            *(~db.exists().where(model.client_id == Client.client_id)
              for model in (Consent, TokenFamily, AuthorizationCode)),
        ),
    }
    deleted = {}
    for model, expired in sweeps.items():
        deleted[model.__tablename__] = db.session.execute(
            db.delete(model).where(expired)).rowcount
        db.session.commit()  # one table at a time: short transactions beside live traffic
    return deleted
