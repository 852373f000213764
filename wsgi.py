"""WSGI entry point for gunicorn: `gunicorn -c config/gunicorn.py wsgi:app`."""

import sys

from idp import create_app
from idp.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one line for the operator, not a traceback
    sys.stderr.write(f"idp: {exc}\n")
    sys.exit(3)
