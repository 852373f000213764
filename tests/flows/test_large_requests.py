"""An authorization request waits in the session cookie while the user signs in and consents;
one too large for the cookie waits in the database, as a pushed request (RFC 9126) would, and
the cookie holds only its request_uri. The browser's part is in tests/browser."""

from __future__ import annotations

import secrets
from datetime import timedelta

from idp.models import PushedRequest
from idp.models import db
from idp.models import utcnow
from idp.oauth import pushed_requests

from ..conftest import add_client
from ..helpers import Browserless
from ..helpers import query_of

LARGE_STATE = secrets.token_urlsafe(3750)  # 5,000 characters: a cookie past 4 KB


def parked_rows(app) -> list[PushedRequest]:
    with app.app_context():
        return db.session.scalars(db.select(PushedRequest)).all()


def session_cookie(http) -> str:
    return http.get_cookie("idp_session").value


def test_a_request_too_large_for_the_cookie_waits_in_the_database(app, flow):
    response = flow.authorize(state=LARGE_STATE, nonce="n-1")
    assert response.status_code == 302 and "/login" in response.location
    [row] = parked_rows(app)
    assert row.client_id == flow.client.client_id and row.params["state"] == LARGE_STATE
    assert row.params["nonce"] == "n-1" and row.used_at is None
    assert len(session_cookie(flow.http)) < 1000
    # Back from sign-in, the browser names it by its request_uri alone.
    resume = flow.login().location
    assert set(query_of(resume)) == {"client_id", "request_uri"}
    consent_page = flow.follow(flow.http.get(resume))
    assert consent_page.status_code == 200
    response = flow.follow(flow.consent(consent_page))
    params = query_of(response.location)
    assert response.location.startswith(flow.client.redirect_uris[0])
    assert params["state"] == LARGE_STATE and params["code"]
    tokens = flow.exchange(params["code"]).get_json()
    assert tokens["id_token"] and tokens["access_token"]
    # Answered: it cannot be named again.
    assert parked_rows(app)[0].used_at is not None
    replay = flow.http.get(resume)
    assert replay.status_code == 400 and replay.location is None
    assert "invalid_request_uri" in replay.get_data(as_text=True)


def test_a_small_request_still_waits_in_the_cookie(app, flow):
    assert flow.code(state=secrets.token_urlsafe(1500))
    assert parked_rows(app) == []


def test_a_request_past_the_bound_goes_back_to_the_client(app, flow):
    """Nobody authenticated it: past PARKED_MAX_BYTES it is not kept, and the client is
    told to push it to /par, where it was authenticated."""
    state = secrets.token_urlsafe(pushed_requests.PARKED_MAX_BYTES * 3 // 4)  # 64 KiB, random
    response = flow.http.post("/authorize", data=flow.authorize_params(state=state))
    assert response.status_code == 302
    params = query_of(response.location)
    assert params["error"] == "invalid_request" and params["state"] == state
    assert "64 KiB" in params["error_description"]
    assert "pushed_authorization_request_endpoint" in params["error_description"]
    assert parked_rows(app) == []


def test_an_address_may_park_only_so_many(app, flow, monkeypatch):
    monkeypatch.setattr(pushed_requests, "PARKED_PER_WINDOW", 2)
    for _ in range(2):
        assert "/login" in flow.authorize(state=LARGE_STATE).location
        flow.http.delete_cookie("idp_session")
    response = flow.authorize(state=LARGE_STATE)
    params = query_of(response.location)
    assert response.location.startswith(flow.client.redirect_uris[0])
    assert params["error"] == "temporarily_unavailable" and params["state"] == LARGE_STATE
    assert len(parked_rows(app)) == 2
    # A request that fits in the cookie is not counted.
    assert "/login" in flow.authorize().location


def test_a_parked_request_keeps_every_resource(app, http, user):
    resources = ["https://api1.example/", "https://api2.example/"]
    flow = Browserless(http, add_client(app, audiences=resources))
    code = flow.code(state=LARGE_STATE, resource=resources)
    assert parked_rows(app)[0].params["resource"] == resources
    tokens = flow.exchange(code, resource=resources[1]).get_json()
    assert tokens["access_token"], tokens


def test_a_parked_request_past_its_time_goes_back_to_the_client(app, flow):
    """A user who takes longer than pushed_requests.RESUME_SECONDS to sign in is sent back
    to the client with invalid_request_uri and the request's state, not left on a page."""
    assert "/login" in flow.authorize(state=LARGE_STATE).location
    with app.app_context():
        db.session.execute(db.update(PushedRequest).values(
            expires_at=utcnow() - timedelta(seconds=pushed_requests.RESUME_SECONDS + 1)))
        db.session.commit()
    response = flow.http.get(flow.login().location)
    assert response.status_code == 302
    assert response.location.startswith(flow.client.redirect_uris[0])
    params = query_of(response.location)
    assert params["error"] == "invalid_request_uri" and params["state"] == LARGE_STATE
    assert "code" not in params
