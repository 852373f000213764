"""A user deletes their own account from the account page, where the operator allows it
(ACCOUNT_SELF_DELETION): confirmed with the password or a code and a ticked box; everything
kept for them goes, every session ends, and the old address is told."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.models import User
from idp.models import db

from ..conftest import add_user
from ..conftest import make_app
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_login import post_login


@pytest.fixture
def app(tmp_path, signing_keys_dir, mailbox):
    return make_app(tmp_path, signing_keys_dir, ACCOUNT_SELF_DELETION=True,
                    MAIL_SMTP_URL=mailbox.url, MAIL_FROM="id@example.com")


def delete(http, **form):
    token = csrf_token(http.get("/account").get_data(as_text=True))
    response = http.post("/account/delete", data={"csrf_token": token, **form})
    response.close()  # the notice goes out once the response is sent
    return response


def rows_naming(app, user_id) -> int:
    with app.app_context():
        return sum(db.session.execute(sa.select(sa.func.count()).select_from(table)
                                      .where(table.c.user_id == user_id)).scalar()
                   for table in db.metadata.sorted_tables if "user_id" in table.c)


def test_a_user_deletes_their_account(app, http, user, mailbox):
    elsewhere = app.test_client()
    post_login(elsewhere, "alice", PASSWORD)
    post_login(http, "alice", PASSWORD)
    assert 'id="delete-account"' in http.get("/account").get_data(as_text=True)
    done = delete(http, confirm="yes", password=PASSWORD)
    assert done.status_code == 200 and 'id="account-deleted"' in done.get_data(as_text=True)
    with app.app_context():
        assert User.by_username("alice") is None
    assert rows_naming(app, user.id) == 0
    assert http.get("/account").status_code == 302 and elsewhere.get("/account").status_code == 302
    [notice] = mailbox.messages
    assert notice["To"] == "alice@example.com" and notice["Subject"] == "Your account was deleted"


@pytest.mark.parametrize("form", [{"password": PASSWORD}, {"confirm": "yes"},
                                  {"confirm": "yes", "password": "wrong"}])
def test_nothing_is_deleted_without_the_box_and_the_password(app, http, user, mailbox, form):
    post_login(http, "alice", PASSWORD)
    assert delete(http, **form).status_code == 400
    with app.app_context():
        assert User.by_username("alice") is not None
    assert mailbox.messages == []


def test_by_default_only_an_operator_deletes_accounts(tmp_path, signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir)
    add_user(app)
    http = app.test_client()
    post_login(http, "alice", PASSWORD)
    assert 'id="delete-account"' not in http.get("/account").get_data(as_text=True)
    assert delete(http, confirm="yes", password=PASSWORD).status_code == 404
    with app.app_context():
        assert User.by_username("alice") is not None
