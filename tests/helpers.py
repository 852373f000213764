"""Test helpers: PKCE pairs, form tokens, and a browserless walk through the code flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urlsplit

PASSWORD = "correct horse battery staple"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class _InputParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and "name" in attrs:
            self.inputs[attrs["name"]] = attrs.get("value", "")


def form_inputs(html: str) -> dict[str, str]:
    parser = _InputParser()
    parser.feed(html)
    return parser.inputs


def csrf_token(html: str) -> str:
    return form_inputs(html)["csrf_token"]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def wrong_secret(secret: str) -> str:
    """The secret with its first character changed: as long, never equal to it."""
    return ("y" if secret[0] == "x" else "x") + secret[1:]


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def page_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


class Browserless:
    """The steps a browser takes in the code flow, through the Flask test client."""

    def __init__(self, http, client, username="alice", password=PASSWORD):
        self.http = http
        self.client = client
        self.secret = client.secret
        self.username = username
        self.password = password
        self.verifier, self.challenge = pkce_pair()

    def authorize_params(self, **overrides) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uris[0],
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.http.get("/authorize", query_string=self.authorize_params(**overrides))

    def login(self, username=None, password=None):
        page = self.http.get("/login")
        return self.http.post("/login", data={
            "username": username or self.username,
            "password": password or self.password,
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        })

    def consent(self, consent_page, decision="allow"):
        token = csrf_token(consent_page.get_data(as_text=True))
        return self.http.post("/consent", data={"decision": decision, "csrf_token": token})

    def follow(self, response):
        """Follow redirects inside the provider; stop at one that leaves it."""
        while response.status_code in (302, 303) and response.location.startswith(("/", "http://127.0.0.1:5000/")):
            response = self.http.get(response.location)
        return response

    def code_response(self, decision="allow", **overrides):
        """Run /authorize to the redirect back to the client, signing in and consenting."""
        response = self.authorize(**overrides)
        if response.status_code == 302 and "/login" in response.location:
            response = self.follow(self.login())
        if response.status_code == 200 and "decision" in response.get_data(as_text=True):
            response = self.consent(response, decision)
            response = self.follow(response)
        return response

    def code(self, **overrides) -> str:
        response = self.code_response(**overrides)
        assert response.status_code == 302, response.get_data(as_text=True)
        return query_of(response.location)["code"]

    def exchange(self, code, verifier=None, redirect_uri=None, auth=True, headers=None,
                 **extra):
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.client.redirect_uris[0],
            "code_verifier": verifier or self.verifier,
            **extra,
        }
        headers = {**(basic_auth(self.client.client_id, self.secret)
                      if auth and self.secret else {}), **(headers or {})}
        if not self.secret:
            data["client_id"] = self.client.client_id
        return self.http.post("/token", data=data, headers=headers)

    def tokens(self, **overrides) -> dict:
        response = self.exchange(self.code(**overrides))
        assert response.status_code == 200, response.get_json()
        return response.get_json()
