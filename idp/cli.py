"""The `idp` admin command: users, clients, keys, and the database (`idp db upgrade`)."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from . import create_app
from .config import ConfigError


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


def register_commands(app) -> None:
    """Attach the admin command groups to `app.cli` (so `idp ...` and test runners see them)."""
    for group in COMMAND_GROUPS:
        app.cli.add_command(group)


COMMAND_GROUPS: list[click.Group] = []
