"""Single-row reads on the token and introspection endpoints' hot path, without the ORM.

Every token request reads its client afresh (so a deleted client or a rotated secret stops
working at once, on every worker), which makes that read the costliest step after the RSA
signature. Through the ORM session it costs a session, a transaction and an ORM load: on
SQLite about 250 µs of the endpoint's 950 µs, on PostgreSQL four round trips (pre-ping, BEGIN,
SELECT, ROLLBACK). Here the same SELECT, compiled once by SQLAlchemy for the engine's dialect, runs
on a pooled DBAPI connection in autocommit mode, and its values pass through the dialect's own
result processors, so the row is what Core would return: about 50 µs, and two round trips.

Only for reads of one row that no transaction of the request depends on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Engine


class HotRead:
    """One compiled SELECT per engine; call it with the statement's bound parameters."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._compiled: dict[Engine, tuple] = {}

    def one_or_none(self, engine: Engine, **params: Any) -> dict[str, Any] | None:
        sql, order, columns = self._compiled.get(engine) or self._compile(engine)
        arguments = tuple(params[name] for name in order) if order is not None else params
        connection = engine.raw_connection()  # pool checkout: pre-ping where configured
        try:
            autocommit = _set_autocommit(connection.dbapi_connection, True)
            try:
                cursor = connection.cursor()
                cursor.execute(sql, arguments)
                row = cursor.fetchone()
                cursor.close()
            finally:
                _set_autocommit(connection.dbapi_connection, autocommit)
        finally:
            connection.close()  # back to the pool
        if row is None:
            return None
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


def _set_autocommit(dbapi_connection, on: bool) -> bool:
    """psycopg: a read outside a transaction saves the BEGIN and ROLLBACK round trips. Python's
    sqlite3 never opens a transaction for a SELECT, so there is nothing to switch."""
    previous = getattr(dbapi_connection, "autocommit", None)
    if isinstance(previous, bool) and previous != on:
        dbapi_connection.autocommit = on
    return previous
