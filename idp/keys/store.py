"""This process's copy of the signing keys and the operations of their lifecycle (create,
refresh, rotate, prune) on the database. The rules are in policy.py, the key material and its
published form in material.py."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask import request
from joserfc import jwt
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ..config import ConfigError
from ..models import db
from ..models import utcnow
from ..models.signing_key import ACTIVE
from ..models.signing_key import NEXT
from ..models.signing_key import RETIRED
from ..models.signing_key import SigningKeyRecord
from ..security import audit
from .material import ALGORITHM
from .material import Published
from .material import SigningKey
from .material import read_key_files
from .policy import KeyInfo
from .policy import KeyPolicy
from .policy import Rotation
from .policy import RotationError
from .policy import active_and_next

log = logging.getLogger(__name__)


class KeyStore:
    """This process's copy of the key set: read from the database, refreshed before a request
    at most every KEYS_REFRESH_SECONDS, never queried to sign or verify."""

    def __init__(self, policy: KeyPolicy, keys_dir: str | Path,
                 clock: Callable[[], datetime] = utcnow):
        self.policy = policy
        self.keys_dir = Path(keys_dir)  # PEM files of file-based releases, imported once
        self.clock = clock  # naive UTC, like every stored time
        self._keys: dict[str, SigningKey] = {}  # decrypted once per kid
        self._published: Published | None = None
        self._next_refresh = 0.0  # time.monotonic()
        self._lock = threading.Lock()  # threaded workers refresh one at a time

    # --- what the provider uses: no query --------------------------------------------------
    def has_keys(self) -> bool:
        return self._published is not None

    def signing_key(self) -> SigningKey:
        return self._current().signing

    def jwks_body(self) -> bytes:
        return self._current().jwks_body

    def jwks_etag(self) -> str:
        return self._current().etag

    def public_jwks(self) -> dict[str, Any]:
        return json.loads(self.jwks_body())

    def sign(self, claims: dict[str, Any], typ: str | None = None) -> str:
        key = self.signing_key()
        header = {"alg": ALGORITHM, "kid": key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, key.private, algorithms=[ALGORITHM])

    def verify(self, token: str) -> jwt.Token:
        """Check the signature of a JWT this provider issued; claims are the caller's to check.

        Only RS256 and only our own published keys: a token's `jku`, `x5u` or embedded `jwk`
        header is never followed (ASVS 9.1.3). Raises joserfc's JoseError (or ValueError).
        """
        if not isinstance(token, str) or token.count(".") != 2:
            raise ValueError("not a compact JWS")
        return jwt.decode(token, self._current().keyset, algorithms=[ALGORITHM])

    def fresh_published(self) -> Published | None:
        """The published key set while no refresh is due; None once one is. An answer built
        from it may be reused until then (well_known.ReplayedDocuments)."""
        return self._published if time.monotonic() < self._next_refresh else None

    def _current(self) -> Published:
        if self._published is None:
            self.refresh()
        return self._published

    # --- loading ---------------------------------------------------------------------------
    def start(self) -> None:
        """At start-up, so that a key that cannot be read stops the provider with one line
        instead of failing its requests. Before `idp db upgrade` has created the table, only
        the key files it will import are checked; if the database is down, the keys load at
        the first request instead."""
        try:
            with db.engine.connect() as conn:
                migrated = sa.inspect(conn).has_table(SigningKeyRecord.__tablename__)
        except SQLAlchemyError as exc:  # down, or not a database (a corrupt SQLite file)
            log.warning("database unusable at start-up (%s): signing keys load at first use",
                        type(exc).__name__)
            return
        if migrated:
            self.refresh()
        else:
            read_key_files(self.keys_dir)
        db.engine.dispose()  # a forking server (gunicorn --preload) must not share connections

    def refresh_if_stale(self) -> None:
        """Before each request. With KEY_AUTO_ROTATE, also rotate a due key and drop dead
        ones: whichever worker notices first does it."""
        if time.monotonic() < self._next_refresh:
            return
        try:
            self.refresh()
            if self.policy.automatic:
                self._maintain()
        except (SQLAlchemyError, ConfigError):
            if self._published is None and request.blueprint != "health":
                raise  # nothing to sign with; a health probe reports it instead
            # The keys in hand are still published and valid: keep serving, retry later.
            log.exception("signing keys not refreshed; still using the ones loaded before")

    def refresh(self) -> None:
        """Re-read the key list (one query); decrypt the keys not seen before; create the first
        keys in an empty table."""
        with self._lock:
            self._next_refresh = time.monotonic() + self.policy.refresh_seconds
            infos = self.key_list()
            if not infos:
                self._create_first_keys()
                infos = self.key_list()
            self._decrypt_new(infos)
            infos = tuple(info for info in infos if info.kid in self._keys)  # pruned meanwhile
            if self._published is None or self._published.infos != infos:
                self._published = Published.build(infos, self._keys)

    def key_list(self) -> tuple[KeyInfo, ...]:
        """The key list as the database has it now, newest first."""
        record = SigningKeyRecord
        query = sa.select(record.kid, record.state, record.created_at, record.activated_at,
                          record.retired_at).order_by(record.created_at.desc(), record.kid)
        with db.engine.connect() as conn:
            return tuple(KeyInfo(*row) for row in conn.execute(query))

    def _decrypt_new(self, infos: tuple[KeyInfo, ...]) -> None:
        kids = {info.kid for info in infos}
        for gone in self._keys.keys() - kids:
            del self._keys[gone]
        if missing := kids - self._keys.keys():
            record = SigningKeyRecord
            query = sa.select(record.kid, record.encrypted_private_key).where(
                record.kid.in_(missing))
            with db.engine.connect() as conn:
                rows = conn.execute(query).all()
            for kid, sealed in rows:
                self._keys[kid] = SigningKey.unsealed(kid, sealed, self.policy.passphrases)

    def _create_first_keys(self) -> None:
        """An empty table. Upgrading from file keys: import KEYS_DIR/*.pem, the newest signing
        as it did and the others published as retired. Fresh install: a new active key. Either
        way, a next key. Workers starting together race here: the first insert wins, the
        others collide on the unique index (or the same kid) and read the winner's keys."""
        now, size = self.clock(), self.policy.key_size
        files = read_key_files(self.keys_dir)
        if files:
            *older, (active, since) = files
            rows = [self._row(active, ACTIVE, created_at=since, activated_at=since)]
            rows += [self._row(key, RETIRED, created_at=made, retired_at=now)
                     for key, made in older]
        else:
            active = SigningKey.generate(size)
            rows = [self._row(active, ACTIVE, created_at=now, activated_at=now)]
        next_key = SigningKey.generate(size)
        rows.append(self._row(next_key, NEXT, created_at=now))
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.insert(SigningKeyRecord), rows)
        except IntegrityError:
            return
        # In hand, no need to decrypt them (the caller holds the lock).
        self._keys.update({key.kid: key for key in [active, next_key, *(k for k, _ in files)]})
        audit.log("keys.created", kid=active.kid, next_kid=next_key.kid,
                  imported_files=len(files))

    def _row(self, key: SigningKey, state: str, created_at: datetime,
             activated_at: datetime | None = None, retired_at: datetime | None = None) -> dict:
        return {"kid": key.kid, "state": state,
                "encrypted_private_key": key.sealed(self.policy.passphrase),
                "created_at": created_at, "activated_at": activated_at, "retired_at": retired_at}

    # --- the lifecycle ---------------------------------------------------------------------
    def rotate(self, force: bool = False) -> Rotation:
        """The next key signs, the active one is retired, a new next key is published. Refused
        while the next key has been published for less than an old JWKS may be cached
        (KEYS_REFRESH_SECONDS + JWKS_MAX_AGE_SECONDS), unless forced."""
        active, next_key = active_and_next(self.key_list())
        published_for = self.clock() - next_key.created_at
        early = published_for < self.policy.jwks_cache
        if early and not force:
            wait = math.ceil((self.policy.jwks_cache - published_for).total_seconds())
            raise RotationError(
                f"the next key {next_key.kid} has been published for only "
                f"{int(published_for.total_seconds())} s and relying parties may still hold a "
                f"JWKS without it: rotate in {wait} s, or now with --force")
        return self._swap(active, next_key, by="cli", forced=early)

    def rotate_if_due(self, by: str = "cli") -> Rotation | None:
        active, next_key = active_and_next(self.key_list())
        if self.clock() < self.policy.rotation_due_at(active, next_key):
            return None
        return self._swap(active, next_key, by=by, forced=False)

    def _swap(self, active: KeyInfo, next_key: KeyInfo, **audited: Any) -> Rotation:
        """One transaction. Each UPDATE names the state it expects: of two rotations racing on
        other workers or hosts, the second changes nothing and gives up."""
        new = SigningKey.generate(self.policy.key_size)  # slow at 4096 bits: not in the transaction
        now, record = self.clock(), SigningKeyRecord
        lost = RotationError("the keys changed during the rotation (rotated elsewhere at the "
                             "same time?): see `idp keys list`")
        changes = ((active.kid, ACTIVE, {"state": RETIRED, "retired_at": now}),
                   (next_key.kid, NEXT, {"state": ACTIVE, "activated_at": now}))
        try:
            with db.engine.begin() as conn:
                for kid, expected, values in changes:
                    update = sa.update(record).where(record.kid == kid, record.state == expected)
                    if conn.execute(update.values(**values)).rowcount != 1:
                        raise lost
                conn.execute(sa.insert(record).values(self._row(new, NEXT, created_at=now)))
        except IntegrityError:
            raise lost from None
        audit.log("keys.rotated", kid=next_key.kid, retired_kid=active.kid, next_kid=new.kid,
                  **audited)
        self.refresh()
        return Rotation(next_key.kid, active.kid, new.kid)

    def prune(self) -> list[str]:
        """Delete the retired keys whose tokens can no longer be alive; returns their kids."""
        record = SigningKeyRecord
        cutoff = self.clock() - self.policy.retention
        with db.engine.begin() as conn:
            removed = sorted(conn.execute(
                sa.delete(record).where(record.state == RETIRED, record.retired_at <= cutoff)
                .returning(record.kid)).scalars())
        if removed:
            audit.log("keys.pruned", kids=removed)
        self.refresh()
        return removed

    def _maintain(self) -> None:
        """Decided on the key list just read: no query unless there is something to do."""
        now, infos = self.clock(), self._published.infos
        try:
            active, next_key = active_and_next(infos)
            if now >= self.policy.rotation_due_at(active, next_key):
                self.rotate_if_due(by="schedule")
        except RotationError:
            pass  # rotated elsewhere at the same moment; the next refresh reads the result
        if any(info.state == RETIRED and now >= self.policy.removable_at(info) for info in infos):
            self.prune()


def init_app(app: Flask) -> KeyStore:
    """Load the keys at start-up, and refresh each worker's copy before its requests."""
    store = KeyStore(KeyPolicy.from_config(app.config), app.config["KEYS_DIR"])
    app.extensions["idp.keys"] = store
    with app.app_context():
        store.start()
    app.before_request(store.refresh_if_stale)
    return store
