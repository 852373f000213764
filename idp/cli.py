"""The `idp` admin command: users, clients, and the database (`idp db upgrade`).

Every command takes `--json`. Bad input exits non-zero with one line on stderr and writes
nothing: everything is validated before the single commit.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup
from flask.cli import FlaskGroup
from sqlalchemy.exc import IntegrityError

from . import create_app
from .config import LOOPBACK_HOSTS
from .config import ConfigError
from .models import Client
from .models import Token
from .models import User
from .models import db
from .models import utcnow
from .security import audit
from .security.passwords import PasswordPolicyError
from .security.passwords import hash_password
from .sessions import end_all_sessions_of

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _create_app():
    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"idp: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             set_debug_flag=False, load_dotenv=False)
def cli():
    """Administer the identity provider."""


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def validate_redirect_uri(uri: str) -> str:
    """RFC 9700 §2.6, §4.1.3 and RFC 8252: https; http only on loopback; a private-use scheme
    (with a dot, e.g. com.example.app:/cb) for native apps; never a fragment or userinfo."""
    parts = urlsplit(uri)
    problem = None
    if not parts.scheme:
        problem = "is not an absolute URI"
    elif parts.fragment or "#" in uri:
        problem = "must not contain a fragment"
    elif "@" in parts.netloc:
        problem = "must not contain user information"
    elif parts.scheme == "https":
        problem = None if parts.hostname else "has no host"
    elif parts.scheme == "http":
        problem = None if parts.hostname in LOOPBACK_HOSTS else "uses http on a non-loopback host"
    elif "." not in parts.scheme:
        problem = "uses a scheme that is neither https nor a private-use scheme like com.example.app"
    if problem:
        raise click.BadParameter(f"{uri!r} {problem}")
    return uri


def _uris(ctx, param, values):
    return [validate_redirect_uri(v) for v in values] if values else values


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return hash_password(password)
    except PasswordPolicyError as exc:
        raise click.ClickException(str(exc)) from None


def get_user(username: str) -> User:
    user = User.by_username(username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


def get_client(client_id: str) -> Client:
    client = Client.by_client_id(client_id)
    if client is None:
        raise click.ClickException(f"no client with client_id {client_id!r}")
    return client


def commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException("that would duplicate an existing record") from None


# --- users -------------------------------------------------------------------------------

@click.group(cls=AppGroup)
def users():
    """Manage end users."""


def user_view(user: User) -> dict:
    return {"username": user.username, "sub": user.subject, "email": user.email,
            "name": user.name, "disabled": user.disabled, "created_at": user.created_at}


@users.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_create(username, email, name, password_stdin, as_json):
    """Create a user; the password is asked for (or read from stdin)."""
    username = User.normalize_username(username)
    if not username or len(username) > 150:
        raise click.ClickException("username must be 1 to 150 characters")
    if "@" not in email:
        raise click.ClickException(f"{email!r} is not an email address")
    if User.by_username(username) is not None:
        raise click.ClickException(f"a user named {username!r} already exists")
    user = User(username=username, email=email, name=name,
                password_hash=read_password(password_stdin))
    db.session.add(user)
    commit()
    audit.log("admin.user_created", user_id=user.id)
    emit(user_view(user), as_json, f"created user {user.username} (sub {user.subject})")


@users.command("list")
@json_option
def users_list(as_json):
    """List users."""
    rows = db.session.execute(db.select(User).order_by(User.username)).scalars().all()
    text = "\n".join("\t".join([u.username, u.subject, u.email or "", "disabled" * u.disabled])
                     for u in rows)
    emit([user_view(u) for u in rows], as_json, text or "no users")


def _set_disabled(username: str, disabled: bool, as_json: bool) -> None:
    user = get_user(username)
    user.disabled = disabled
    ended = revoked = 0
    if disabled:  # ASVS 7.4.2: a disabled account keeps no session and no token
        ended = end_all_sessions_of(user)
        revoked = db.session.execute(
            db.update(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
            .values(revoked_at=utcnow())).rowcount
    commit()
    audit.log("admin.user_disabled" if disabled else "admin.user_enabled", user_id=user.id)
    state = "disabled" if disabled else "enabled"
    emit({**user_view(user), "sessions_ended": ended, "tokens_revoked": revoked}, as_json,
         f"{state} {user.username}")


@users.command("disable")
@click.argument("username")
@json_option
def users_disable(username, as_json):
    """Disable a user: sign-in refused, sessions ended, tokens revoked."""
    _set_disabled(username, True, as_json)


@users.command("enable")
@click.argument("username")
@json_option
def users_enable(username, as_json):
    """Enable a disabled user."""
    _set_disabled(username, False, as_json)


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_set_password(username, password_stdin, as_json):
    """Set a user's password; every session of the user ends."""
    user = get_user(username)
    user.password_hash = read_password(password_stdin)
    user.password_changed_at = utcnow()
    ended = end_all_sessions_of(user)
    commit()
    audit.log("admin.password_set", user_id=user.id)
    emit({"username": user.username, "sessions_ended": ended}, as_json,
         f"password changed for {user.username}")


# --- clients -----------------------------------------------------------------------------

@click.group(cls=AppGroup)
def clients():
    """Manage OAuth clients (relying parties and services)."""


def client_view(client: Client) -> dict:
    """Everything about a client except its secret hash, which never leaves the database."""
    return {"client_id": client.client_id, "name": client.name,
            "type": "public" if client.is_public else "confidential",
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "grant_types": client.grant_types, "scope": client.scope,
            "first_party": client.first_party, "created_at": client.created_at}


def client_text(client: Client) -> str:
    return "\n".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}"
                     for k, v in client_view(client).items())


def check_client(client: Client) -> None:
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise click.ClickException("the authorization_code grant needs at least one --redirect-uri")
    if client.is_public and "client_credentials" in client.grant_types:
        raise click.ClickException("a public client cannot use client_credentials")


redirect_uri_option = click.option("--redirect-uri", "redirect_uris", multiple=True,
                                   callback=_uris, help="Registered redirect URI (repeatable).")
logout_uri_option = click.option("--post-logout-redirect-uri", "logout_uris", multiple=True,
                                 callback=_uris, help="Registered post-logout URI (repeatable).")
grant_option = click.option("--grant-type", "grant_types", multiple=True,
                            type=click.Choice(GRANT_TYPES), help="Allowed grant (repeatable).")


@clients.command("create")
@click.option("--name", required=True)
@redirect_uri_option
@click.option("--public", is_flag=True, help="No secret: PKCE only (mobile and browser apps).")
@grant_option
@click.option("--scope", default="openid profile email", show_default=True)
@logout_uri_option
@click.option("--first-party", is_flag=True, help="The operator's own app: no consent page.")
@json_option
def clients_create(name, redirect_uris, public, grant_types, scope, logout_uris, first_party,
                   as_json):
    """Register a client; a confidential client's secret is printed once."""
    client = Client(name=name, redirect_uris=list(redirect_uris),
                    post_logout_redirect_uris=list(logout_uris),
                    grant_types=list(grant_types or ["authorization_code"]), scope=scope,
                    token_endpoint_auth_method="none" if public else "client_secret_basic",
                    first_party=first_party)
    check_client(client)
    secret = None if public else client.set_secret()
    db.session.add(client)
    commit()
    audit.log("admin.client_created", client_id=client.client_id)
    text = client_text(client)
    if secret:
        text += f"\nclient_secret: {secret}\n(shown only now: store it safely)"
    emit({**client_view(client), "client_secret": secret}, as_json, text)


@clients.command("list")
@json_option
def clients_list(as_json):
    """List clients."""
    rows = db.session.execute(db.select(Client).order_by(Client.name)).scalars().all()
    text = "\n".join(f"{c.client_id}\t{c.name}\t{'public' if c.is_public else 'confidential'}"
                     for c in rows)
    emit([client_view(c) for c in rows], as_json, text or "no clients")


@clients.command("show")
@click.argument("client_id")
@json_option
def clients_show(client_id, as_json):
    """Show one client."""
    client = get_client(client_id)
    emit(client_view(client), as_json, client_text(client))


@clients.command("update")
@click.argument("client_id")
@click.option("--name")
@redirect_uri_option
@click.option("--add-redirect-uri", "added", multiple=True, callback=_uris)
@click.option("--remove-redirect-uri", "removed", multiple=True)
@logout_uri_option
@grant_option
@click.option("--scope")
@click.option("--first-party/--no-first-party", default=None)
@json_option
def clients_update(client_id, name, redirect_uris, added, removed, logout_uris, grant_types,
                   scope, first_party, as_json):
    """Change a client; list options replace the registered list."""
    client = get_client(client_id)
    uris = list(redirect_uris) if redirect_uris else list(client.redirect_uris)
    uris = [u for u in uris + [a for a in added if a not in uris] if u not in removed]
    client.redirect_uris = uris
    if name:
        client.name = name
    if logout_uris:
        client.post_logout_redirect_uris = list(logout_uris)
    if grant_types:
        client.grant_types = list(grant_types)
    if scope is not None:
        client.scope = scope
    if first_party is not None:
        client.first_party = first_party
    try:
        check_client(client)
    except click.ClickException:
        db.session.rollback()
        raise
    commit()
    audit.log("admin.client_updated", client_id=client.client_id)
    emit(client_view(client), as_json, client_text(client))


@clients.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def clients_delete(client_id, yes, as_json):
    """Delete a client with its codes, tokens and consents."""
    client = get_client(client_id)
    if not yes:
        click.confirm(f"Delete client {client.name} ({client.client_id})?", abort=True)
    db.session.delete(client)
    commit()
    audit.log("admin.client_deleted", client_id=client_id)
    emit({"client_id": client_id, "deleted": True}, as_json, f"deleted {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@json_option
def clients_rotate_secret(client_id, as_json):
    """Replace a confidential client's secret; the old one stops working at once."""
    client = get_client(client_id)
    if client.is_public:
        raise click.ClickException("a public client has no secret")
    secret = client.set_secret()
    commit()
    audit.log("admin.client_secret_rotated", client_id=client_id)
    emit({"client_id": client_id, "client_secret": secret}, as_json,
         f"client_secret: {secret}\n(shown only now: store it safely)")


COMMAND_GROUPS: list[click.Group] = [users, clients]


def register_commands(app) -> None:
    """Attach the admin command groups to `app.cli` (so `idp ...` and test runners see them)."""
    for group in COMMAND_GROUPS:
        app.cli.add_command(group)
