"""The account page lists where the user is signed in and lets them sign out any other session,
once they confirm with the password or a current code (ASVS 7.5.2); `idp users sign-out` does
the same for an administrator."""

from __future__ import annotations

import json
import re

import pytest

from idp.models import LoginSession
from idp.models import db

from ..conftest import add_user
from ..conftest import enroll_totp
from ..conftest import totp_code
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_login import post_login
from .test_mfa import post_code

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile Safari/604.1"


def browser(app, user_agent: str):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def listed_sessions(page: str) -> list[str]:
    return re.findall(r'data-session="([^"]+)"', page)


def end(client, session: str, **confirmation):
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post("/account/sessions/end",
                       data={"csrf_token": token, "session": session, **confirmation})


@pytest.fixture
def two_browsers(app, user):
    laptop, phone = browser(app, "Laptop browser"), browser(app, PHONE + "\x07")
    post_login(laptop, "alice", PASSWORD)
    post_login(phone, "alice", PASSWORD)
    with app.app_context():
        phone_session = db.session.execute(
            db.select(LoginSession).order_by(LoginSession.id.desc())).scalars().first()
    return laptop, phone, str(phone_session.id)


def test_the_account_page_lists_the_sessions_and_where_they_come_from(two_browsers):
    laptop, _, phone_id = two_browsers
    page = laptop.get("/account").get_data(as_text=True)
    assert listed_sessions(page) == ["current", phone_id]
    assert "This browser" in page and "from 127.0.0.1" in page
    assert "iPhone" in page and "\x07" not in page  # stored without control characters


def test_signing_out_another_session_needs_the_password(two_browsers, app):
    laptop, phone, phone_id = two_browsers
    refused = end(laptop, phone_id, password="wrong")
    assert refused.status_code == 400 and "not right" in refused.get_data(as_text=True)
    assert signed_in(phone)

    done = end(laptop, phone_id, password=PASSWORD)
    assert done.status_code == 200 and "That session is signed out" in done.get_data(as_text=True)
    assert not signed_in(phone) and signed_in(laptop)
    assert listed_sessions(laptop.get("/account").get_data(as_text=True)) == ["current"]


def test_every_other_session_at_once_with_a_recovery_code(app, user):
    secret, codes = enroll_totp(app)
    browsers = [browser(app, f"Browser {n}") for n in range(3)]
    for client in browsers:
        post_login(client, "alice", PASSWORD)
        post_code(client, totp_code(secret))
    # the current TOTP code was spent signing in (each is good once): a recovery code, then
    done = end(browsers[0], "others", otp=codes[0])
    assert "signed out everywhere else" in done.get_data(as_text=True)
    assert [signed_in(client) for client in browsers] == [True, False, False]


def test_only_the_users_own_sessions_can_be_ended(app, user, two_browsers):
    add_user(app, username="bob", email="bob@example.com")
    bob = browser(app, "Bob's browser")
    post_login(bob, "bob", PASSWORD)
    with app.app_context():
        bobs = db.session.execute(
            db.select(LoginSession).order_by(LoginSession.id.desc())).scalars().first()
    laptop, _, _ = two_browsers
    answer = end(laptop, str(bobs.id), password=PASSWORD)
    assert "That session had already ended" in answer.get_data(as_text=True)
    assert signed_in(bob)


@pytest.mark.parametrize("session", ["", "current", "-1", "1 OR 1=1", "²", "9" * 30])
def test_a_bad_choice_is_a_clear_error_and_ends_nothing(two_browsers, session):
    laptop, phone, _ = two_browsers
    answer = end(laptop, session, password=PASSWORD)
    assert answer.status_code == 400 and "Choose a session" in answer.get_data(as_text=True)
    assert signed_in(phone) and signed_in(laptop)


def test_the_current_session_is_ended_by_signing_out_not_here(two_browsers, app):
    laptop, _, _ = two_browsers
    with app.app_context():
        own = db.session.execute(
            db.select(LoginSession).order_by(LoginSession.id)).scalars().first()
    answer = end(laptop, str(own.id), password=PASSWORD)
    assert answer.status_code == 400 and "use Sign out" in answer.get_data(as_text=True)
    assert signed_in(laptop)


def test_the_cli_signs_a_user_out_everywhere(app, cli, two_browsers):
    laptop, phone, _ = two_browsers
    result = cli.invoke(args=["users", "sign-out", "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"username": "alice", "sessions_ended": 2}
    assert not signed_in(laptop) and not signed_in(phone)
    unknown = cli.invoke(args=["users", "sign-out", "nobody"])
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output
