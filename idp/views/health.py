"""Probes for load balancers and orchestrators: /health/live (the process answers) and
/health/ready (it can serve: the database answers and the signing keys are loaded). No
session, cookie or credentials; the body says which check failed, never why (the log does)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint
from flask import current_app
from flask import jsonify
from sqlalchemy.exc import SQLAlchemyError

from ..models import db

bp = Blueprint("health", __name__, url_prefix="/health")
log = logging.getLogger(__name__)


@bp.get("/live")
def live():
    return _probe({})


@bp.get("/ready")
def ready():
    return _probe({"database": _database_answers(),
                   "signing_keys": current_app.extensions["idp.keys"].has_keys()})


def _database_answers() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except SQLAlchemyError as exc:
        log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False


def _probe(checks: dict[str, bool]):
    passed = all(checks.values())
    response = jsonify(status="ok" if passed else "unavailable",
                       checks={name: "ok" if ok else "unavailable" for name, ok in checks.items()})
    response.status_code = 200 if passed else 503
    response.headers["Cache-Control"] = "no-store"
    return response
