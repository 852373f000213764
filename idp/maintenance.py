"""Automatic `idp prune`: every PRUNE_INTERVAL_SECONDS, the first worker of any host to notice
deletes what is past its retention (idp/retention.py), after it has answered its request, so no
caller waits for it. Without it (PRUNE_INTERVAL_SECONDS = 0), `idp prune` runs from cron."""

from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .retention import prune
from .security import audit
from .security import rate_limit

log = logging.getLogger(__name__)
# A rate-limit counter as a lease: the first count of an interval sweeps, the others skip.
# (`idp prune` may delete it early: then a second sweep runs in that interval, harmlessly.)
LEASE = "maintenance:prune"


class AutomaticPrune:
    def __init__(self, app: Flask):
        self.app = app
        self.interval = app.config["PRUNE_INTERVAL_SECONDS"]
        self._next_try = 0.0  # time.monotonic(): each worker tries at its first request

    def after_request(self, response):
        """A clock comparison on every request; the database only once an interval."""
        if time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self.interval
            response.call_on_close(self.sweep)
        return response

    def sweep(self) -> None:
        with self.app.app_context():
            try:
                if rate_limit.count_attempt(LEASE, self.interval) == 1:
                    audit.log("maintenance.pruned", **prune())
            except SQLAlchemyError as exc:  # the next interval tries again
                log.warning("automatic prune failed (%s)", type(exc).__name__)


def init_app(app: Flask) -> None:
    if app.config["PRUNE_INTERVAL_SECONDS"]:
        app.after_request(AutomaticPrune(app).after_request)
