"""A forgotten password (ASVS 6.4): a link mailed from the sign-in page, good once and for a
while, that tells no one whether an account exists, and after which whoever knew the old
password keeps nothing. Mail goes to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from idp.models import MailedLink
from idp.models import TokenFamily
from idp.models import User
from idp.models import db
from idp.models import utcnow

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import enroll_totp
from ..conftest import make_app
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_login import post_login

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def app(tmp_path, signing_keys_dir, mailbox):
    return make_app(tmp_path, signing_keys_dir, MAIL_SMTP_URL=mailbox.url,
                    MAIL_FROM="id@example.com")


def ask_for_link(http, typed="alice"):
    page = http.get("/password/forgot")
    response = http.post("/password/forgot",
                         data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                               "login": typed})
    response.close()  # as gunicorn does once it has sent it: the mail goes out then
    return response


def link_in(mailbox) -> str:
    [message] = mailbox.messages
    mailbox.messages.clear()
    assert message["Subject"] == "Reset your password"
    return re.search(r"http://\S+/password/reset\?token=\S+", message.get_content()).group(0)


def path_of(link: str) -> str:
    return link.removeprefix("http://127.0.0.1:5000")


def choose_password(http, link, new=NEW_PASSWORD, confirm=None):
    page = http.get(path_of(link))
    assert page.status_code == 200, page.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = http.post("/password/reset", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "token": token,
        "new_password": new, "confirm_password": confirm or new})
    response.close()
    return response


def test_the_sign_in_page_offers_it(http):
    page = http.get("/login").get_data(as_text=True)
    assert 'id="forgot-password"' in page and 'href="/password/forgot"' in page


def test_a_user_resets_a_forgotten_password_once(app, http, user, mailbox):
    answer = ask_for_link(http)
    assert answer.status_code == 200 and "on its way" in answer.get_data(as_text=True)
    link = link_in(mailbox)
    assert http.get(path_of(link)).status_code == 200  # opening it spends nothing (mail scanners)

    done = choose_password(http, link)
    assert done.status_code == 200 and 'id="password-reset"' in done.get_data(as_text=True)
    [notice] = mailbox.messages
    assert notice["Subject"] == "Your password was reset"
    assert post_login(app.test_client(), "alice", PASSWORD).status_code == 401
    assert post_login(app.test_client(), "alice", NEW_PASSWORD).status_code == 303
    again = http.get(path_of(link))
    assert again.status_code == 400 and 'id="link-invalid"' in again.get_data(as_text=True)


def test_the_link_is_at_the_issuer_whatever_the_host_header_says(app, http, user, mailbox):
    forged = {"Host": "evil.example"}
    page = http.get("/password/forgot", headers=forged)
    http.post("/password/forgot", headers=forged,
              data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                    "login": "alice"}).close()
    assert link_in(mailbox).startswith(app.config["ISSUER"] + "/password/reset?token=")


def test_an_e_mail_address_works_too_whatever_its_case(http, user, mailbox):
    ask_for_link(http, "ALICE@Example.com")
    assert "/password/reset?token=" in link_in(mailbox)


def test_nothing_tells_whether_an_account_exists(app, http, user, mailbox):
    known = ask_for_link(http, "alice").get_data(as_text=True)
    mailbox.messages.clear()
    for typed in ("nobody", "nobody@example.com"):
        assert ask_for_link(app.test_client(), typed).get_data(as_text=True) == known
    add_user(app, username="quiet", email=None)
    add_user(app, username="gone", email="gone@example.com")
    with app.app_context():
        User.by_username("gone").disabled = True
        db.session.commit()
    for typed in ("quiet", "gone"):  # no address, or disabled: no mail either
        assert ask_for_link(app.test_client(), typed).get_data(as_text=True) == known
    assert mailbox.messages == []


def test_requests_are_limited_for_accounts_that_exist_or_not(app, user, mailbox):
    for typed in ("alice", "nobody"):
        statuses = [ask_for_link(app.test_client(), typed).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


def test_the_link_expires_and_a_newer_one_replaces_it(app, http, user, mailbox):
    ask_for_link(http)
    first = link_in(mailbox)
    ask_for_link(http)
    second = link_in(mailbox)
    assert http.get(path_of(first)).status_code == 400  # replaced
    with app.app_context():
        for link in db.session.execute(db.select(MailedLink)).scalars():
            link.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert http.get(path_of(second)).status_code == 400


def test_a_refused_password_keeps_the_link(http, user, mailbox):
    ask_for_link(http)
    link = link_in(mailbox)
    short = choose_password(http, link, new="short")
    assert short.status_code == 400 and 'id="reset-error"' in short.get_data(as_text=True)
    mismatch = choose_password(http, link, confirm="something else entirely")
    assert mismatch.status_code == 400 and "do not match" in mismatch.get_data(as_text=True)
    assert choose_password(http, link).status_code == 200


def test_a_reset_signs_out_everywhere_and_revokes_the_apps(app, http, user, mailbox):
    elsewhere = app.test_client()
    post_login(elsewhere, "alice", PASSWORD)
    client = add_client(app, grant_types=["authorization_code", "refresh_token"])
    with app.app_context():  # an app's grant, as a code exchange leaves it
        db.session.add(TokenFamily(client_id=client.client_id, user_id=user.id,
                                   scope="openid", expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    ask_for_link(http)
    choose_password(http, link_in(mailbox))
    assert elsewhere.get("/account").status_code == 302
    with app.app_context():
        family = db.session.execute(db.select(TokenFamily)).scalar_one()
        assert family.revoked_reason == "password_reset"


def test_a_second_factor_is_still_asked_after_a_reset(app, http, user, mailbox):
    enroll_totp(app)
    ask_for_link(http)
    choose_password(http, link_in(mailbox))
    signing_in = post_login(app.test_client(), "alice", NEW_PASSWORD)
    assert signing_in.status_code == 303 and signing_in.location.endswith("/login/mfa")


@pytest.mark.parametrize("token", ["", "x" * 5000, "nope", "%00"])
def test_a_bad_link_is_a_page_not_an_error(http, token):
    response = http.get("/password/reset", query_string={"token": token})
    assert response.status_code == 400 and 'id="link-invalid"' in response.get_data(as_text=True)


@pytest.fixture
def app_with_logs(tmp_path, signing_keys_dir, mailbox):
    # a fixture: the migrations configure logging anew, which would unhook caplog in a test
    return make_app(tmp_path, signing_keys_dir, MAIL_SMTP_URL=mailbox.url,
                    MAIL_FROM="id@example.com")


def test_the_token_is_never_logged(app_with_logs, mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    add_user(app_with_logs)
    http = app_with_logs.test_client()
    ask_for_link(http)
    link = link_in(mailbox)
    choose_password(http, link)
    token = link.split("token=")[1]
    assert "password_reset.requested" in caplog.text and "account.password_reset" in caplog.text
    assert token not in caplog.text
    # the link and the notice that followed it are told apart in the audit log
    sent = [line for line in caplog.text.splitlines() if '"event": "notice.sent"' in line]
    assert any('"notice": "password_reset_link"' in line for line in sent)
    assert any('"notice": "password_reset"' in line for line in sent)


@pytest.fixture
def app_without_mail(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir)


def test_without_mail_it_is_not_offered(app_without_mail):
    http = app_without_mail.test_client()
    assert "forgot-password" not in http.get("/login").get_data(as_text=True)
    assert http.get("/password/forgot").status_code == 404
