"""Database models. `db` is the one Flask-SQLAlchemy handle; import models from here."""

from __future__ import annotations

import sqlite3
from datetime import UTC
from datetime import datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Named constraints, so Alembic can alter them on SQLite and PostgreSQL alike.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))


@event.listens_for(Engine, "connect")
def _sqlite_enforces_foreign_keys(dbapi_connection, _record) -> None:
    """SQLite ignores ON DELETE CASCADE unless asked; PostgreSQL always honours it."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")


def utcnow() -> datetime:
    """Naive UTC, the one time representation stored in every table."""
    return datetime.now(UTC).replace(tzinfo=None)


from .authorization import AuthorizationCode  # noqa: E402
from .client import Client  # noqa: E402
from .client import RegisteredClient  # noqa: E402
from .consent import Consent  # noqa: E402
from .device_authorization import DeviceAuthorization  # noqa: E402
from .login_session import LoginSession  # noqa: E402
from .mailed_link import MailedLink  # noqa: E402
from .mfa import RecoveryCode  # noqa: E402
from .mfa import TotpFactor  # noqa: E402
from .pushed_request import PushedRequest  # noqa: E402
from .rate_limit import RateLimitCounter  # noqa: E402
from .signing_key import SigningKeyRecord  # noqa: E402
from .tokens import AccessTokenRecord  # noqa: E402
from .tokens import RefreshToken  # noqa: E402
from .tokens import RevokedAccessToken  # noqa: E402
from .tokens import TokenFamily  # noqa: E402
from .user import User  # noqa: E402

__all__ = [
    "AccessTokenRecord",
    "AuthorizationCode",
    "Client",
    "Consent",
    "DeviceAuthorization",
    "LoginSession",
    "MailedLink",
    "PushedRequest",
    "RateLimitCounter",
    "RecoveryCode",
    "RefreshToken",
    "RegisteredClient",
    "RevokedAccessToken",
    "SigningKeyRecord",
    "TokenFamily",
    "TotpFactor",
    "User",
    "db",
    "utcnow",
]
