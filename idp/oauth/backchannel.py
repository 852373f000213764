"""OpenID Connect Back-Channel Logout 1.0: when a sign-in session ends, every client that got
an ID token in it and registered a `backchannel_logout_uri` is told so, server to server, with
a logout token (§2.4) it can match to its own session by `sid` (or `sub`).

Who to tell is worked out in the transaction that ends the sessions; they are told only once it
has committed, and after the response (deferred.py), so a slow or absent client delays no one.
A client that does not answer with 200 (or 204) misses the call, never the logout: the failure
is audited. A session that times out is told about when its browser comes back and finds it
over; one whose browser never does is not.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from ..deferred import after_response
from ..models import AuthorizationCode
from ..models import Client
from ..models import LoginSession
from ..models import db
from ..security import audit
from . import outbound
from .subjects import subject_for

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_SECONDS = 120  # §2.4 recommends at most two minutes
TIMEOUT_SECONDS = 5
MAX_PARALLEL_CALLS = 8
_PENDING = "backchannel_logout_calls"  # key in the database session's `info`


@dataclass
class LogoutCall:
    client_id: str
    user_id: int
    uri: str
    logout_token: str
    # For a URI the client registered itself (with the initial access token): the networks
    # besides public ones it may lead to (outbound.post_form_outside). None: the operator's.
    outside: tuple[outbound.Network, ...] | None = None

    def __call__(self) -> None:
        form = {"logout_token": self.logout_token}
        if self.outside is not None:
            try:
                status = outbound.post_form_outside(self.uri, form, timeout=TIMEOUT_SECONDS,
                                                    allowed=self.outside)
            except outbound.FetchFailed as error:
                self._audit("logout.backchannel_failed", reason=str(error))
                return
        else:
            status = self._post_registered(form)
            if status is None:
                return
        if status in (200, 204):
            self._audit("logout.backchannel_sent")
        else:
            self._audit("logout.backchannel_failed", reason=f"HTTP {status}")

    def _post_registered(self, form: dict) -> int | None:
        request = urllib.request.Request(
            self.uri, data=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")
        try:
            with outbound.OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                return response.status
        except urllib.error.HTTPError as error:  # an answer, but not a success (§2.8)
            error.close()  # it holds the connection
            return error.code
        except (OSError, ValueError) as error:  # refused, timed out, unresolvable
            self._audit("logout.backchannel_failed", reason=type(error).__name__)
            return None

    def _audit(self, event_name: str, **fields) -> None:
        audit.log(event_name, client_id=self.client_id, user_id=self.user_id, **fields)


def sessions_ending(sessions: list[LoginSession]) -> None:
    """In the transaction that ends `sessions`: once it commits, tell the clients that got an
    ID token in any of them."""
    by_sid = {login.oidc_sid: login for login in sessions if login.oidc_sid}
    if not by_sid:
        return
    rows = db.session.execute(
        db.select(AuthorizationCode.sid, AuthorizationCode.scope, Client)
        .join(Client, Client.client_id == AuthorizationCode.client_id)
        .where(AuthorizationCode.sid.in_(by_sid), AuthorizationCode.used_at.is_not(None),
               Client.backchannel_logout_uri.is_not(None))
    ).all()
    calls = {}
    outside = outbound.parse_networks(current_app.config["OUTBOUND_PRIVATE_NETWORKS"])
    for sid, scope, client in rows:
        if "openid" in scope.split() and (sid, client.client_id) not in calls:  # an ID token
            user = by_sid[sid].user
            calls[sid, client.client_id] = LogoutCall(
                client.client_id, user.id, client.backchannel_logout_uri,
                _logout_token(client.client_id, subject_for(user, client), sid),
                outside if client.self_registered else None)
    db.session.info.setdefault(_PENDING, []).extend(calls.values())


def _logout_token(client_id: str, subject: str, sid: str) -> str:
    now = int(time.time())
    claims = {"iss": current_app.config["ISSUER"], "aud": client_id, "iat": now,
              "exp": now + LOGOUT_TOKEN_SECONDS, "jti": secrets.token_urlsafe(16),
              "sub": subject, "sid": sid, "events": {EVENT: {}}}
    return current_app.extensions["idp.keys"].sign(claims, typ="logout+jwt")


@event.listens_for(Session, "after_commit")
def _call_once_committed(session) -> None:
    calls = session.info.pop(_PENDING, None)
    if calls:
        after_response(lambda: _call_all(calls))


def _call_all(calls: list[LogoutCall]) -> None:
    """All at once: clients that do not answer cost one timeout, not one each (a sync worker
    still busy past gunicorn's timeout is killed)."""
    if len(calls) == 1:
        calls[0]()
        return
    with ThreadPoolExecutor(max_workers=min(len(calls), MAX_PARALLEL_CALLS)) as pool:
        for _ in pool.map(lambda call: call(), calls):
            pass


@event.listens_for(Session, "after_rollback")
def _forget_when_rolled_back(session) -> None:
    session.info.pop(_PENDING, None)
