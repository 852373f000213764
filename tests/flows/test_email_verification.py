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
