"""The JWKS and the metadata documents replayed without Flask (well_known.ReplayedDocuments):
the same answer Flask gives, Flask consulted again whenever the keys are due for a refresh,
and never for a request Flask could answer differently."""

import pytest
from flask import make_response

from idp.views import well_known

PATHS = ("/jwks.json", "/.well-known/openid-configuration",
         "/.well-known/oauth-authorization-server")


@pytest.fixture
def flask_answers(app):
    """How many times each document's view ran."""
    calls = {}
    for endpoint in ("well_known.jwks", "well_known.openid_configuration",
                     "well_known.oauth_authorization_server"):
        view = app.view_functions[endpoint]

        def counted(view=view, endpoint=endpoint, **kwargs):
            calls[endpoint] = calls.get(endpoint, 0) + 1
            return view(**kwargs)

        app.view_functions[endpoint] = counted
    with app.app_context():  # as after start-up on a migrated database: no refresh due
        app.extensions["idp.keys"].refresh()
    return calls


def answer(response):
    return response.status, sorted(response.headers.items()), response.get_data()


def test_a_repeated_request_is_answered_as_flask_answered_it(app, http, flask_answers):
    flask = app.test_client(use_cookies=False)  # sends the Cookie header it is given
    for path in PATHS:
        etag = http.get(path).headers["ETag"]
        for method in ("GET", "HEAD"):
            for headers in ({"If-None-Match": etag}, {"If-None-Match": '"other"'},
                            {"Host": "idp.example.com"}, {}):
                first = http.open(path, method=method, headers=headers)
                flask_ran = sum(flask_answers.values())
                replayed = http.open(path, method=method, headers=headers)
                assert sum(flask_answers.values()) == flask_ran
                # A cookie always goes to Flask: the reference answer.
                from_flask = flask.open(path, method=method,
                                        headers={**headers, "Cookie": "theme=dark"})
                assert sum(flask_answers.values()) == flask_ran + 1
                assert answer(first) == answer(replayed) == answer(from_flask)
                assert first.status_code == (304 if etag in headers.values() else 200)


def test_only_a_plain_get_or_head_is_replayed(app, http, flask_answers):
    http.get("/jwks.json")
    http.get("/jwks.json")
    assert flask_answers["well_known.jwks"] == 1
    # Query strings and cookies go to Flask, every time: its NUL check answers this one.
    assert http.get("/jwks.json?x=%00").status_code == 400
    assert http.get("/jwks.json?x=%00").status_code == 400
    http.get("/jwks.json?v=2")
    app.test_client(use_cookies=False).get("/jwks.json", headers={"Cookie": "a=b"})
    assert flask_answers["well_known.jwks"] == 3
    assert http.post("/jwks.json").status_code == 405
    assert http.post("/jwks.json").status_code == 405
    assert flask_answers["well_known.jwks"] == 3  # a 405 does not reach the view


def test_flask_answers_again_once_the_keys_are_due_for_a_refresh(app, http, flask_answers):
    store = app.extensions["idp.keys"]
    before = http.get("/jwks.json")
    with app.app_context():
        store.rotate(force=True)  # refreshes this worker's copy: new keys, new answers
    rotated = http.get("/jwks.json")
    assert flask_answers["well_known.jwks"] == 2
    assert rotated.headers["ETag"] != before.headers["ETag"]
    assert rotated.get_json() != before.get_json()

    http.get("/jwks.json")
    assert flask_answers["well_known.jwks"] == 2
    store._next_refresh = 0.0  # another worker may have rotated: ask the database
    http.get("/jwks.json")  # refreshes the keys first
    http.get("/jwks.json")  # the first answer known to come from the refreshed keys: kept
    http.get("/jwks.json")
    assert flask_answers["well_known.jwks"] == 4


def test_an_answer_that_sets_a_cookie_is_never_replayed(app, http, flask_answers):
    view = app.view_functions["well_known.jwks"]

    def with_cookie():
        response = make_response(view())
        response.set_cookie("tracking", "1")
        return response

    app.view_functions["well_known.jwks"] = with_cookie
    assert "tracking=1" in http.get("/jwks.json").headers["Set-Cookie"]
    assert "tracking=1" in http.get("/jwks.json").headers["Set-Cookie"]


def test_what_a_caller_sends_keeps_no_more_than_a_few_answers(app, http, flask_answers):
    replay = app.wsgi_app
    assert isinstance(replay, well_known.ReplayedDocuments)
    for number in range(well_known.MAX_REPLAYED_ANSWERS + 10):
        response = http.get("/jwks.json", headers={"If-None-Match": f'"{number}"'})
        assert response.status_code == 200
    assert len(replay._kept[1]) == well_known.MAX_REPLAYED_ANSWERS
    assert http.get("/jwks.json").status_code == 200  # still answered, by Flask
