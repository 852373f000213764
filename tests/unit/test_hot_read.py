"""The ORM-free reads of the token and introspection endpoints (models/hot_read.py) return what
the ORM would, on SQLite and on PostgreSQL alike, and give their connection back. The
revocation-state read is covered through the endpoints (tests/e2e/test_introspection_revocation)."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import g

from idp.models import Client
from idp.models import RegisteredClient
from idp.models import db

from ..conftest import add_client
from ..helpers import wrong_secret


def test_a_registered_client_reads_exactly_as_the_model(app):
    added = add_client(app, grant_types=["authorization_code", "client_credentials"],
                       audiences=["https://api.example.com/a", "https://api.example.com/b"],
                       first_party=True, introspect_any=True, require_mfa=True,
                       tokens_revoked_at=datetime(2026, 11, 1, 12, 30, 5))
    with app.test_request_context():
        model = Client.by_client_id(added.client_id)
        registered = RegisteredClient.find(added.client_id)
        for column in Client.__table__.columns:
            value = getattr(registered, column.key)
            expected = getattr(model, column.key)
            assert value == (tuple(expected) if isinstance(expected, list) else expected)
            assert type(value) is (tuple if isinstance(expected, list) else type(expected))
        assert registered.check_client_secret(added.secret)
        assert not registered.check_client_secret(wrong_secret(added.secret))
        assert registered.check_grant_type("client_credentials")
        assert registered.default_audience() == model.default_audience()
        assert RegisteredClient.find("no such client") is None


def test_a_registered_client_cannot_be_changed(app):
    added = add_client(app)
    with app.test_request_context():
        registered = RegisteredClient.find(added.client_id)
        with pytest.raises(AttributeError):
            registered.scope = "openid admin"
        with pytest.raises(AttributeError):
            registered.redirect_uris.append("https://evil.example.com/cb")


def test_the_reads_of_a_request_share_one_connection_returned_at_its_end(app):
    added = add_client(app)
    with app.app_context():
        pool = db.engine.pool
        idle_before = pool.checkedout()
    with app.test_request_context():
        RegisteredClient.find(added.client_id)
        RegisteredClient.find("another-client")
        RegisteredClient.find(added.client_id)
        assert pool.checkedout() == idle_before + 1
    assert pool.checkedout() == idle_before


def test_a_failed_read_discards_its_connection_and_the_next_read_works(app):
    with app.test_request_context():
        with pytest.raises(Exception):  # noqa: B017 (sqlite3 and psycopg raise their own errors)
            RegisteredClient.find(object())  # a parameter no driver can bind
        assert "hot_read_connection" not in g
        assert RegisteredClient.find("after-the-failure") is None


def test_an_unchanged_client_is_reused_and_a_changed_one_read_afresh(app):
    added = add_client(app, scope="openid profile")
    with app.test_request_context():
        first = RegisteredClient.find(added.client_id)
    with app.test_request_context():
        assert RegisteredClient.find(added.client_id) is first
    with app.app_context():  # as the CLI changes a client, between two requests
        Client.by_client_id(added.client_id).scope = "openid"
        db.session.commit()
    with app.test_request_context():
        changed = RegisteredClient.find(added.client_id)
        assert changed is not first
        assert changed.scope == "openid"
        assert first.scope == "openid profile"  # what an earlier request held stays as it was
    with app.app_context():
        db.session.delete(Client.by_client_id(added.client_id))
        db.session.commit()
    with app.test_request_context():
        assert RegisteredClient.find(added.client_id) is None


def test_the_reused_clients_are_bounded(app, monkeypatch):
    monkeypatch.setattr(RegisteredClient, "_BUILT", {})
    monkeypatch.setattr(RegisteredClient, "BUILT_MAX", 3)
    clients = [add_client(app) for _ in range(5)]
    with app.test_request_context():
        for added in clients:
            assert RegisteredClient.find(added.client_id).client_id == added.client_id
            assert len(RegisteredClient._BUILT) <= 3
