"""Pairwise subject identifiers (OIDC Core §8.1): a client registered `--subject-type pairwise`
knows each user by a `sub` of its sector (the one host of its redirect URIs), the same in every
token and answer it gets, and different from what clients of other sectors get."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from idp.models import RegisteredClient
from idp.oauth.subjects import subject_for

from ..conftest import add_client
from ..conftest import add_user
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import basic_auth
from ..helpers import query_of
from .test_id_token import verify


def pairwise_flow(http, app, name, *redirect_uris) -> Browserless:
    return Browserless(http, add_client(app, name=name, subject_type="pairwise",
                                        sector_identifier=redirect_uris[0].split("/")[2],
                                        redirect_uris=list(redirect_uris),
                                        grant_types=["authorization_code", "refresh_token"],
                                        scope="openid profile email offline_access"))


def id_token_sub(flow, **overrides) -> tuple[str, dict]:
    tokens = flow.tokens(**overrides)
    return verify(flow.http, tokens["id_token"])[1]["sub"], tokens


def test_each_sector_knows_the_user_by_its_own_sub(http, app, user, flow):
    notes = pairwise_flow(http, app, "Notes", "https://notes.example/cb")
    photos = pairwise_flow(http, app, "Photos", "https://photos.example/cb")
    notes_sub, _ = id_token_sub(notes)
    photos_sub, _ = id_token_sub(photos)
    public_sub, _ = id_token_sub(flow)
    assert public_sub == user.subject
    assert len({notes_sub, photos_sub, user.subject}) == 3
    assert id_token_sub(notes)[0] == notes_sub  # stable from one sign-in to the next


def test_clients_of_one_sector_know_the_user_by_the_same_sub(http, app, user):
    web = pairwise_flow(http, app, "Notes web", "https://notes.example/cb")
    admin = pairwise_flow(http, app, "Notes admin", "https://notes.example/admin/cb")
    assert id_token_sub(web)[0] == id_token_sub(admin)[0]


def test_every_answer_to_the_client_carries_the_same_sub(http, app, user):
    notes = pairwise_flow(http, app, "Notes", "https://notes.example/cb")
    sub, tokens = id_token_sub(notes, scope="openid profile offline_access")
    assert verify(http, tokens["access_token"])[1]["sub"] == sub
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.get_json()["sub"] == sub
    assert userinfo.get_json()["preferred_username"] == "alice"  # the rest is the user's
    auth = basic_auth(notes.client.client_id, notes.secret)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        introspected = http.post("/introspect", data={"token": token}, headers=auth).get_json()
        assert introspected["active"] and introspected["sub"] == sub
    refreshed = http.post("/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).get_json()
    assert verify(http, refreshed["id_token"])[1]["sub"] == sub


def test_an_id_token_hint_with_the_pairwise_sub_is_the_signed_in_user(http, app, user):
    notes = pairwise_flow(http, app, "Notes", "https://notes.example/cb")
    _, tokens = id_token_sub(notes)
    silent = notes.authorize(prompt="none", id_token_hint=tokens["id_token"])
    assert silent.status_code == 302 and "code" in query_of(silent.location)


def test_the_cli_registers_a_pairwise_client_on_one_host_and_keeps_it_there(app):
    runner = app.test_cli_runner()

    def idp(*args):
        return runner.invoke(args=[*args, "--json"])

    spread = idp("clients", "create", "--name", "Spread", "--subject-type", "pairwise",
                 "--redirect-uri", "https://a.example/cb", "--redirect-uri", "https://b.example/cb")
    assert spread.exit_code != 0 and "all on one host" in spread.output

    created = idp("clients", "create", "--name", "Notes", "--subject-type", "pairwise",
                  "--redirect-uri", "https://notes.example/cb")
    client = json.loads(created.output)
    assert client["subject_type"] == "pairwise"
    assert client["sector_identifier"] == "notes.example"

    moved = idp("clients", "update", client["client_id"],
                "--redirect-uri", "https://elsewhere.example/cb")
    assert moved.exit_code != 0 and "must stay on notes.example" in moved.output
    shown = json.loads(idp("clients", "show", client["client_id"]).output)
    assert shown["redirect_uris"] == ["https://notes.example/cb"]  # nothing changed

    added = idp("clients", "update", client["client_id"],
                "--add-redirect-uri", "https://notes.example/other")
    assert added.exit_code == 0, added.output


def test_the_operator_finds_the_user_a_pairwise_sub_names(http, app, user):
    add_user(app, "bob")
    notes = pairwise_flow(http, app, "Notes", "https://notes.example/cb")
    sub, _ = id_token_sub(notes)
    runner = app.test_cli_runner()
    found = runner.invoke(args=["users", "whois", sub, "--client", notes.client.client_id,
                                "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["username"] == "alice"
    public = runner.invoke(args=["users", "whois", user.subject])
    assert public.output.startswith("alice ")
    unknown = runner.invoke(args=["users", "whois", sub])  # not a public sub
    assert unknown.exit_code != 0 and "no user has this sub" in unknown.output


@pytest.fixture
def registering_http(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open").test_client()


@pytest.mark.parametrize("metadata, registered", [
    ({"subject_type": "pairwise"}, True),
    ({"subject_type": "pairwise",
      "redirect_uris": ["https://notes.example/cb", "https://other.example/cb"]}, False),
    # A sector_identifier_uri is fetched: one that leads to no public address is refused.
    ({"subject_type": "pairwise", "sector_identifier_uri": "https://127.0.0.1/s.json"},
     False),
    ({"subject_type": "ppid"}, False),
])
def test_a_client_may_register_itself_as_pairwise_on_one_host(registering_http, metadata,
                                                              registered):
    response = registering_http.post("/register", json={
        "redirect_uris": ["https://notes.example/cb"], **metadata})
    if registered:
        assert response.status_code == 201 and response.get_json()["subject_type"] == "pairwise"
    else:
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_client_metadata"


def test_discovery_lists_both_subject_types(http):
    document = http.get("/.well-known/openid-configuration").get_json()
    assert document["subject_types_supported"] == ["public", "pairwise"]


# --- sector_identifier_uri (OIDC Core §8.1, OIDC Dynamic Registration §5) -----------------

@pytest.fixture
def sector_app(tmp_path, signing_keys_dir):
    # The sector documents are served on loopback, which only an operator's setting allows.
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open",
                    OUTBOUND_PRIVATE_NETWORKS="127.0.0.1/32")


def publish_sector(documents, *redirect_uris, path="/sector.json") -> str:
    documents.answers[path] = (200, {}, json.dumps(list(redirect_uris)).encode())
    return documents.url(path)


def test_oidcc_registration_sector_uri(sector_app, documents):
    """Apps on two hosts share the sector of the URL that lists their redirect URIs, and so
    know each user by the same sub."""
    http = sector_app.test_client()
    sector_uri = publish_sector(documents, "https://www.notes.example/cb",
                                "https://app.notes.net/cb")
    subs = []
    for redirect_uri in ("https://www.notes.example/cb", "https://app.notes.net/cb"):
        registered = http.post("/register", json={
            "redirect_uris": [redirect_uri], "subject_type": "pairwise",
            "sector_identifier_uri": sector_uri})
        assert registered.status_code == 201, registered.get_json()
        body = registered.get_json()
        assert body["sector_identifier_uri"] == sector_uri
        with sector_app.app_context():
            client = RegisteredClient.find(body["client_id"])
            assert client.sector_identifier == "127.0.0.1"
            subs.append(subject_for(SimpleNamespace(subject="user-1"), client))
    assert subs[0] == subs[1] != "user-1"
    # Both clients' redirect URIs on two hosts: a single registration needs the URI too.
    spread = http.post("/register", json={
        "redirect_uris": ["https://www.notes.example/cb", "https://app.notes.net/cb"],
        "subject_type": "pairwise", "sector_identifier_uri": sector_uri})
    assert spread.status_code == 201
    assert documents.requests == ["/sector.json"] * 3


@pytest.mark.parametrize("answer, message", [
    ((200, {}, b'["https://other.example/cb"]'), "does not list 1"),
    ((200, {}, b'{"redirect_uris": ["https://www.notes.example/cb"]}'), "JSON array"),
    ((200, {}, b"[" * 60_000), "JSON array"),  # nested past the parser's depth
    ((404, {}, b"[]"), "HTTP 404"),
])
def test_oidcc_registration_sector_bad(sector_app, documents, answer, message):
    documents.answers["/sector.json"] = answer
    refused = sector_app.test_client().post("/register", json={
        "redirect_uris": ["https://www.notes.example/cb"], "subject_type": "pairwise",
        "sector_identifier_uri": documents.url("/sector.json")})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_client_metadata"
    assert message in refused.get_json()["error_description"]


def test_a_sector_identifier_uri_must_be_https(sector_app):
    refused = sector_app.test_client().post("/register", json={
        "redirect_uris": ["https://www.notes.example/cb"], "subject_type": "pairwise",
        "sector_identifier_uri": "http://127.0.0.1/sector.json"})
    assert refused.status_code == 400 and "https" in refused.get_json()["error_description"]


def test_the_cli_checks_the_sector_uri_at_every_change(sector_app, documents):
    runner = sector_app.test_cli_runner()

    def idp(*args):
        return runner.invoke(args=[*args, "--json"])

    sector_uri = publish_sector(documents, "https://www.notes.example/cb",
                                "https://app.notes.net/cb")
    created = idp("clients", "create", "--name", "Notes", "--subject-type", "pairwise",
                  "--redirect-uri", "https://www.notes.example/cb",
                  "--redirect-uri", "https://app.notes.net/cb",
                  "--sector-identifier-uri", sector_uri)
    assert created.exit_code == 0, created.output
    client = json.loads(created.output)
    assert client["sector_identifier"] == "127.0.0.1"
    assert client["sector_identifier_uri"] == sector_uri
    unlisted = idp("clients", "update", client["client_id"],
                   "--add-redirect-uri", "https://elsewhere.example/cb")
    assert unlisted.exit_code != 0 and "does not list 1" in unlisted.output
    dropped = idp("clients", "update", client["client_id"], "--sector-identifier-uri", "")
    assert dropped.exit_code != 0 and "all on one host" in dropped.output
    plain_http = idp("clients", "create", "--name", "Bad", "--redirect-uri",
                     "https://www.notes.example/cb", "--sector-identifier-uri",
                     "http://127.0.0.1/sector.json")
    assert plain_http.exit_code != 0 and "https" in plain_http.output
