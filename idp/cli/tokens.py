"""`idp tokens ...`: revoke what is outstanding for a user or a client."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..oauth.token_store import revoke_client_tokens
from ..oauth.token_store import revoke_user_tokens
from ..security import audit
from . import commit
from . import emit
from . import get_client
from . import get_user
from . import json_option


@click.group(cls=AppGroup)
def tokens():
    """Revoke tokens."""


@tokens.command("revoke")
@click.option("--user", "username", help="Every refresh and access token of this user.")
@click.option("--client", "client_id",
              help="Every token issued to this client, client credentials included.")
@json_option
def tokens_revoke(username, client_id, as_json):
    """Revoke everything outstanding for one user or one client. Introspection says inactive,
    /userinfo refuses, and refresh tokens stop working at once."""
    if bool(username) == bool(client_id):
        raise click.UsageError("give exactly one of --user or --client")
    if username:
        user = get_user(username)
        revoked = revoke_user_tokens(user, "admin_revoked")
        target = {"user": user.username}
        audited = {"user_id": user.id}
    else:
        client = get_client(client_id)
        revoked = revoke_client_tokens(client, "admin_revoked")
        target = audited = {"client_id": client.client_id}
    commit()
    audit.log("admin.tokens_revoked", families=revoked, **audited)
    emit({**target, "token_families_revoked": revoked}, as_json,
         f"revoked {revoked} grant(s) and their tokens"
         + ("" if username else ", and every client-credentials token issued so far"))
