"""`idp prune`: delete expired codes, tokens, sessions and counters."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..retention import prune as prune_expired
from ..security import audit
from . import emit
from . import json_option


@click.command("prune")
@json_option
@with_appcontext
def prune(as_json):
    """Delete what is past its retention (see idp/retention.py); safe to run from cron."""
    deleted = prune_expired()
    audit.log("admin.pruned", **deleted)
    emit(deleted, as_json, "\n".join(f"{table}: {count} deleted"
                                     for table, count in deleted.items()))
