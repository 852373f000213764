"""Confirming an e-mail address (the `email_verified` claim): a link mailed from the account
page, confirmed with a button; an address the administrator changes is unconfirmed again, its
old links stop working, and the old address is told. Mail goes to a real SMTP server."""

from __future__ import annotations

import json
import re

import pytest

from idp.models import User
from idp.oauth.claims import generate_user_info
from idp.security.notices import duration

from ..conftest import add_user
from ..conftest import make_app
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_login import post_login
from .test_password_reset import ask_for_link
from .test_password_reset import choose_password
from .test_password_reset import link_in as reset_link_in


@pytest.fixture
def app(tmp_path, signing_keys_dir, mailbox):
    return make_app(tmp_path, signing_keys_dir, MAIL_SMTP_URL=mailbox.url,
                    MAIL_FROM="id@example.com")


def verified(app, username="alice") -> bool:
    with app.app_context():
        user = User.by_username(username)
        claims = generate_user_info(user, "openid email")
        assert claims["email_verified"] is user.email_verified
        return user.email_verified


def ask_to_confirm(http):
    page = http.get("/account").get_data(as_text=True)
    response = http.post("/account/email/verify", data={"csrf_token": csrf_token(page)})
    response.close()  # the mail goes out once the response is sent
    return response


def confirmation_link(mailbox) -> str:
    [message] = mailbox.messages
    mailbox.messages.clear()
    assert message["Subject"] == "Confirm your e-mail address"
    link = re.search(r"http://\S+/email/verify\?token=\S+", message.get_content()).group(0)
    return link.removeprefix("http://127.0.0.1:5000")


def confirm(http, path):
    page = http.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    return http.post("/email/verify", data={
        "csrf_token": csrf_token(html),
        "token": re.search(r'name="token" value="([^"]+)"', html).group(1)})


def test_a_user_confirms_their_address_from_the_account_page(app, http, user, mailbox):
    post_login(http, "alice", PASSWORD)
    page = http.get("/account").get_data(as_text=True)
    assert "not confirmed" in page and 'id="verify-email"' in page
    sent = ask_to_confirm(http)
    assert "on its way to alice@example.com" in sent.get_data(as_text=True)
    assert "for 1 day" in sent.get_data(as_text=True)
    path = confirmation_link(mailbox)
    assert http.get(path).status_code == 200 and not verified(app)  # opening it is not enough

    done = confirm(http, path)
    assert done.status_code == 200 and 'id="email-verified"' in done.get_data(as_text=True)
    assert verified(app)
    assert 'id="verify-email"' not in http.get("/account").get_data(as_text=True)
    again = http.get(path)
    assert again.status_code == 400 and 'id="link-invalid"' in again.get_data(as_text=True)


def test_links_asked_for_are_limited(app, http, user, mailbox):
    post_login(http, "alice", PASSWORD)
    assert [ask_to_confirm(http).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_changed_address_is_unconfirmed_and_its_old_links_stop(app, http, cli, user, mailbox):
    post_login(http, "alice", PASSWORD)
    ask_to_confirm(http)
    path = confirmation_link(mailbox)
    result = cli.invoke(args=["users", "update", "alice", "--email", "new@example.com",
                              "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["email_verified"] is False
    [notice] = mailbox.messages
    assert notice["To"] == "alice@example.com"
    assert notice["Subject"] == "Your e-mail address was changed"
    assert http.get(path).status_code == 400


def test_the_administrator_may_vouch_for_an_address(app, cli, mailbox):
    created = cli.invoke(args=["users", "create", "bob", "--email", "bob@example.com", "--name",
                               "Bob", "--email-verified", "--password-stdin", "--json"],
                         input=PASSWORD + "\n")
    assert json.loads(created.output)["email_verified"] is True and verified(app, "bob")
    cli.invoke(args=["users", "update", "bob", "--email-not-verified"])
    assert not verified(app, "bob")
    renamed = cli.invoke(args=["users", "update", "bob", "--name", "Robert", "--json"])
    assert json.loads(renamed.output)["name"] == "Robert" and mailbox.messages == []
    refused = cli.invoke(args=["users", "update", "bob", "--email", "not an address"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output


def test_a_password_reset_by_mail_confirms_the_address(app, http, user, mailbox):
    ask_for_link(http)
    choose_password(http, reset_link_in(mailbox))
    assert verified(app)


@pytest.fixture
def app_without_mail(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir)


def test_without_mail_nothing_is_offered(app_without_mail):
    add_user(app_without_mail)
    http = app_without_mail.test_client()
    post_login(http, "alice", PASSWORD)
    assert 'id="verify-email"' not in http.get("/account").get_data(as_text=True)
    assert http.get("/email/verify?token=x").status_code == 404


@pytest.mark.parametrize("seconds, words", [
    (60, "1 minute"), (1800, "30 minutes"), (3600, "1 hour"), (7200, "2 hours"),
    (86400, "1 day"), (90, "1 minute"), (5400, "90 minutes"),
])
def test_durations_read_as_words(seconds, words):
    assert duration(seconds) == words


def ask_to_change(http, address, **confirmation):
    page = http.get("/account").get_data(as_text=True)
    response = http.post("/account/email", data={"csrf_token": csrf_token(page),
                                                  "email": address, **confirmation})
    response.close()
    return response


def address_of(app, username="alice") -> str:
    with app.app_context():
        return User.by_username(username).email


def test_a_user_changes_their_address_once_the_new_one_answers(app, http, user, mailbox):
    """Checklist 29: the password first; the new address replaces the old only from a link
    mailed to it; the old address hears of the request and of the change."""
    post_login(http, "alice", PASSWORD)
    asked = ask_to_change(http, "alice@new.example", password=PASSWORD)
    assert asked.status_code == 200
    assert "on its way to alice@new.example" in asked.get_data(as_text=True)
    warning, link_mail = sorted(mailbox.messages, key=lambda m: m["To"])
    mailbox.messages.clear()
    assert warning["To"] == "alice@example.com" and "asked for" in warning["Subject"]
    assert link_mail["To"] == "alice@new.example"
    path = re.search(r"http://\S+/email/verify\?token=\S+", link_mail.get_content()).group(0)
    path = path.removeprefix("http://127.0.0.1:5000")
    assert address_of(app) == "alice@example.com"  # nothing changes until the link is used
    assert "alice@new.example" in http.get(path).get_data(as_text=True)

    done = confirm(http, path)
    done.close()  # the notice goes out once the response is sent
    assert done.status_code == 200
    assert address_of(app) == "alice@new.example" and verified(app)
    [told] = mailbox.messages
    assert told["To"] == "alice@example.com"
    assert told["Subject"] == "Your e-mail address was changed"
    assert confirm_again_fails(http, path)


def confirm_again_fails(http, path) -> bool:
    return http.get(path).status_code == 400


@pytest.mark.parametrize("confirmation", [{}, {"password": "wrong"}, {"otp": "123456"}])
def test_changing_the_address_needs_the_password(app, http, user, mailbox, confirmation):
    post_login(http, "alice", PASSWORD)
    refused = ask_to_change(http, "mallory@evil.example", **confirmation)
    assert refused.status_code == 400 and "not right" in refused.get_data(as_text=True)
    assert mailbox.messages == [] and address_of(app) == "alice@example.com"


@pytest.mark.parametrize("address", ["", "no-at-sign", "two words@example.com",
                                     "a@b\x07", "x" * 310 + "@example.com"])
def test_a_bad_address_is_a_clear_error(app, http, user, mailbox, address):
    post_login(http, "alice", PASSWORD)
    refused = ask_to_change(http, address, password=PASSWORD)
    assert refused.status_code == 400 and 'id="account-error"' in refused.get_data(as_text=True)
    assert mailbox.messages == []


def test_a_pending_change_dies_with_a_new_password(app, http, user, mailbox):
    """Whoever asked for the change while holding the password loses it with the password."""
    post_login(http, "alice", PASSWORD)
    ask_to_change(http, "mallory@evil.example", password=PASSWORD)
    link_mail = next(m for m in mailbox.messages if m["To"] == "mallory@evil.example")
    path = re.search(r"http://\S+/email/verify\?token=\S+", link_mail.get_content()).group(0)
    page = http.get("/account/password").get_data(as_text=True)
    http.post("/account/password", data={
        "csrf_token": csrf_token(page), "current_password": PASSWORD,
        "new_password": "a brand new passphrase", "confirm_password": "a brand new passphrase"})
    assert confirm_again_fails(app.test_client(), path.removeprefix("http://127.0.0.1:5000"))
    assert address_of(app) == "alice@example.com"


def test_without_mail_a_new_address_is_taken_at_once_unconfirmed(app_without_mail):
    add_user(app_without_mail, email_verified=True)
    http = app_without_mail.test_client()
    post_login(http, "alice", PASSWORD)
    changed = ask_to_change(http, "alice@new.example", password=PASSWORD)
    assert changed.status_code == 200 and "not confirmed" in changed.get_data(as_text=True)
    assert address_of(app_without_mail) == "alice@new.example"
    assert not verified(app_without_mail)


@pytest.mark.parametrize("name, status", [("Alice Liddell", 200), ("", 400),
                                          ("A\nB", 400), ("x" * 201, 400)])
def test_a_user_changes_their_name(app, http, user, name, status):
    post_login(http, "alice", PASSWORD)
    page = http.get("/account").get_data(as_text=True)
    response = http.post("/account/name", data={"csrf_token": csrf_token(page), "name": name})
    assert response.status_code == status
    with app.app_context():
        assert User.by_username("alice").name == ("Alice Liddell" if status == 200 else "Alice")
