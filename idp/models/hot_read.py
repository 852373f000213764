"""Single-row reads on the token and introspection endpoints' hot path, without the ORM.

Every token request reads its client afresh (so a deleted client or a rotated secret stops
working at once, on every worker), which makes that read the costliest step after the RSA
signature. Through the ORM session it costs a session, a transaction and an ORM load: on
SQLite about 250 µs of the endpoint's 950 µs, on PostgreSQL four round trips (pre-ping, BEGIN,
SELECT, ROLLBACK). Here the same SELECT, compiled once by SQLAlchemy for the engine's dialect,
runs on a pooled DBAPI connection in autocommit mode, and its values pass through the dialect's
own result processors, so the row is what Core would return. The reads of one request share
one connection, returned to the pool when the request ends: on PostgreSQL, one pre-ping and
then one round trip a read.

Only for reads of one row that no transaction of the request depends on.
"""

from __future__ import annotations

import weakref
from typing import Any

from flask import Flask
from flask import g
from sqlalchemy import Select
from sqlalchemy.engine import Engine


class HotRead:
    """One compiled SELECT per engine; call it with the statement's bound parameters."""

    def __init__(self, statement: Select):
        self.statement = statement
        # Weak: an app's engine (many, in the tests) must not outlive the app for this cache.
        self._compiled: weakref.WeakKeyDictionary[Engine, tuple] = weakref.WeakKeyDictionary()

    def one_or_none(self, engine: Engine, **params: Any) -> dict[str, Any] | None:
        row = self.raw_row(engine, **params)
        return self.decode(engine, row) if row is not None else None

    def raw_row(self, engine: Engine, **params: Any) -> tuple | None:
        """The row as the DBAPI driver gave it, before the dialect's result processors: what
        a caller compares to decide whether a row changed (see RegisteredClient.find)."""
        sql, order, _columns = self._compiled.get(engine) or self._compile(engine)
        arguments = tuple(params[name] for name in order) if order is not None else params
        connection = _request_connection(engine)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, arguments)
            row = cursor.fetchone()
            cursor.close()
        except Exception:
            _release(invalidate=True)  # never hand a connection in an unknown state back
            raise
        return row

    def decode(self, engine: Engine, row: tuple) -> dict[str, Any]:
        """A raw row as Core would return it, by column name."""
        _sql, _order, columns = self._compiled.get(engine) or self._compile(engine)
        return {name: process(value) if process else value
                for (name, process), value in zip(columns, row, strict=True)}

    def _compile(self, engine: Engine) -> tuple:
        dialect = engine.dialect
        compiled = self.statement.compile(dialect=dialect)
        columns = [(column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
                   for column in self.statement.selected_columns]
        # A positional paramstyle (SQLite's qmark) takes a tuple in `positiontup` order.
        entry = (str(compiled), compiled.positiontup if dialect.positional else None, columns)
        self._compiled[engine] = entry
        return entry


def _request_connection(engine: Engine):
    held = g.get("hot_read_connection")
    if held is None:
        connection = engine.raw_connection()  # pool checkout: pre-ping where configured
        held = g.hot_read_connection = (connection, _set_autocommit(connection, True))
    return held[0]


def _release(invalidate: bool = False) -> None:
    held = g.pop("hot_read_connection", None)
    if held is None:
        return
    connection, autocommit = held
    if invalidate:
        connection.invalidate()
        return
    if autocommit is not None:
        _set_autocommit(connection, autocommit)
    connection.close()  # back to the pool


def _set_autocommit(connection, on: bool) -> bool | None:
    """psycopg: a read outside a transaction saves the BEGIN and ROLLBACK round trips. Python's
    sqlite3 never opens a transaction for a SELECT, so there is nothing to switch."""
    dbapi_connection = connection.dbapi_connection
    previous = getattr(dbapi_connection, "autocommit", None)
    if isinstance(previous, bool) and previous != on:
        dbapi_connection.autocommit = on
    return previous


def init_app(app: Flask) -> None:
    app.teardown_appcontext(lambda _error: _release())
