"""OpenID Connect Back-Channel Logout 1.0 over real HTTP: the ID token carries the session's
`sid`, and when the session ends, each client that got an ID token in it and registered a
back-channel logout URI receives a logout token it can check with the JWKS alone."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.models import Client
from idp.models import LoginSession
from idp.models import db
from idp.models import utcnow

from ..conftest import add_user
from ..conftest import free_port
from ..helpers import PASSWORD
from ..helpers import csrf_token
from .test_oidc_client import CALLBACK

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A relying party's back-channel logout endpoint on 127.0.0.1, keeping what it receives.
    With `together`, it answers only once that many calls are waiting at the same time."""

    def __init__(self, status: int = 200, together: int = 1):
        self.received: list[dict] = []
        self.arrived = threading.Event()
        barrier = threading.Barrier(together, timeout=4)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                try:
                    barrier.wait()
                    answer = status
                except threading.BrokenBarrierError:  # the calls came one after the other
                    answer = 503
                receiver.received.append({"content_type": self.headers["Content-Type"],
                                          "cache_control": self.headers.get("Cache-Control"),
                                          "form": parse_qs(body), "answer": answer})
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int = 1, seconds: float = 10) -> list[dict]:
        """What has arrived once `count` calls have (the provider calls after its response)."""
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            self.arrived.wait(0.05)
            self.arrived.clear()
        return self.received


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def alice(provider):
    return add_user(provider.app)


def register(provider, name: str, backchannel_uri: str | None):
    extra = ["--backchannel-logout-uri", backchannel_uri] if backchannel_uri else []
    return provider.register(name, "--redirect-uri", CALLBACK, *extra)


def sign_in_to(provider, browser: requests.Session, client, scope="openid profile") -> dict:
    """The code flow in `browser`, signing in only if it has no session yet."""
    rp = OAuth2Session(client.client_id, client.secret, scope=scope, redirect_uri=CALLBACK,
                       code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(provider.metadata["authorization_endpoint"],
                                         code_verifier=verifier, nonce=secrets.token_urlsafe(8))
    response = browser.get(url, allow_redirects=False)
    if response.headers.get("Location") == "/login":
        page = browser.get(urljoin(provider.url, "/login"))
        response = browser.post(urljoin(provider.url, "/login"), allow_redirects=False, data={
            "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(page.text)})
        response = browser.get(urljoin(provider.url, response.headers["Location"]),
                               allow_redirects=False)
    if response.status_code == 200:  # the consent page
        response = browser.post(urljoin(provider.url, "/consent"), allow_redirects=False,
                                data={"decision": "allow", "csrf_token": csrf_token(response.text)})
        response = browser.get(urljoin(provider.url, response.headers["Location"]),
                               allow_redirects=False)
    return rp.fetch_token(provider.metadata["token_endpoint"],
                          authorization_response=response.headers["Location"],
                          code_verifier=verifier)


def sign_out(provider, browser: requests.Session) -> None:
    page = browser.get(urljoin(provider.url, "/logout"))
    done = browser.post(urljoin(provider.url, "/logout"),
                        data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200


def verified(provider, token: str) -> jwt.Token:
    jwks = KeySet.import_key_set(requests.get(provider.metadata["jwks_uri"], timeout=5).json())
    return jwt.decode(token, jwks, algorithms=["RS256"])


def test_discovery_announces_back_channel_logout_with_sessions(provider):
    assert provider.metadata["backchannel_logout_supported"] is True
    assert provider.metadata["backchannel_logout_session_supported"] is True


def test_signing_out_sends_each_client_a_logout_token_for_the_session(
        provider, alice, receiver):
    app = register(provider, "Web App", receiver.url)
    browser = requests.Session()
    tokens = sign_in_to(provider, browser, app)
    id_token = verified(provider, tokens["id_token"]).claims
    assert id_token["sid"] and len(id_token["sid"]) >= 32

    sign_out(provider, browser)
    [call] = receiver.wait(1)
    assert call["content_type"] == "application/x-www-form-urlencoded"
    logout_token = verified(provider, call["form"]["logout_token"][0])
    claims = logout_token.claims
    assert logout_token.header["typ"] == "logout+jwt"
    assert claims["iss"] == provider.metadata["issuer"] and claims["aud"] == app.client_id
    assert claims["sub"] == alice.subject and claims["sid"] == id_token["sid"]
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert claims["jti"] and 0 < claims["exp"] - claims["iat"] <= 120
    assert claims["iat"] <= time.time() + 5


def test_a_pairwise_client_is_told_the_sub_it_knows_the_user_by(provider, alice, receiver):
    app = provider.register("Pairwise App", "--redirect-uri", CALLBACK,
                            "--backchannel-logout-uri", receiver.url, "--subject-type", "pairwise")
    browser = requests.Session()
    id_token = verified(provider, sign_in_to(provider, browser, app)["id_token"]).claims
    assert id_token["sub"] != alice.subject

    sign_out(provider, browser)
    [call] = receiver.wait(1)
    assert verified(provider, call["form"]["logout_token"][0]).claims["sub"] == id_token["sub"]


def test_only_clients_that_got_an_id_token_in_the_session_are_told(
        provider, alice, receiver):
    told = register(provider, "Told", receiver.url)
    elsewhere = register(provider, "Signed in elsewhere", receiver.url)
    silent = register(provider, "No back-channel URI", None)
    browser, other_browser = requests.Session(), requests.Session()
    sign_in_to(provider, browser, told)
    sign_in_to(provider, browser, silent)
    sign_in_to(provider, other_browser, elsewhere)

    sign_out(provider, browser)
    received = receiver.wait(1)
    time.sleep(0.5)  # room for a wrong second call to arrive
    assert [verified(provider, r["form"]["logout_token"][0]).claims["aud"]
            for r in received] == [told.client_id]


def test_signing_in_again_in_the_same_browser_keeps_the_sid_and_tells_nobody(
        provider, alice, receiver):
    app = register(provider, "Web App", receiver.url)
    browser = requests.Session()
    first = verified(provider, sign_in_to(provider, browser, app)["id_token"]).claims
    page = browser.get(urljoin(provider.url, "/login"))
    browser.post(urljoin(provider.url, "/login"), data={
        "username": "alice", "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    second = verified(provider, sign_in_to(provider, browser, app)["id_token"]).claims
    assert second["sid"] == first["sid"] and second["auth_time"] >= first["auth_time"]
    assert receiver.received == []


def test_a_client_that_does_not_answer_misses_the_call_not_the_logout(provider, alice, caplog):
    app = register(provider, "Gone", f"http://127.0.0.1:{free_port()}/logout")
    browser = requests.Session()
    sign_in_to(provider, browser, app)
    sign_out(provider, browser)
    assert browser.get(urljoin(provider.url, "/account"), allow_redirects=False).status_code == 302
    deadline = time.monotonic() + 10
    while "logout.backchannel_failed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "logout.backchannel_failed" in caplog.text


@pytest.mark.parametrize("command", [["users", "sign-out", "alice"],
                                     ["users", "delete", "alice", "--yes"]])
def test_an_administrator_signing_a_user_out_tells_the_clients(provider, alice, receiver,
                                                               command):
    app = register(provider, "Web App", receiver.url)
    sign_in_to(provider, requests.Session(), app)
    provider.idp(*command)
    [call] = receiver.wait(1)  # sent by the command itself, once it has committed
    assert verified(provider, call["form"]["logout_token"][0]).claims["sub"] == alice.subject


@pytest.mark.parametrize("uri, message", [
    ("http://rp.example.com/logout", "http on a non-loopback host"),
    ("https://rp.example.com/logout#x", "fragment"),
    ("com.example.app:/logout", "not an https URL"),
])
def test_the_cli_refuses_a_back_channel_uri_that_is_not_https(provider, uri, message):
    result = provider.app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "X", "--redirect-uri", CALLBACK,
        "--backchannel-logout-uri", uri])
    assert result.exit_code != 0 and message in result.output


def test_the_cli_sets_and_removes_the_back_channel_uri(provider):
    app = register(provider, "Web App", "https://rp.example.com/logout")
    shown = provider.idp("clients", "show", app.client_id)
    assert shown["backchannel_logout_uri"] == "https://rp.example.com/logout"
    updated = provider.idp("clients", "update", app.client_id, "--backchannel-logout-uri", "")
    assert updated["backchannel_logout_uri"] is None


def test_several_clients_are_called_at_once(provider, alice, caplog):
    """A sync worker busy past gunicorn's timeout is killed: clients that do not answer must
    cost one timeout, not one each. Here each call is answered only when all three wait."""
    receiver = Receiver(together=3)
    try:
        apps = [register(provider, f"App {n}", receiver.url) for n in range(3)]
        browser = requests.Session()
        for app in apps:
            sign_in_to(provider, browser, app)
        sign_out(provider, browser)
        received = receiver.wait(3)
        assert [call["answer"] for call in received] == [200, 200, 200]
        assert sorted(verified(provider, call["form"]["logout_token"][0]).claims["aud"]
                      for call in received) == sorted(app.client_id for app in apps)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_session_that_timed_out_is_told_about_when_its_browser_returns(
        provider, alice, receiver):
    app = register(provider, "Web App", receiver.url)
    browser = requests.Session()
    sid = verified(provider, sign_in_to(provider, browser, app)["id_token"]).claims["sid"]
    with provider.app.app_context():
        idle = timedelta(seconds=provider.app.config["SESSION_IDLE_TIMEOUT_SECONDS"] + 1)
        db.session.execute(db.update(LoginSession).values(last_seen_at=utcnow() - idle))
        db.session.commit()
    assert browser.get(urljoin(provider.url, "/account"), allow_redirects=False
                       ).status_code == 302  # over: sign in again
    [call] = receiver.wait(1)
    assert verified(provider, call["form"]["logout_token"][0]).claims["sid"] == sid


def self_registered(provider, name: str, backchannel_uri: str):
    """A client as /register makes one with the initial access token: its back-channel URI
    is its own claim, called only the guarded way (outbound.post_form_outside)."""
    client = register(provider, name, backchannel_uri)
    with provider.app.app_context():
        db.session.execute(db.update(Client).filter_by(client_id=client.client_id)
                           .values(self_registered=True))
        db.session.commit()
    return client


def wait_for(caplog, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("live_config", [{"OUTBOUND_PRIVATE_NETWORKS": "127.0.0.1/32"}])
def test_a_self_registered_client_is_told_over_the_guarded_fetch(provider, alice, documents):
    app = self_registered(provider, "Registered itself", documents.url("/logout"))
    browser = requests.Session()
    sign_in_to(provider, browser, app)
    sign_out(provider, browser)
    deadline = time.monotonic() + 10
    while not documents.posts and time.monotonic() < deadline:
        time.sleep(0.05)
    [(path, content_type, body)] = documents.posts
    assert path == "/logout" and content_type == "application/x-www-form-urlencoded"
    claims = verified(provider, parse_qs(body)["logout_token"][0]).claims
    assert claims["aud"] == app.client_id and claims["sub"] == alice.subject


def test_a_self_registered_client_cannot_make_the_provider_call_inside(provider, alice, receiver,
                                                                       documents, caplog):
    """Its URI may lead only to public addresses over https: neither the loopback receiver
    (http) nor an https server on loopback (not allowed by OUTBOUND_PRIVATE_NETWORKS) is
    called, and the refusal is audited."""
    for uri, reason in ((receiver.url, "must be https"),
                        (documents.url("/logout"), "not on the public internet")):
        app = self_registered(provider, "Registered itself", uri)
        browser = requests.Session()
        sign_in_to(provider, browser, app)
        sign_out(provider, browser)
        wait_for(caplog, reason)
        assert "logout.backchannel_failed" in caplog.text and reason in caplog.text
    assert receiver.received == [] and documents.posts == []
