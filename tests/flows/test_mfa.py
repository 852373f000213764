"""Two-step sign-in, step-up and the account page through the Flask test client: the rules the
browser tests do not reach (lockout, expiry, prompt=none, confirmations, the admin reset)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from idp.models import Client
from idp.models import LoginSession
from idp.models import TokenFamily
from idp.models import User
from idp.models import db
from idp.models import utcnow
from idp.security import mfa

from ..conftest import add_client
from ..conftest import enroll_totp
from ..conftest import totp_code
from ..helpers import PASSWORD
from ..helpers import csrf_token
from ..helpers import query_of
from .test_login import post_login


def post_code(http, code):
    token = csrf_token(http.get("/login/mfa").get_data(as_text=True))
    return http.post("/login/mfa", data={"otp": code, "csrf_token": token})


def signed_in(http) -> bool:
    return http.get("/account").status_code == 200


def test_password_alone_does_not_sign_in_a_user_with_a_factor(app, http, user):
    secret, _ = enroll_totp(app)
    response = post_login(http, "alice", PASSWORD)
    assert response.status_code == 303 and response.location.endswith("/login/mfa")
    assert not signed_in(http)
    assert post_code(http, totp_code(secret)).status_code == 303
    assert signed_in(http)


def test_the_code_page_needs_a_password_first(http, user):
    assert http.get("/login/mfa").location.endswith("/login")
    token = csrf_token(http.get("/login").get_data(as_text=True))
    response = http.post("/login/mfa", data={"otp": "123456", "csrf_token": token})
    assert response.status_code == 302 and response.location.endswith("/login")


def test_the_password_step_expires(app, http, user):
    secret, _ = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    with http.session_transaction() as session:
        pending = session["mfa_pending"]
        session["mfa_pending"] = {**pending,
                                  "since": pending["since"] - app.config["MFA_PENDING_SECONDS"] - 1}
    assert http.get("/login/mfa").location.endswith("/login")
    token = csrf_token(http.get("/login").get_data(as_text=True))
    late = http.post("/login/mfa", data={"otp": totp_code(secret), "csrf_token": token})
    assert late.location.endswith("/login")
    assert not signed_in(http)


def test_wrong_codes_lock_code_entry(app, http, user):
    secret, _ = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    for _ in range(app.config["MFA_MAX_FAILURES"]):
        assert post_code(http, "000000").status_code == 401
    locked = post_code(http, totp_code(secret))  # even the right code, until the window ends
    assert locked.status_code == 429
    assert "Too many wrong codes" in locked.get_data(as_text=True)
    assert not signed_in(http)


def test_id_token_says_how_the_user_signed_in(app, flow):
    claims = _id_token_claims(app, flow.tokens())
    assert claims["amr"] == ["pwd"] and claims["acr"] == "1"


def test_acr_values_2_steps_up_a_password_only_session(app, flow):
    flow.tokens()  # signed in with a password
    secret, _ = enroll_totp(app)
    response = flow.authorize(acr_values="2")
    assert response.status_code == 302 and response.location.endswith("/login/mfa")
    response = flow.follow(post_code(flow.http, totp_code(secret)))
    assert response.status_code == 302 and "code=" in response.location
    tokens = flow.exchange(query_of(response.location)["code"]).get_json()
    assert _id_token_claims(app, tokens)["acr"] == "2"


def test_step_up_with_prompt_none_is_interaction_required(app, flow, confidential_client):
    flow.tokens()
    with app.app_context():
        client = Client.by_client_id(confidential_client.client_id)
        client.require_mfa = True
        db.session.commit()
    response = flow.authorize(prompt="none")
    assert response.status_code == 302
    assert query_of(response.location)["error"] == "interaction_required"


def test_account_page_needs_sign_in_and_comes_back(http, user):
    response = http.get("/account")
    assert response.status_code == 302 and response.location.endswith("/login")
    response = post_login(http, "alice", PASSWORD)
    assert response.location.endswith("/account")


def _account_form(http, path, **fields):
    token = csrf_token(http.get("/account").get_data(as_text=True))
    return http.post(path, data={"csrf_token": token, **fields})


def test_password_change_checks_and_ends_other_sessions(app, http, user):
    other = app.test_client()
    post_login(other, "alice", PASSWORD)
    post_login(http, "alice", PASSWORD)

    def change(current, new, confirm):
        token = csrf_token(http.get("/account/password").get_data(as_text=True))
        return http.post("/account/password", data={
            "csrf_token": token, "current_password": current, "new_password": new,
            "confirm_password": confirm})

    assert change("wrong", "a brand new passphrase", "a brand new passphrase").status_code == 400
    assert change(PASSWORD, "a brand new passphrase", "different").status_code == 400
    assert change(PASSWORD, "short", "short").status_code == 400
    common = change(PASSWORD, "Password1", "Password1")  # "password1", whatever the case
    assert common.status_code == 400 and "most common" in common.get_data(as_text=True)
    assert signed_in(other)
    done = change(PASSWORD, "a brand new passphrase", "a brand new passphrase")
    assert done.status_code == 200 and "has been changed" in done.get_data(as_text=True)
    assert signed_in(http) and not signed_in(other)
    assert post_login(other, "alice", PASSWORD).status_code == 401
    assert post_login(other, "alice", "a brand new passphrase").status_code == 303


def test_enrollment_from_an_old_session_asks_for_the_password(app, http, user):
    post_login(http, "alice", PASSWORD)
    with app.app_context():
        db.session.execute(db.update(LoginSession).values(
            auth_time=LoginSession.auth_time - app.config["MFA_PENDING_SECONDS"] - 1))
        db.session.commit()
    page = http.get("/account/mfa/totp").get_data(as_text=True)
    assert 'name="password"' in page
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    refused = http.post("/account/mfa/totp", data={
        "csrf_token": csrf_token(page), "otp": totp_code(secret), "password": "wrong"})
    assert refused.status_code == 400
    accepted = http.post("/account/mfa/totp", data={
        "csrf_token": csrf_token(page), "otp": totp_code(secret, 1), "password": PASSWORD})
    assert accepted.status_code == 200 and 'id="recovery-codes"' in accepted.get_data(
        as_text=True)


@pytest.mark.parametrize("action", ["/account/mfa/totp/disable", "/account/mfa/recovery-codes"])
def test_changing_factors_needs_the_password_or_a_code(app, http, user, action):
    secret, codes = enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    post_code(http, totp_code(secret))
    assert _account_form(http, action, password="wrong", otp="000000").status_code == 400
    assert _account_form(http, action, password=PASSWORD).status_code == 200
    with app.app_context():
        user = User.by_username("alice")
        if action.endswith("disable"):
            assert not user.has_totp and mfa.recovery_codes_left(user) == 0
        else:
            assert user.has_totp and not mfa.use_recovery_code(user, codes[0])


def _enroll_from_the_account_page(app, http, cli):
    post_login(http, "alice", PASSWORD)
    page = http.get("/account/mfa/totp").get_data(as_text=True)
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    return http.post("/account/mfa/totp", data={"csrf_token": csrf_token(page),
                                                 "otp": totp_code(secret)})


def _with_a_factor(action):
    def act(app, http, cli):
        secret, _ = enroll_totp(app)
        post_login(http, "alice", PASSWORD)
        post_code(http, totp_code(secret))
        return _account_form(http, action, password=PASSWORD)
    return act


def _operator_reset(app, http, cli):
    enroll_totp(app)
    result = cli.invoke(args=["users", "mfa-reset", "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sessions_ended"] == 1
    return None


@pytest.mark.parametrize("change, reason", [
    (_enroll_from_the_account_page, "mfa_enrolled"),
    (_with_a_factor("/account/mfa/totp/disable"), "mfa_disabled"),
    (_with_a_factor("/account/mfa/recovery-codes"), "recovery_codes_regenerated"),
    (_operator_reset, "factors_removed_by_admin"),
], ids=["enrolment", "turned-off", "new-recovery-codes", "operator-reset"])
def test_a_change_of_factors_signs_out_everywhere_else_and_revokes_the_apps(
        app, http, cli, user, change, reason):
    """REFERENCE checklist 28: a session or an app token that predates the change, obtained
    perhaps with what the change was meant to replace, does not outlive it."""
    elsewhere = app.test_client()
    post_login(elsewhere, "alice", PASSWORD)  # a session from before any factor
    client = add_client(app, grant_types=["authorization_code", "refresh_token"])
    with app.app_context():  # an app's grant, as a code exchange leaves it
        db.session.add(TokenFamily(client_id=client.client_id, user_id=user.id,
                                   scope="openid", expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    response = change(app, http, cli)
    if response is not None:  # the account page: this browser stays signed in, and is told
        assert response.status_code == 200
        assert "signed out everywhere else" in response.get_data(as_text=True)
        assert signed_in(http)
    assert not signed_in(elsewhere)
    with app.app_context():
        family = db.session.execute(db.select(TokenFamily)).scalar_one()
        assert family.revoked_reason == reason


def test_admin_mfa_reset(app, cli, user):
    enroll_totp(app)
    result = cli.invoke(args=["users", "mfa-reset", "alice", "--json"])
    assert result.exit_code == 0 and '"factors_removed": true' in result.output
    with app.app_context():
        assert not User.by_username("alice").has_totp
    assert "had no second factor" in cli.invoke(args=["users", "mfa-reset", "alice"]).output
    assert cli.invoke(args=["users", "mfa-reset", "nobody"]).exit_code != 0


def test_discovery_lists_the_acr_values(http):
    assert http.get("/.well-known/openid-configuration").get_json()[
        "acr_values_supported"] == ["1", "2"]


def _id_token_claims(app, tokens):
    with app.app_context():
        return app.extensions["idp.keys"].verify(tokens["id_token"]).claims


def test_expired_second_step_leaves_no_pending_state(app, http, user):
    enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    with http.session_transaction() as session:
        session["mfa_pending"] = {**session["mfa_pending"],
                                  "since": int(time.time() - timedelta(hours=1).total_seconds())}
    http.get("/login/mfa")
    with http.session_transaction() as session:
        assert "mfa_pending" not in session


def test_a_wrong_encryption_key_is_a_clear_page_not_a_crash(app, http, user):
    enroll_totp(app)
    post_login(http, "alice", PASSWORD)
    app.config["MFA_ENCRYPTION_KEY"] = "not-the-key-" + "q" * 32
    response = post_code(http, "123456")
    assert response.status_code == 503
    assert "cannot be checked right now" in response.get_data(as_text=True)


def test_enrolment_asked_by_a_client_resumes_a_request_with_any_parameter_names(
        app, flow, confidential_client):
    """The recovery codes page links back to the parked request; an `endpoint` parameter in it
    must not turn that page into an error after the factor is saved."""
    with app.app_context():
        Client.by_client_id(confidential_client.client_id).require_mfa = True
        db.session.commit()
    response = flow.authorize(endpoint="x", _method="DELETE")
    assert response.status_code == 302 and response.location.endswith("/login")
    response = flow.login()
    assert response.location.startswith("/authorize?")
    step_up = flow.http.get(response.location)  # no factor yet: enrol one
    assert step_up.status_code == 302 and step_up.location.endswith("/account/mfa/totp")
    page = flow.http.get(step_up.location).get_data(as_text=True)
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    done = flow.http.post("/account/mfa/totp", data={"csrf_token": csrf_token(page),
                                                     "otp": totp_code(secret)})
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert 'id="recovery-codes"' in html
    next_url = html.split('href="/authorize?')[1].split('"')[0].replace("&amp;", "&")
    assert query_of("/authorize?" + next_url).items() >= {"endpoint": "x",
                                                          "_method": "DELETE"}.items()
