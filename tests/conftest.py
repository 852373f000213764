"""Shared fixtures: an app on a fresh database (SQLite, or PostgreSQL when IDP_TEST_DATABASE_URL
is set), users, clients, and a live server on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask_migrate import upgrade
from werkzeug.serving import make_server

from idp import create_app
from idp.models import Client
from idp.models import User
from idp.models import db
from idp.security.passwords import hash_password

from .documents import DocumentServer
from .documents import self_signed_certificate
from .helpers import PASSWORD  # noqa: E402,F401
from .helpers import Browserless

TEST_DATABASE_URL = os.environ.get("IDP_TEST_DATABASE_URL")
# Cheap argon2id for tests only; the shipped parameters are in config/default.toml.
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST_KIB": 8192, "ARGON2_PARALLELISM": 1}


@pytest.fixture(scope="session")
def signing_keys_dir(tmp_path_factory) -> Path:
    """A key folder as file-based releases left it: one RSA key (PKCS#8 PEM) generated for the
    whole run, which each app imports into its database as the active key at first use."""
    path = tmp_path_factory.mktemp("keys-template")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (path / "template.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return path


def _fresh_database(tmp_path: Path) -> str:
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    engine = sa.create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return TEST_DATABASE_URL


def make_app(tmp_path: Path, signing_keys_dir: Path, issuer="http://127.0.0.1:5000", **overrides):
    keys_dir = tmp_path / "keys"
    if not keys_dir.exists():
        shutil.copytree(signing_keys_dir, keys_dir)
        os.chmod(keys_dir, 0o700)
    config = {
        "ENV": "development",
        "ISSUER": issuer,
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "KEYS_DIR": str(keys_dir),
        "DATABASE_URL": _fresh_database(tmp_path),
        "TESTING": True,
        "PRUNE_INTERVAL_SECONDS": 0,  # tests/test_prune.py turns it on where it is tested
        **FAST_ARGON2,
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        upgrade()  # the real migrations, not create_all: they are what production runs
    _apps_to_close.append(app)
    return app


_apps_to_close: list = []


@pytest.fixture(autouse=True)
def _close_databases():
    """Close every pooled connection a test opened: PostgreSQL's DROP SCHEMA of the next test
    would wait for them, and unclosed connections are warnings (errors here)."""
    yield
    while _apps_to_close:
        with _apps_to_close.pop().app_context():
            db.engine.dispose()


@pytest.fixture
def app(tmp_path, signing_keys_dir):
    """The app, with no context pushed: each test-client request gets its own, as in production
    (a context held open by the test would share `g` and the database session across requests)."""
    return make_app(tmp_path, signing_keys_dir)


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def add_user(app, username="alice", password=PASSWORD, **fields) -> SimpleNamespace:
    """Create a user; returns a plain snapshot (id, subject, username, password)."""
    with app.app_context():
        user = User(
            username=username,
            email=fields.pop("email", f"{username}@example.com"),
            name=fields.pop("name", username.title()),
            password_hash=hash_password(password),
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        return SimpleNamespace(id=user.id, subject=user.subject, username=user.username,
                               email=user.email, name=user.name, password=password)


def add_client(app, name="Test App", public=False, **fields) -> SimpleNamespace:
    """Register a client; returns a snapshot with the plain secret (None when public)."""
    with app.app_context():
        client = Client(
            name=name,
            redirect_uris=fields.pop("redirect_uris", ["https://rp.example.com/callback"]),
            post_logout_redirect_uris=fields.pop(
                "post_logout_redirect_uris", ["https://rp.example.com/signed-out"]
            ),
            token_endpoint_auth_method="none" if public else "client_secret_basic",
            **fields,
        )
        secret = None if public else client.set_secret()
        db.session.add(client)
        db.session.commit()
        return SimpleNamespace(client_id=client.client_id, secret=secret, name=client.name,
                               redirect_uris=list(client.redirect_uris),
                               post_logout_redirect_uris=list(client.post_logout_redirect_uris))


def enroll_totp(app, username="alice") -> tuple[str, list[str]]:
    """An authenticator confirmed for `username` (as if enrolled on another device); returns
    its secret and ten recovery codes."""
    from idp.models import utcnow
    from idp.security import mfa

    with app.app_context():
        user = User.by_username(username)
        secret = mfa.start_enrollment(user)
        user.totp.confirmed_at = utcnow()
        codes = mfa.new_recovery_codes(user)
        db.session.commit()
        return secret, codes


def totp_code(secret: str, steps_from_now: int = 0) -> str:
    """The code an authenticator shows now, or that many 30-second steps away."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


@pytest.fixture
def user(app):
    return add_user(app)


@pytest.fixture
def confidential_client(app):
    return add_client(app)


@pytest.fixture
def public_client(app):
    return add_client(app, name="Mobile App", public=True,
                      redirect_uris=["com.example.app:/callback"])


@pytest.fixture
def flow(http, user, confidential_client):
    """Drives the code flow through the Flask test client (sign-in, consent, token)."""
    return Browserless(http, confidential_client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def documents(tmp_path_factory, monkeypatch):
    """An https server of client metadata documents (tests/documents.py) on 127.0.0.1, whose
    certificate the provider trusts as it would a public CA's site."""
    cert_file, key_file = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server = DocumentServer(cert_file, key_file)
    yield server
    server.close()


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) keeping the messages it receives."""
    from email import message_from_bytes
    from email import policy

    from aiosmtpd.controller import Controller

    messages: list = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SimpleNamespace(url=f"smtp://127.0.0.1:{controller.port}", messages=messages)
    finally:
        controller.stop()


class LiveServer:
    def __init__(self, app, url):
        self.app = app
        self.url = url


@pytest.fixture
def live_config() -> dict:
    """Settings of the live server beyond the tests' own; a test module may override this."""
    return {}


@pytest.fixture
def live_server(tmp_path, signing_keys_dir, live_config):
    """The provider on a real socket at 127.0.0.1, its issuer matching its address."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(tmp_path, signing_keys_dir, issuer=url, **live_config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app, url)
    finally:
        server.shutdown()
        thread.join(timeout=5)
