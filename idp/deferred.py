"""Work that follows a change but must not hold up the answer to it: e-mail notices and
back-channel logout calls. In a request it runs once the response has gone out (gunicorn runs
a response's close callbacks after sending it); from the CLI, at once.

After a response, the worker waits for the work at most HOLD_SECONDS, then takes its next
request while the work finishes on its own thread: a mail server or a client that stalls must
not keep a sync worker busy past gunicorn's timeout (30 s, config/gunicorn.py), which kills it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import after_this_request
from flask import current_app
from flask import has_request_context

HOLD_SECONDS = 20


def after_response(work: Callable[[], None]) -> None:
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            work()

    if not has_request_context():
        run()
        return

    def run_without_holding_the_worker() -> None:
        thread = threading.Thread(target=run, name="idp-after-response", daemon=True)
        thread.start()
        thread.join(HOLD_SECONDS)

    @after_this_request
    def run_when_sent(response):
        response.call_on_close(run_without_holding_the_worker)
        return response
