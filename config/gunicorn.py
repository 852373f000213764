"""gunicorn settings for the provider: `gunicorn -c config/gunicorn.py wsgi:app`.

Every value can be overridden with GUNICORN_* style command-line flags or the environment
variables below. Worker count defaults to the core count: RS256 signing is CPU-bound, so more
sync workers than cores only add context switches.
"""

import functools
import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("IDP_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("IDP_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("IDP_WORKER_CLASS", "sync")
threads = int(os.environ.get("IDP_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# gunicorn's largest request line, not its default of 4094 bytes: an authorization URL carrying
# a request object by value (RFC 9101) or a `claims` parameter runs past 4 KB. Larger requests
# go to /par, or to /authorize as a POST.
limit_request_line = 8190
# Access log without query strings: /authorize carries state and nonce, /end_session an
# id_token_hint, none of which belongs in a log file.
accesslog = os.environ.get("IDP_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("IDP_GUNICORN_LOG_LEVEL", "info")


class AccessLogger(Logger):
    """gunicorn's logger, computing only the fields the shipped access_log_format prints.
    gunicorn builds all two dozen of them for every request (a strftime and a copy of every
    header among them), which was 4% of a token request. Any other format gets them all."""

    LEAN_FIELDS = {"h", "m", "U", "s", "B", "M"}

    def atoms(self, resp, req, environ, request_time):
        if not self._format_is_lean(self.cfg.access_log_format):
            return super().atoms(resp, req, environ, request_time)
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "s": status,
            "B": getattr(resp, "sent", None),
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
        }

    @classmethod
    @functools.cache
    def _format_is_lean(cls, log_format: str) -> bool:
        return set(re.findall(r"%\(([^)]*)\)", log_format)) <= cls.LEAN_FIELDS


logger_class = AccessLogger
