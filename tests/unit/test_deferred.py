"""Work deferred past the response (idp/deferred.py): it runs once the response is closed, and
the worker waits for it only so long, so a stalled mail server or client cannot keep it busy
past gunicorn's timeout."""

from __future__ import annotations

import threading

from idp import deferred


def respond_with(app, work):
    with app.test_request_context("/"):
        deferred.after_response(work)
        return app.process_response(app.response_class("done"))


def test_the_work_runs_once_the_response_is_closed(app):
    ran = threading.Event()
    response = respond_with(app, ran.set)
    assert not ran.is_set()
    response.close()  # what gunicorn does once it has sent the response
    assert ran.is_set()


def test_the_worker_stops_waiting_for_stalled_work(app, monkeypatch):
    monkeypatch.setattr(deferred, "HOLD_SECONDS", 0.1)
    release, finished = threading.Event(), threading.Event()

    def stalled():
        release.wait(30)
        finished.set()

    respond_with(app, stalled).close()  # returns with the work still waiting
    assert not finished.is_set()
    release.set()
    assert finished.wait(10)  # and the work still ends, on its own thread


def test_from_the_cli_the_work_runs_at_once(app):
    ran = threading.Event()
    with app.app_context():
        deferred.after_response(ran.set)
    assert ran.is_set()
