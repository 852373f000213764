"""A small OpenID Connect provider on Flask and Authlib."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application; raises config.ConfigError with a one-line reason on bad settings."""
    from . import config
    from .app import build

    app = Flask(
        __name__,
        template_folder=str(config.PROJECT_ROOT / "templates"),
        static_folder=None,
    )
    config.load(app, test_config)
    build(app)
    return app
