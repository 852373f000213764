"""E-mail notices after a change to how a user signs in (ASVS 6.3.7, REFERENCE checklist 27),
received by a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest

from ..conftest import add_user
from ..conftest import enroll_totp
from ..conftest import free_port
from ..conftest import make_app
from ..conftest import totp_code
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_login import post_login
from .test_mfa import _account_form
from .test_mfa import post_code


@pytest.fixture
def app(tmp_path, signing_keys_dir, mailbox):
    return make_app(tmp_path, signing_keys_dir, MAIL_SMTP_URL=mailbox.url,
                    MAIL_FROM="Example ID <id@example.com>")


NEW_PASSWORD = "a brand new passphrase"


def change_password(http, current=PASSWORD):
    post_login(http, "alice", PASSWORD)
    token = csrf_token(http.get("/account/password").get_data(as_text=True))
    return http.post("/account/password", data={
        "csrf_token": token, "current_password": current, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD})


def sent(response):
    """Close the response, as gunicorn does once it has sent it: the notice goes out then."""
    response.close()
    return response


def the_notice(mailbox) -> dict:
    """The one message received, as what a test looks at."""
    assert len(mailbox.messages) == 1, [m["Subject"] for m in mailbox.messages]
    message = mailbox.messages.pop()
    return {"to": message["To"], "from": message["From"], "subject": message["Subject"],
            "body": message.get_content()}


def test_a_password_change_is_notified_without_the_password(app, http, user, mailbox):
    response = change_password(http)
    assert mailbox.messages == []  # a slow mail server never delays the answer
    sent(response)
    notice = the_notice(mailbox)
    assert notice["to"] == "alice@example.com"
    assert notice["from"] == "Example ID <id@example.com>"
    assert notice["subject"] == "Your password was changed"
    assert "Account: alice" in notice["body"] and "from the address 127.0.0.1" in notice["body"]
    assert "If this was not you" in notice["body"]
    assert PASSWORD not in notice["body"] and NEW_PASSWORD not in notice["body"]


def test_a_failed_password_change_is_not_notified(app, http, user, mailbox):
    assert sent(change_password(http, current="wrong")).status_code == 400
    assert mailbox.messages == []


def test_turning_two_step_sign_in_on_is_notified(app, http, user, mailbox):
    post_login(http, "alice", PASSWORD)
    page = http.get("/account/mfa/totp").get_data(as_text=True)
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    sent(http.post("/account/mfa/totp",
                   data={"csrf_token": csrf_token(page), "otp": totp_code(secret)}))
    assert the_notice(mailbox)["subject"] == "Two-step sign-in is on"


@pytest.mark.parametrize("action, subject", [
    ("/account/mfa/recovery-codes", "New recovery codes"),
    ("/account/mfa/totp/disable", "Two-step sign-in is off"),
])
def test_changes_to_the_factors_are_notified(app, http, user, mailbox, action, subject):
    secret, _ = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    post_code(http, totp_code(secret))
    sent(_account_form(http, action, password="wrong"))
    assert mailbox.messages == []  # a refused change is no change
    sent(_account_form(http, action, password=PASSWORD))
    assert the_notice(mailbox)["subject"] == subject


def test_signing_in_with_a_recovery_code_is_notified_and_with_a_totp_code_is_not(
        app, http, user, mailbox):
    secret, codes = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    sent(post_code(http, totp_code(secret)))
    assert mailbox.messages == []
    other = app.test_client()
    post_login(other, "alice", PASSWORD)
    sent(post_code(other, codes[0]))
    notice = the_notice(mailbox)
    assert notice["subject"] == "A recovery code was used"
    assert codes[0] not in notice["body"]


def test_admin_changes_are_notified(app, cli, user, mailbox):
    result = cli.invoke(args=["users", "set-password", "alice", "--password-stdin"],
                        input="another long passphrase\n")
    assert result.exit_code == 0, result.output
    notice = the_notice(mailbox)
    assert notice["subject"] == "Your password was reset" and "from the address" not in (
        notice["body"])
    cli.invoke(args=["users", "mfa-reset", "alice"])
    assert mailbox.messages == []  # alice had no second factor: nothing was removed
    enroll_totp(app)
    cli.invoke(args=["users", "mfa-reset", "alice"])
    assert the_notice(mailbox)["subject"] == "Two-step sign-in was removed"


@pytest.fixture
def app_with_its_mail_server_down(tmp_path, signing_keys_dir):
    # a fixture: the migrations configure logging anew, which would unhook caplog in a test
    return make_app(tmp_path, signing_keys_dir, MAIL_SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
                    MAIL_FROM="id@example.com")


def test_a_mail_server_that_is_down_loses_the_notice_not_the_change(
        app_with_its_mail_server_down, caplog):
    app = app_with_its_mail_server_down
    caplog.set_level(logging.INFO)
    add_user(app)
    done = sent(change_password(app.test_client()))
    assert done.status_code == 200 and "has been changed" in done.get_data(as_text=True)
    failed = next(line for line in caplog.text.splitlines() if '"notice.failed"' in line)
    assert "ConnectionRefusedError" in failed and '"ip": "127.0.0.1"' in failed
    assert post_login(app.test_client(), "alice", NEW_PASSWORD).status_code == 303


@pytest.fixture
def app_without_a_mail_server(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir)


def test_without_a_mail_server_nothing_is_sent_and_nothing_fails(
        app_without_a_mail_server, caplog):
    app = app_without_a_mail_server
    caplog.set_level(logging.INFO)
    add_user(app)
    assert sent(change_password(app.test_client())).status_code == 200
    assert "account.password_changed" in caplog.text and "notice." not in caplog.text


def test_wrong_passwords_that_pause_sign_in_are_told_once(app, http, user, mailbox):
    """ASVS 6.3.5: someone guessing the password is no secret from the owner."""
    limit = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    for _ in range(limit + 3):
        response = sent(post_login(http, "alice", "Tr0ub4dor&3"))
    assert response.status_code == 429
    notice = the_notice(mailbox)  # once, at the first refusal of the window
    assert notice["subject"] == "Sign-in to your account is paused"
    assert "Tr0ub4dor&3" not in notice["body"]


def test_a_paused_unknown_name_mails_nobody(app, http, user, mailbox):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] + 1):
        sent(post_login(http, "nobody", "wrong password"))
    assert mailbox.messages == []


def test_a_sign_in_after_several_wrong_passwords_is_told(app, http, user, mailbox):
    for _ in range(3):
        sent(post_login(http, "alice", "wrong password"))
    assert mailbox.messages == []
    sent(post_login(http, "alice", PASSWORD))
    assert the_notice(mailbox)["subject"] == "A sign-in after wrong passwords"


def test_one_mistyped_password_is_not(app, http, user, mailbox):
    sent(post_login(http, "alice", "wrong password"))
    sent(post_login(http, "alice", PASSWORD))
    assert mailbox.messages == []


def test_the_right_password_then_wrong_codes_is_told(app, http, user, mailbox):
    """A partly successful sign-in: the password is likely known to someone."""
    secret, _ = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    for _ in range(app.config["MFA_MAX_FAILURES"] + 2):
        response = sent(post_code(http, "000000" if totp_code(secret) != "000000" else "111111"))
    assert response.status_code == 429
    notice = the_notice(mailbox)
    assert notice["subject"] == "Your password was used, then wrong codes"
    assert "change it now" in notice["body"]
