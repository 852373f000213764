"""The signing-key lifecycle (idp/keys/) on the test database, with an injected clock."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk
from jwcrypto import jwt
from sqlalchemy.exc import OperationalError

from idp.config import ConfigError
from idp.keys import KeyPolicy
from idp.keys import KeyStore
from idp.keys import RotationError
from idp.keys.material import read_key_files
from idp.models import SigningKeyRecord
from idp.models import db
from idp.models import utcnow

from ..conftest import make_app

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock():
    return Clock()


def loaded(app, clock) -> KeyStore:
    """The app's key store on the fake clock, loaded (inside an app context)."""
    store = app.extensions["idp.keys"]
    store.clock = clock
    store.refresh()
    return store


def fresh_install(tmp_path, **overrides):
    """An app whose keys folder holds no key file of an earlier release."""
    (tmp_path / "keys").mkdir()
    return make_app(tmp_path, tmp_path / "keys", **overrides)


def another_worker(app, clock=None) -> KeyStore:
    """A key store of another worker or host on the same database."""
    store = KeyStore(KeyPolicy.from_config(app.config), app.config["KEYS_DIR"])
    if clock:
        store.clock = clock
    return store


def by_state(store: KeyStore) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for info in store.key_list():
        states.setdefault(info.state, []).append(info.kid)
    return states


def published_kids(store: KeyStore) -> list[str]:
    return [key["kid"] for key in store.public_jwks()["keys"]]


def write_pem(path, private) -> str:
    """A key file as file-based releases wrote it; returns its RFC 7638 thumbprint (its kid)."""
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.write_bytes(pem)
    return jwk.JWK.from_pem(pem).thumbprint()


def verify_like_a_relying_party(store: KeyStore, token: str) -> dict:
    keyset = jwk.JWKSet.from_json(store.jwks_body().decode())
    return json.loads(jwt.JWT(jwt=token, key=keyset, algs=["RS256"]).claims)


def test_fresh_install_creates_one_active_and_one_next_key(tmp_path, clock):
    app = fresh_install(tmp_path)
    with app.app_context():
        store = loaded(app, clock)
        states = by_state(store)
        assert {state: len(kids) for state, kids in states.items()} == {"active": 1, "next": 1}
        assert store.signing_key().kid == states["active"][0]
        assert published_kids(store) == [states["active"][0], states["next"][0]]


def test_key_files_of_earlier_releases_are_imported_and_their_tokens_stay_valid(tmp_path, clock):
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    older = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    newer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    older_kid = write_pem(keys_dir / "a.pem", older)
    newer_kid = write_pem(keys_dir / "b.pem", newer)
    week_ago = time.time() - 7 * 86400
    os.utime(keys_dir / "a.pem", (week_ago, week_ago))
    signed_before = {}  # tokens issued by the file-based release, one per key
    for kid, private in ((older_kid, older), (newer_kid, newer)):
        token = jwt.JWT(header={"alg": "RS256", "kid": kid, "typ": "at+jwt"},
                        claims={"sub": "s", "exp": int(time.time()) + 600})
        token.make_signed_token(jwk.JWK.from_pyca(private))
        signed_before[kid] = token.serialize()

    app = make_app(tmp_path, keys_dir)  # the folder is there: nothing is copied into it
    with app.app_context():
        store = loaded(app, clock)
        states = by_state(store)
        assert states["active"] == [newer_kid]  # the newest file kept signing
        assert states["retired"] == [older_kid]
        assert len(states["next"]) == 1
        for token in signed_before.values():
            assert store.verify(token).claims["sub"] == "s"
            assert verify_like_a_relying_party(store, token)["sub"] == "s"


def test_next_key_is_published_before_it_signs(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        next_kid = by_state(store)["next"][0]
        assert next_kid in published_kids(store)
        assert store.signing_key().kid != next_kid
        clock.advance(store.policy.jwks_cache)
        store.rotate()
        assert store.signing_key().kid == next_kid


def test_rotation_keeps_tokens_signed_before_it_valid_and_signs_with_the_next_key(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        before = store.sign({"sub": "before"}, typ="at+jwt")
        old_kid, next_kid = store.signing_key().kid, by_state(store)["next"][0]
        clock.advance(store.policy.jwks_cache)
        rotation = store.rotate()
        assert (rotation.activated, rotation.retired) == (next_kid, old_kid)
        assert by_state(store) == {"active": [next_kid], "next": [rotation.published],
                                   "retired": [old_kid]}
        assert verify_like_a_relying_party(store, before)["sub"] == "before"
        after = store.sign({"sub": "after"})
        assert jwt.JWT.from_jose_token(after).token.jose_header["kid"] == next_kid
        assert store.verify(after).claims["sub"] == "after"


def test_rotation_is_refused_while_the_next_key_may_be_missing_from_cached_jwks(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        active = store.signing_key().kid
        clock.advance(store.policy.jwks_cache - timedelta(seconds=1))
        with pytest.raises(RotationError, match=r"published for only 304 s .* rotate in 1 s"):
            store.rotate()
        assert store.signing_key().kid == active and by_state(store)["active"] == [active]
        assert store.rotate(force=True).retired == active


def test_rotate_if_due_waits_for_the_rotation_period(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        active = next(info for info in store.key_list() if info.state == "active")
        clock.now = active.activated_at + store.policy.rotation_period - timedelta(seconds=1)
        assert store.rotate_if_due() is None
        clock.advance(timedelta(seconds=1))
        assert store.rotate_if_due().activated == store.signing_key().kid


def test_prune_removes_only_keys_whose_tokens_cannot_be_alive(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        first = store.rotate(force=True)
        clock.advance(timedelta(hours=1))
        second = store.rotate(force=True)
        clock.advance(store.policy.retention - timedelta(hours=1))
        assert store.prune() == [first.retired]  # retired exactly `retention` ago
        assert by_state(store) == {"active": [second.activated], "next": [second.published],
                                   "retired": [second.retired]}
        assert first.retired not in published_kids(store)
        clock.advance(timedelta(hours=1) - timedelta(seconds=1))
        assert store.prune() == []
        clock.advance(timedelta(seconds=1))
        assert store.prune() == [second.retired]
        assert set(published_kids(store)) == {second.activated, second.published}


def test_retention_covers_the_longest_token_a_late_worker_and_clock_skew(tmp_path,
                                                                         signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir, ACCESS_TOKEN_TTL_SECONDS=600,
                   ID_TOKEN_TTL_SECONDS=3600, KEYS_REFRESH_SECONDS=5)
    assert app.extensions["idp.keys"].policy.retention == timedelta(seconds=3600 + 5 + 300)


def test_signing_and_verifying_never_query_the_database(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            for _ in range(20):
                store.verify(store.sign({"sub": "x"}, typ="at+jwt"))
                store.signing_key()
                store.jwks_body()
            store.refresh_if_stale()  # within KEYS_REFRESH_SECONDS of the load
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert statements == []


def test_a_rotation_made_elsewhere_is_used_after_the_refresh_interval(tmp_path,
                                                                      signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir, KEYS_REFRESH_SECONDS=1)
    with app.app_context():
        store = app.extensions["idp.keys"]
        store.refresh()
        etag = store.jwks_etag()
        rotation = another_worker(app).rotate(force=True)
        store.refresh_if_stale()
        assert store.signing_key().kid == rotation.retired  # not before the interval
        time.sleep(1.05)
        store.refresh_if_stale()
        assert store.signing_key().kid == rotation.activated
        assert rotation.published in published_kids(store)
        assert store.jwks_etag() != etag


def test_of_two_racing_rotations_only_one_happens(app, clock):
    with app.app_context():
        store = loaded(app, clock)
        other = another_worker(app, clock)
        read_before_the_first_committed = other.key_list()
        store.rotate(force=True)
        other.key_list = lambda: read_before_the_first_committed
        with pytest.raises(RotationError, match="changed during the rotation"):
            other.rotate(force=True)
        assert {s: len(kids) for s, kids in by_state(store).items()} == {
            "active": 1, "next": 1, "retired": 1}


def test_workers_starting_together_agree_on_the_first_keys(tmp_path, clock):
    app = fresh_install(tmp_path)
    with app.app_context():
        first, second = another_worker(app, clock), another_worker(app, clock)
        reads = [()]  # the second one found the table empty, then lost the race to create keys
        second.key_list = lambda: reads.pop() if reads else KeyStore.key_list(second)
        first.refresh()
        second.refresh()
        assert second.signing_key().kid == first.signing_key().kid
        assert {s: len(kids) for s, kids in by_state(first).items()} == {"active": 1, "next": 1}
        with pytest.raises(sa.exc.IntegrityError):  # the database itself refuses a second one
            with db.engine.begin() as conn:
                conn.execute(sa.update(SigningKeyRecord).values(state="active"))


def test_due_rotation_and_dead_keys_are_handled_at_a_refresh(tmp_path, signing_keys_dir, clock):
    app = make_app(tmp_path, signing_keys_dir, KEYS_REFRESH_SECONDS=1)
    with app.app_context():
        store = loaded(app, clock)
        first, next_kid = store.signing_key().kid, by_state(store)["next"][0]
        clock.advance(store.policy.rotation_period)
        time.sleep(1.05)
        store.refresh_if_stale()
        assert store.signing_key().kid == next_kid
        clock.advance(store.policy.retention)
        time.sleep(1.05)
        store.refresh_if_stale()
        assert first not in published_kids(store) and "retired" not in by_state(store)


def test_without_automatic_rotation_a_due_key_waits_for_the_cli(tmp_path, signing_keys_dir,
                                                                clock):
    app = make_app(tmp_path, signing_keys_dir, KEYS_REFRESH_SECONDS=1, KEY_AUTO_ROTATE=False)
    with app.app_context():
        store = loaded(app, clock)
        active = store.signing_key().kid
        clock.advance(store.policy.rotation_period)
        time.sleep(1.05)
        store.refresh_if_stale()
        assert store.signing_key().kid == active
        assert store.rotate_if_due().retired == active


def test_a_failed_refresh_keeps_signing_with_the_keys_in_hand(app, clock, caplog):
    with app.app_context():
        store = loaded(app, clock)
        active = store.signing_key().kid

        def database_down():
            raise OperationalError("SELECT", {}, Exception("connection refused"))

        store.key_list = database_down
        store._next_refresh = 0  # the interval is over
        store.refresh_if_stale()
        assert store.signing_key().kid == active
        assert "signing keys not refreshed" in caplog.text


@pytest.mark.parametrize("size", [3072])
def test_key_size_is_configurable(tmp_path, clock, size):
    app = fresh_install(tmp_path, KEY_SIZE=size)
    with app.app_context():
        store = loaded(app, clock)
        for key in store.public_jwks()["keys"]:
            assert jwk.JWK(**key).get_op_key("verify").key_size == size


def test_private_keys_never_leave_in_jwks_cli_output_or_logs(app, cli, clock, caplog):
    caplog.set_level(logging.INFO, logger="idp.audit")
    passphrase = app.config["KEYS_PASSPHRASE"]
    with app.app_context():
        store = loaded(app, clock)
        store.rotate(force=True)
        clock.advance(store.policy.retention)
        store.prune()
        for key in store.public_jwks()["keys"]:
            assert not PRIVATE_MEMBERS & key.keys()
        sealed = db.session.execute(db.select(SigningKeyRecord.encrypted_private_key)).scalars()
        assert all(passphrase not in value for value in sealed)
    listed = cli.invoke(args=["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    for entry in json.loads(listed.output):
        assert set(entry) == {"kid", "state", "created_at", "activated_at", "retired_at",
                              "retire_after", "prune_after"}
    for text in (listed.output, caplog.text, repr(store.policy)):
        assert "PRIVATE KEY" not in text and passphrase not in text
    assert [r for r in caplog.records if '"keys.rotated"' in r.getMessage()]


def test_a_key_file_under_2048_bits_is_refused(tmp_path):
    """IDP_KEY_SIZE refuses 1024; a dropped-in PEM file must not get around it."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "weak.pem").write_bytes(weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="1024 bits: at least 2048"):
        read_key_files(tmp_path)
