"""Rolling upgrades (REFERENCE 2.12, ory/hydra#1664): the database is upgraded first, and the
release before keeps running on it until every host has the new one. That holds while each
migration only adds: tables, indexes, nullable columns or columns with a server default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask_migrate import downgrade
from flask_migrate import upgrade

from idp.models import Consent
from idp.models import db

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import make_app

VERSIONS = Path(__file__).parents[2] / "idp" / "migrations" / "versions"
# 0002 replaced a table before any release ran on two hosts; nothing since may.
ADDITIVE_SINCE = "0003"
DESTRUCTIVE = {"drop_table", "drop_column", "alter_column", "drop_constraint", "rename_table",
               "execute"}


def _calls_in_upgrade(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    upgrade = next(node for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name == "upgrade")
    return [node for node in ast.walk(upgrade) if isinstance(node, ast.Call)]


@pytest.mark.parametrize("path", sorted(p for p in VERSIONS.glob("*.py")
                                        if p.name >= ADDITIVE_SINCE), ids=lambda p: p.name)
def test_each_migration_only_adds(path):
    calls = _calls_in_upgrade(path)
    for call in calls:
        name = _name(call)
        assert name not in DESTRUCTIVE or _widens_a_string(call), \
            f"{path.name} calls {name} in upgrade()"
    # A column added to a table that has rows, and that the release before never writes:
    # NOT NULL needs a server default.
    for added in (call for call in calls if _name(call) == "add_column"):
        for column in (node for node in ast.walk(added)
                       if isinstance(node, ast.Call) and _name(node) == "Column"):
            keywords = {k.arg: k.value for k in column.keywords}
            nullable = keywords.get("nullable")
            assert not (isinstance(nullable, ast.Constant) and nullable.value is False
                        and "server_default" not in keywords), \
                f"{path.name}: a NOT NULL column added without a server default"


def _widens_a_string(call: ast.Call) -> bool:
    """alter_column(..., type_=sa.String(length=N), existing_type=sa.String(length=M)), N > M:
    whatever the release before writes, the wider column holds."""
    keywords = {k.arg: k.value for k in call.keywords}
    new, old = (_string_length(keywords.get(name)) for name in ("type_", "existing_type"))
    return _name(call) == "alter_column" and new is not None and old is not None and new > old


def _string_length(node) -> int | None:
    if not (isinstance(node, ast.Call) and _name(node) == "String"):
        return None
    length = next((k.value for k in node.keywords if k.arg == "length"), None)
    if length is None and node.args:
        length = node.args[0]
    return length.value if isinstance(length, ast.Constant) else None


def _name(call: ast.Call) -> str:
    return getattr(call.func, "attr", getattr(call.func, "id", ""))


def test_rebuilding_the_clients_table_keeps_the_rows_that_name_it(tmp_path, signing_keys_dir):
    """0019 widens clients.client_id, which on SQLite rebuilds the table: dropping the old
    one with foreign keys enforced would delete every consent, code and token by ON DELETE
    CASCADE (it did, before env.py turned enforcement off for migrations)."""
    app = make_app(tmp_path, signing_keys_dir)
    user, client = add_user(app), add_client(app)
    with app.app_context():
        Consent.grant(user.id, client.client_id, "openid")
        db.session.commit()
        downgrade(revision="0018_registration_management")
        upgrade()
        assert [c.client_id for c in db.session.scalars(db.select(Consent))] == [client.client_id]
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
