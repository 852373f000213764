"""`idp prune` deletes what is past its retention and nothing that can still matter."""

import json
from datetime import timedelta

from idp.models import AccessTokenRecord
from idp.models import AuthorizationCode
from idp.models import Client
from idp.models import Consent
from idp.models import DeviceAuthorization
from idp.models import LoginSession
from idp.models import MailedLink
from idp.models import PushedRequest
from idp.models import RateLimitCounter
from idp.models import RefreshToken
from idp.models import RevokedAccessToken
from idp.models import TokenFamily
from idp.models import db
from idp.models import utcnow

from .conftest import add_client
from .conftest import add_user


def seed(app):
    """One expired and one live row of every kind."""
    user = add_user(app)
    client = add_client(app)
    now = utcnow()
    day = timedelta(days=1)
    with app.app_context():
        config = app.config
        long_ago = now - timedelta(seconds=config["REFRESH_TOKEN_ABSOLUTE_SECONDS"]) - 2 * day

        def code(name, expires_at, used_at=None):
            return AuthorizationCode(
                code_hash=name, client_id=client.client_id, user_id=user.id, redirect_uri="x",
                code_challenge="c", auth_time=0, expires_at=expires_at, used_at=used_at)

        db.session.add_all([
            code("unused-expired", now - day),
            code("used-recently", now - day, used_at=now - day),  # its tokens may be alive
            code("used-long-ago", long_ago, used_at=long_ago),
            code("live", now + day),
        ])
        dead = TokenFamily(client_id=client.client_id, user_id=user.id, expires_at=now - day)
        live = TokenFamily(client_id=client.client_id, user_id=user.id, expires_at=now + day)
        db.session.add_all([dead, live])
        db.session.flush()
        db.session.add_all([
            RefreshToken(token_hash="dead", family=dead, expires_at=now - day, used_at=now),
            RefreshToken(token_hash="spent-but-kept", family=live, expires_at=now + day,
                         used_at=now),
            AccessTokenRecord(jti="expired", family=live, expires_at=now - day),
            AccessTokenRecord(jti="alive", family=live, expires_at=now + day),
            RevokedAccessToken(jti="expired", expires_at=now - day),
            RevokedAccessToken(jti="alive", expires_at=now + day),
            LoginSession(sid_hash="ended", user_id=user.id, auth_time=0, ended_at=now),
            LoginSession(sid_hash="idle", user_id=user.id, auth_time=0,
                         last_seen_at=now - 2 * day),
            LoginSession(sid_hash="live", user_id=user.id, auth_time=0),
            MailedLink(purpose="password_reset", token_hash="expired", user_id=user.id,
                       email="a@example.com", expires_at=now - day),
            MailedLink(purpose="verify_email", token_hash="live", user_id=user.id,
                       email="a@example.com", expires_at=now + day),
            PushedRequest(handle_hash="expired", client_id=client.client_id, params={},
                          expires_at=now - day),
            PushedRequest(handle_hash="live", client_id=client.client_id, params={},
                          expires_at=now + day),
            # Expired, but a browser back from a slow sign-in may still resume it.
            PushedRequest(handle_hash="resumable", client_id=client.client_id, params={},
                          expires_at=now - timedelta(minutes=5)),
            DeviceAuthorization(device_code_hash="expired", user_code_hash="expired",
                                client_id=client.client_id, expires_at=now - day),
            DeviceAuthorization(device_code_hash="live", user_code_hash="live",
                                client_id=client.client_id, expires_at=now + day),
            RateLimitCounter(key="old", window_start=now - 2 * day, count=3),
            RateLimitCounter(key="current", window_start=now, count=3),
        ])
        db.session.commit()


def remaining(app, model, column):
    with app.app_context():
        return sorted(db.session.scalars(db.select(column)).all())


def test_prune_deletes_only_what_is_past_retention(app, cli):
    seed(app)
    result = cli.invoke(args=["prune", "--json"])
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.output)
    assert deleted == {"token_families": 1, "access_tokens": 1, "revoked_access_tokens": 1,
                       "mailed_links": 1, "pushed_requests": 1, "device_authorizations": 1,
                       "authorization_codes": 2,
                       "login_sessions": 2, "rate_limit_counters": 1, "clients": 0}
    assert remaining(app, AuthorizationCode, AuthorizationCode.code_hash) == [
        "live", "used-recently"]
    assert remaining(app, RefreshToken, RefreshToken.token_hash) == ["spent-but-kept"]
    assert remaining(app, AccessTokenRecord, AccessTokenRecord.jti) == ["alive"]
    assert remaining(app, RevokedAccessToken, RevokedAccessToken.jti) == ["alive"]
    assert remaining(app, LoginSession, LoginSession.sid_hash) == ["live"]
    assert remaining(app, RateLimitCounter, RateLimitCounter.key) == ["current"]
    assert remaining(app, MailedLink, MailedLink.token_hash) == ["live"]
    assert remaining(app, PushedRequest, PushedRequest.handle_hash) == ["live", "resumable"]
    assert remaining(app, DeviceAuthorization, DeviceAuthorization.device_code_hash) == ["live"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 1
    again = json.loads(cli.invoke(args=["prune", "--json"]).output)
    assert set(again.values()) == {0}


def test_prune_deletes_self_registered_clients_nobody_uses_once_their_time_is_up(app, cli):
    user = add_user(app)
    month = timedelta(seconds=app.config["CLIENT_REGISTRATION_UNUSED_SECONDS"])
    with app.app_context():
        now = utcnow()

        def client(name, self_registered=True, age=month + timedelta(days=1)):
            row = Client(name=name, self_registered=self_registered, created_at=now - age,
                         redirect_uris=["https://app.example/cb"])
            db.session.add(row)
            db.session.flush()
            return row.client_id

        client("abandoned")
        client("operator's, unused", self_registered=False)
        client("registered yesterday", age=timedelta(days=1))
        db.session.add(Consent(user_id=user.id, client_id=client("authorized"),
                               scope="openid"))
        db.session.add(TokenFamily(client_id=client("holding tokens"), user_id=user.id,
                                   expires_at=now + timedelta(days=1)))
        db.session.commit()
    deleted = json.loads(cli.invoke(args=["prune", "--json"]).output)
    assert deleted["clients"] == 1
    assert remaining(app, Client, Client.name) == [
        "authorized", "holding tokens", "operator's, unused", "registered yesterday"]


def test_prune_keeps_a_second_factor_lockout_for_its_whole_window(tmp_path, signing_keys_dir):
    """The MFA window (here longer than the sign-in and client windows) counts too: prune used
    to lift a code-entry lockout once the longest of the other two windows had passed."""
    from .conftest import make_app

    app = make_app(tmp_path, signing_keys_dir, MFA_WINDOW_SECONDS=3600, LOGIN_WINDOW_SECONDS=900,
                   CLIENT_AUTH_WINDOW_SECONDS=60)
    with app.app_context():
        db.session.add(RateLimitCounter(key="mfa:user:1", count=9,
                                        window_start=utcnow() - timedelta(seconds=1800)))
        db.session.commit()
    app.test_cli_runner().invoke(args=["prune"])
    assert remaining(app, RateLimitCounter, RateLimitCounter.key) == ["mfa:user:1"]


def expired_counter(app, key):
    with app.app_context():
        db.session.add(RateLimitCounter(key=key, count=1,
                                        window_start=utcnow() - timedelta(days=2)))
        db.session.commit()


def request_and_close(app):
    app.test_client().get("/health/live").close()  # the sweep runs as gunicorn closes it


def test_the_workers_prune_once_an_interval_after_answering(tmp_path, signing_keys_dir):
    from idp import create_app

    from .conftest import make_app

    first = make_app(tmp_path, signing_keys_dir, PRUNE_INTERVAL_SECONDS=3600)
    expired_counter(first, "login:old")
    request_and_close(first)
    # swept, and the interval is held by a lease
    assert remaining(first, RateLimitCounter, RateLimitCounter.key) == ["maintenance:prune"]
    # another worker on the same database, within the interval: no second sweep
    second = create_app({**{name: first.config[name] for name in (
        "ENV", "ISSUER", "SECRET_KEY", "KEYS_DIR", "DATABASE_URL", "TESTING")},
        "PRUNE_INTERVAL_SECONDS": 3600})
    expired_counter(second, "login:old")
    request_and_close(second)
    assert "login:old" in remaining(second, RateLimitCounter, RateLimitCounter.key)
    with second.app_context():
        db.engine.dispose()


def test_a_zero_interval_leaves_pruning_to_cron(app):
    expired_counter(app, "login:old")  # tests run with PRUNE_INTERVAL_SECONDS = 0
    request_and_close(app)
    assert remaining(app, RateLimitCounter, RateLimitCounter.key) == ["login:old"]
