"""gunicorn settings for the provider: `gunicorn -c config/gunicorn.py wsgi:app`.

Every value can be overridden with GUNICORN_* style command-line flags or the environment
variables below. Worker count defaults to the core count: RS256 signing is CPU-bound, so more
sync workers than cores only add context switches.
"""

import multiprocessing
import os

bind = os.environ.get("IDP_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("IDP_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("IDP_WORKER_CLASS", "sync")
threads = int(os.environ.get("IDP_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# Access log without query strings: /authorize carries state and nonce, /end_session an
# id_token_hint, none of which belongs in a log file.
accesslog = os.environ.get("IDP_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("IDP_GUNICORN_LOG_LEVEL", "info")
