"""Work that follows a change but must not hold up the answer to it: e-mail notices and
back-channel logout calls. In a request it runs once the response has gone out (gunicorn runs
a response's close callbacks after sending it); from the CLI, at once."""

from __future__ import annotations

from collections.abc import Callable

from flask import after_this_request
from flask import current_app
from flask import has_request_context


def after_response(work: Callable[[], None]) -> None:
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            work()

    if not has_request_context():
        run()
        return

    @after_this_request
    def run_when_sent(response):
        response.call_on_close(run)
        return response
