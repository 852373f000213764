"""The Device Authorization Grant (RFC 8628) over real HTTP: a device asks for codes and
polls; the user signs in on another browser, types the code and answers."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urljoin

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.models import DeviceAuthorization
from idp.models import db
from idp.models import utcnow

from ..conftest import add_user
from ..helpers import PASSWORD
from ..helpers import csrf_token

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def tv_app(provider):
    """A public client on a device with no browser, allowed refresh tokens."""
    data = provider.idp("clients", "create", "--name", "Living-room TV", "--public",
                        "--grant-type", "device_code", "--grant-type", "refresh_token",
                        "--scope", "openid profile offline_access")
    assert data["grant_types"] == [GRANT, "refresh_token"]
    return data["client_id"]


def ask(provider, client_id, **form) -> requests.Response:
    return requests.post(provider.metadata["device_authorization_endpoint"], timeout=5,
                         data={"client_id": client_id, **form})


def poll(provider, client_id, device_code) -> requests.Response:
    return requests.post(provider.metadata["token_endpoint"], timeout=5, data={
        "grant_type": GRANT, "device_code": device_code, "client_id": client_id})


def signed_in(provider, username="alice") -> requests.Session:
    """The user's browser on their phone or laptop, signed in."""
    browser = requests.Session()
    page = browser.get(urljoin(provider.url, "/login"))
    browser.post(urljoin(provider.url, "/login"), data={
        "username": username, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    return browser


def approve(provider, codes, decision="allow", browser=None) -> requests.Response:
    """The user, on their phone: open the link the device shows, sign in, check the code,
    answer."""
    browser = browser or requests.Session()
    first = browser.get(codes["verification_uri_complete"], allow_redirects=False)
    if first.status_code == 302:  # not signed in yet
        page = browser.get(urljoin(provider.url, "/login"))
        signed_in = browser.post(urljoin(provider.url, "/login"), allow_redirects=False, data={
            "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(page.text)})
        first = browser.get(urljoin(provider.url, signed_in.headers["Location"]))
    assert codes["user_code"] in first.text  # prefilled from the link
    confirm = browser.post(urljoin(provider.url, "/device"), data={
        "user_code": codes["user_code"].lower(), "csrf_token": csrf_token(first.text)})
    assert confirm.status_code == 200 and "Living-room TV" in confirm.text, confirm.text
    return browser.post(urljoin(provider.url, "/device/decide"), data={
        "user_code": codes["user_code"], "decision": decision,
        "csrf_token": csrf_token(confirm.text)})


def test_discovery_names_the_endpoint_and_the_grant(provider):
    assert provider.metadata["device_authorization_endpoint"].endswith("/device_authorization")
    assert GRANT in provider.metadata["grant_types_supported"]


def test_a_device_gets_tokens_once_the_user_allows_it(provider, alice, tv_app):
    asked = ask(provider, tv_app, scope="openid profile offline_access")
    assert asked.status_code == 200 and asked.headers["Cache-Control"] == "no-store"
    codes = asked.json()
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", codes["user_code"])
    assert codes["verification_uri"] == f"{provider.url}/device"
    assert codes["expires_in"] == 600 and codes["interval"] == 5

    pending = poll(provider, tv_app, codes["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    too_fast = poll(provider, tv_app, codes["device_code"])
    assert too_fast.json()["error"] == "slow_down"

    done = approve(provider, codes)
    assert done.status_code == 200 and 'id="device-answered"' in done.text

    tokens = poll(provider, tv_app, codes["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["scope"] == "openid profile offline_access" and body["refresh_token"]
    keys = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    claims = jwt.decode(body["id_token"], keys).claims
    assert claims["sub"] == alice.subject and claims["aud"] == tv_app
    assert claims["auth_time"] and claims["sid"] and "nonce" not in claims
    assert provider.userinfo(body["access_token"]).json()["sub"] == alice.subject

    again = poll(provider, tv_app, codes["device_code"])  # one token response per approval
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    refreshed = requests.post(provider.metadata["token_endpoint"], timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"],
        "client_id": tv_app})
    assert refreshed.status_code == 200 and "id_token" in refreshed.json()


def test_a_refusal_is_access_denied(provider, alice, tv_app):
    codes = ask(provider, tv_app).json()
    assert 'id="device-answered"' in approve(provider, codes, decision="deny").text
    denied = poll(provider, tv_app, codes["device_code"])
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"


def test_an_unanswered_request_expires(provider, tv_app):
    codes = ask(provider, tv_app).json()
    with provider.app.app_context():
        db.session.execute(db.update(DeviceAuthorization).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert poll(provider, tv_app, codes["device_code"]).json()["error"] == "expired_token"


def test_a_device_code_is_its_clients_only(provider, alice, tv_app):
    other = provider.idp("clients", "create", "--name", "Other TV", "--public",
                         "--grant-type", "device_code")["client_id"]
    codes = ask(provider, tv_app).json()
    stolen = poll(provider, other, codes["device_code"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    unknown = poll(provider, tv_app, "made-up")
    assert unknown.json()["error"] == "invalid_grant"


def test_only_clients_registered_for_the_grant_may_ask(provider, web_app):
    refused = requests.post(provider.metadata["device_authorization_endpoint"], timeout=5,
                            auth=(web_app.client_id, web_app.secret))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    unknown = ask(provider, "nobody")  # 401 only where the client used the header
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"


def test_a_scope_the_client_is_not_allowed_is_refused(provider, tv_app):
    refused = ask(provider, tv_app, scope="openid admin")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


def test_wrong_codes_are_limited(provider, alice, tv_app):
    codes = ask(provider, tv_app).json()
    browser = signed_in(provider)
    statuses = []
    for _ in range(provider.app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] + 1):
        form = browser.get(urljoin(provider.url, "/device")).text
        statuses.append(browser.post(urljoin(provider.url, "/device"), data={
            "user_code": "BBBB-BBBB", "csrf_token": csrf_token(form)}).status_code)
    assert statuses[:-1] == [400] * (len(statuses) - 1) and statuses[-1] == 429
    form = browser.get(urljoin(provider.url, "/device")).text
    right = browser.post(urljoin(provider.url, "/device"), data={
        "user_code": codes["user_code"], "csrf_token": csrf_token(form)})
    assert right.status_code == 429  # even the right one, until the window ends


def test_a_client_that_requires_two_step_sign_in_gets_no_password_only_answer(
        provider, alice):
    strict = provider.idp("clients", "create", "--name", "Living-room TV", "--public",
                          "--grant-type", "device_code", "--require-mfa")["client_id"]
    codes = ask(provider, strict).json()
    browser = signed_in(provider)
    form = browser.get(codes["verification_uri_complete"]).text
    refused = browser.post(urljoin(provider.url, "/device"), data={
        "user_code": codes["user_code"], "csrf_token": csrf_token(form)})
    assert refused.status_code == 403 and "two-step sign-in" in refused.text


def test_an_answer_after_the_session_ended_starts_over(provider, alice, tv_app):
    codes = ask(provider, tv_app).json()
    browser = signed_in(provider)
    form = browser.get(codes["verification_uri_complete"]).text
    provider.idp("users", "sign-out", "alice")  # e.g. from another device, meanwhile
    answer = browser.post(urljoin(provider.url, "/device/decide"), allow_redirects=False, data={
        "user_code": codes["user_code"], "decision": "allow", "csrf_token": csrf_token(form)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/device"
    assert poll(provider, tv_app, codes["device_code"]).json()["error"] == \
        "authorization_pending"


@pytest.mark.parametrize("command", [["users", "disable", "alice"],
                                     ["users", "delete", "alice", "--yes"]])
def test_an_approval_dies_with_its_user(provider, alice, tv_app, command):
    codes = ask(provider, tv_app).json()
    approve(provider, codes)
    provider.idp(*command)
    refused = poll(provider, tv_app, codes["device_code"])
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"


def test_an_approval_polled_after_the_codes_expired_is_refused(provider, alice, tv_app):
    codes = ask(provider, tv_app).json()
    approve(provider, codes)
    with provider.app.app_context():
        db.session.execute(db.update(DeviceAuthorization).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert poll(provider, tv_app, codes["device_code"]).json()["error"] == "expired_token"


def test_wrong_codes_from_one_address_are_limited_across_accounts(provider, tv_app):
    limit = provider.app.config["LOGIN_MAX_FAILURES_PER_IP"]
    per_account = provider.app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    statuses = []
    for number in range(limit // per_account + 2):
        add_user(provider.app, f"user{number}")
        browser = signed_in(provider, f"user{number}")
        for _ in range(per_account):
            form = browser.get(urljoin(provider.url, "/device")).text
            statuses.append(browser.post(urljoin(provider.url, "/device"), data={
                "user_code": "BBBB-BBBB", "csrf_token": csrf_token(form)}).status_code)
    assert statuses.count(400) == limit and 429 in statuses
