"""Rolling upgrades (REFERENCE 2.12, ory/hydra#1664): the database is upgraded first, and the
release before keeps running on it until every host has the new one. That holds while each
migration only adds: tables, indexes, nullable columns or columns with a server default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
        assert name not in DESTRUCTIVE, f"{path.name} calls {name} in upgrade()"
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


def _name(call: ast.Call) -> str:
    return getattr(call.func, "attr", getattr(call.func, "id", ""))
