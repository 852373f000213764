"""The `idp` admin command: users, clients, tokens, `idp prune`, and the database
(`idp db upgrade`).

Every command takes `--json`. Bad input exits non-zero with one line on stderr and writes
nothing: everything is validated before the single commit.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError

from .. import create_app
from ..config import ConfigError
from ..models import Client
from ..models import User
from ..models import db
from ..models.client import problem_with_client_uri
from ..models.user import problem_with_text
from ..security.passwords import PasswordPolicyError
from ..security.passwords import hash_password

# As typed on the command line; "device_code" stands for RFC 8628's URN (clients.py).
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "device_code")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _create_app():
    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"idp: {exc}", err=True)
        sys.exit(2)


class AdminGroup(FlaskGroup):
    """Errors no command can mend become one line on stderr, never a traceback: the database
    (unreachable, not migrated, a value its column refuses) and text that is not UTF-8."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:  # the app context is gone: its teardown rolled back
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(
                f"database error: {reason} (is IDP_DATABASE_URL right, and has "
                "`idp db upgrade` run?)") from None
        except UnicodeError:
            raise click.ClickException("arguments and input must be UTF-8 text") from None


@click.group(cls=AdminGroup, create_app=_create_app, add_version_option=False,
             set_debug_flag=False, load_dotenv=False)
def cli():
    """Administer the identity provider."""


class Duration(click.ParamType):
    """A length of time, as seconds or with a unit: 90, 90s, 15m, 24h, 7d; at most `maximum`
    seconds."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def __init__(self, maximum: int):
        self.maximum = maximum

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        number, unit = (text[:-1], text[-1]) if text[-1:] in self.UNITS else (text, "s")
        if not (number.isascii() and number.isdigit() and len(number) <= 9):
            self.fail(f"{value!r} is not a duration such as 90s, 15m, 24h or 7d", param, ctx)
        seconds = int(number) * self.UNITS[unit]
        if seconds > self.maximum:
            self.fail(f"{value!r} is longer than the most allowed, {self.maximum} seconds",
                      param, ctx)
        return seconds


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def validate_redirect_uri(uri: str) -> str:
    if problem := problem_with_client_uri(uri):
        raise click.BadParameter(f"{uri!r} {problem}")
    return uri


def check_text(value: str, what: str, max_length: int) -> None:
    if problem := problem_with_text(value, max_length):
        raise click.ClickException(f"{what} {problem}")


def uris_option_callback(ctx, param, values):
    return [validate_redirect_uri(v) for v in values] if values else values


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
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


def commit(show_first: Callable[[], None] | None = None) -> None:
    """Store the command's changes. `show_first` prints what the operator sees only once (a
    new client secret): it runs before the commit, and if its output cannot be written (a full
    disk, a closed pipe) nothing is stored, so no secret exists that nobody has seen."""
    try:
        if show_first:
            db.session.flush()
            _write_or_roll_back(show_first)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException("that would duplicate an existing record") from None


def _write_or_roll_back(show: Callable[[], None]) -> None:
    try:
        show()
        sys.stdout.flush()
    except OSError as exc:
        db.session.rollback()
        # What stays in stdout's buffer would fail again at exit, with a second message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.ClickException(
            f"could not write the output ({exc.strerror or exc}): nothing was changed") from None


def register_commands(app) -> None:
    """Attach the admin command groups to `app.cli` (so `idp ...` and test runners see them)."""
    from .check import check
    from .clients import clients
    from .keys import keys
    from .prune import prune
    from .tokens import tokens
    from .users import users

    for group in (users, clients, tokens, keys, prune, check):
        app.cli.add_command(group)
