"""The sign-in page: generic errors, CSRF, session renewal, cookie flags, throttling."""

import logging

import pytest
from argon2 import PasswordHasher

from idp.models import RateLimitCounter
from idp.models import User
from idp.models import db

from ..conftest import add_user
from ..conftest import make_app
from ..helpers import PASSWORD
from ..helpers import csrf_token


def post_login(http, username, password, token=None):
    if token is None:
        token = csrf_token(http.get("/login").get_data(as_text=True))
    return http.post("/login", data={"username": username, "password": password,
                                     "csrf_token": token})


def test_login_page_has_named_fields_and_csrf(http):
    page = http.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="username"' in html and 'name="password"' in html
    assert 'type="submit"' in html and csrf_token(html)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_unknown_user_and_wrong_password_get_the_same_message(http, user):
    wrong = post_login(http, "alice", "not the password")
    unknown = post_login(http, "mallory", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid username or password." in wrong.get_data(as_text=True)
    assert "Invalid username or password." in unknown.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(http, user):
    response = http.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    with http.session_transaction() as session:
        assert "sid" not in session


def test_login_replaces_the_session(http, user):
    http.get("/login")
    with http.session_transaction() as session:
        before = dict(session)
    response = post_login(http, "alice", PASSWORD)
    assert response.status_code == 303
    with http.session_transaction() as session:
        assert session["sid"] and session.get("csrf_token") != before.get("csrf_token")


def test_username_is_case_insensitive(http, user):
    assert post_login(http, "ALICE", PASSWORD).status_code == 303


def test_session_cookie_flags(http, user):
    response = post_login(http, "alice", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_is_secure_with_https_issuer(tmp_path, signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com")
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("path", ["/login", "/.well-known/openid-configuration",
                                  "/jwks.json", "/health/live", "/nowhere"])
def test_an_https_issuer_sends_hsts_on_every_response(tmp_path, signing_keys_dir, path):
    """ASVS 3.4.1: a browser that once reached the provider never tries it over http again,
    where a network attacker could answer in its place."""
    app = make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com")
    response = app.test_client().get(path, base_url="https://id.example.com")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("issuer, seconds", [("http://127.0.0.1:5000", 31536000),
                                             ("https://id.example.com", 0)])
def test_no_hsts_over_http_or_when_a_proxy_sends_it(tmp_path, signing_keys_dir, issuer,
                                                    seconds):
    app = make_app(tmp_path, signing_keys_dir, issuer=issuer, HSTS_SECONDS=seconds)
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers


def test_disabled_user_cannot_sign_in(app, http):
    add_user(app, "carol", disabled=True)
    response = post_login(http, "carol", PASSWORD)
    assert response.status_code == 401


def test_repeated_failures_lock_the_account_for_the_window(app, http, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        assert post_login(http, "alice", "wrong password").status_code == 401
    # now even the right password is refused until the window passes
    response = post_login(http, "alice", PASSWORD)
    assert response.status_code == 429


def test_successful_login_resets_the_account_counter(app, http, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] - 1):
        post_login(http, "alice", "wrong password")
    assert post_login(http, "alice", PASSWORD).status_code == 303
    assert post_login(http, "alice", "wrong password").status_code == 401


def test_successful_sign_ins_do_not_use_up_the_address_limit(app, http, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_IP"] + 5):
        assert post_login(http, "alice", PASSWORD).status_code == 303


def test_failures_from_one_address_across_accounts_are_limited(app, http, user):
    for n in range(app.config["LOGIN_MAX_FAILURES_PER_IP"]):
        assert post_login(http, f"user{n}", "guess").status_code == 401
    assert post_login(http, "alice", PASSWORD).status_code == 429


def test_passwords_never_reach_the_log(http, user, caplog):
    caplog.set_level(logging.DEBUG)
    post_login(http, "alice", "a wrong secret guess")
    post_login(http, "alice", PASSWORD)
    assert "a wrong secret guess" not in caplog.text
    assert PASSWORD not in caplog.text
    assert "login.failed" in caplog.text and "login.succeeded" in caplog.text


def test_home_page_shows_the_signed_in_user(http, user):
    post_login(http, "alice", PASSWORD)
    assert "alice" in http.get("/").get_data(as_text=True)


def test_unknown_path_is_an_error_page(http):
    response = http.get("/no/such/page")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_consent_without_pending_request_is_an_error_page(http, user):
    post_login(http, "alice", PASSWORD)
    token = csrf_token(http.get("/logout").get_data(as_text=True))
    response = http.post("/consent", data={"decision": "allow", "csrf_token": token})
    assert response.status_code == 400


def test_a_common_password_set_before_the_list_still_signs_in_and_is_rehashed(app, http, user):
    """The policy applies when a password is set, never at sign-in: a stricter list must not
    lock out a user whose password is upgraded to new argon2 parameters on the way in."""
    old_hash = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1).hash("password1")
    with app.app_context():
        db.session.execute(db.update(User).values(password_hash=old_hash))
        db.session.commit()
    assert post_login(http, "alice", "password1").status_code == 303
    with app.app_context():
        new_hash = db.session.execute(db.select(User.password_hash)).scalar_one()
    assert new_hash != old_hash and "m=8192" in new_hash


def test_a_rehash_keeps_what_was_verified_so_the_next_sign_in_still_works(app, http, user):
    """verify_password compares the first 256 characters; typing more still signs in, and the
    upgraded hash must be of those 256, or the real password would stop working."""
    password = "p" * 256
    old_hash = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1).hash(password)
    with app.app_context():
        db.session.execute(db.update(User).values(password_hash=old_hash))
        db.session.commit()
    assert post_login(http, "alice", password + " and more").status_code == 303
    assert post_login(app.test_client(), "alice", password).status_code == 303


def test_a_name_that_grows_in_lower_case_still_fits_the_attempt_counter(app, http, user):
    """Names are cut to 150 characters; "İ" is two characters in lower case, so a cut taken
    before lower-casing gave a 311-character counter key, over its 255-character column (a
    500 on PostgreSQL)."""
    assert post_login(http, "İ" * 150, "wrong password").status_code == 401
    with app.app_context():
        keys = db.session.execute(db.select(RateLimitCounter.key)).scalars().all()
    assert keys and all(len(key) <= 255 for key in keys)
