"""Audit log of security events, as one JSON object a line on the `idp.audit` logger.

Callers pass identifiers and reasons only: never a password, code, token or secret.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import has_request_context
from flask import request

from ..models import utcnow

logger = logging.getLogger("idp.audit")
FORBIDDEN_FIELDS = {"password", "secret", "client_secret", "code", "token", "otp", "refresh_token"}


def log(event: str, **fields: Any) -> None:
    """Record `event` (dotted name, e.g. "login.failed") with its context."""
    leaked = FORBIDDEN_FIELDS & fields.keys()
    if leaked:  # a programming error, never user input
        raise ValueError(f"audit fields must not carry secrets: {sorted(leaked)}")
    record = {"at": utcnow().isoformat(timespec="seconds") + "Z", "event": event}
    if has_request_context():
        record["ip"] = request.remote_addr
    record.update({k: v for k, v in fields.items() if v is not None})
    logger.info(json.dumps(record, sort_keys=True, default=str))
