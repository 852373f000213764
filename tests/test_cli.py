"""The admin CLI: users and clients, clean errors, nothing half-written, secrets shown once."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from joserfc.jwk import RSAKey
from sqlalchemy.exc import IntegrityError

from idp import create_app
from idp.models import Client
from idp.models import Consent
from idp.models import LoginSession
from idp.models import TokenFamily
from idp.models import User
from idp.models import db
from idp.models import utcnow

from .helpers import PASSWORD
from .helpers import csrf_token


def run(cli, *args, input=None):
    return cli.invoke(args=list(args), input=input)


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def create_alice(cli):
    return run(cli, "users", "create", "Alice", "--email", "alice@example.com", "--name", "Alice",
               "--password-stdin", "--json", input=PASSWORD + "\n")


def test_users_create_stores_argon2id_and_prints_sub(app, cli):
    result = create_alice(cli)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["username"] == "alice" and data["sub"]
    with app.app_context():
        user = User.by_username("alice")
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_created_user_can_sign_in(app, cli, http):
    create_alice(cli)
    token = csrf_token(http.get("/login").get_data(as_text=True))
    response = http.post("/login", data={"username": "alice", "password": PASSWORD,
                                         "csrf_token": token})
    assert response.status_code == 303


def test_duplicate_user_is_one_line_error_and_no_second_row(app, cli):
    create_alice(cli)
    result = create_alice(cli)
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "already exists" in result.stderr
    assert count(app, User) == 1


def test_short_password_is_refused(app, cli):
    result = run(cli, "users", "create", "bob", "--email", "b@example.com", "--name", "B",
                 "--password-stdin", input="short\n")
    assert result.exit_code != 0 and "at least" in result.stderr
    assert count(app, User) == 0


def test_common_password_is_refused(app, cli):
    result = run(cli, "users", "create", "bob", "--email", "b@example.com", "--name", "B",
                 "--password-stdin", input="iloveyou\n")
    assert result.exit_code != 0 and "most common" in result.stderr
    assert count(app, User) == 0


def test_users_list_json(cli):
    create_alice(cli)
    users = json.loads(run(cli, "users", "list", "--json").output)
    assert [u["username"] for u in users] == ["alice"]
    assert "password_hash" not in users[0]


def test_users_show_answers_why_someone_cannot_sign_in(app, cli, http):
    create_alice(cli)
    client_id = json.loads(create_client(cli).output)["client_id"]
    with app.app_context():
        user = User.by_username("alice")
        db.session.add(Consent(user_id=user.id, client_id=client_id, scope="openid"))
        db.session.add(TokenFamily(client_id=client_id, user_id=user.id, scope="openid",
                                   expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    token = csrf_token(http.get("/login").get_data(as_text=True))
    http.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    shown = json.loads(run(cli, "users", "show", "Alice", "--json").output)
    assert shown["username"] == "alice" and shown["two_step"] is False
    assert shown["live_sessions"] == 1 and shown["last_active_at"]
    assert shown["authorized_apps"] == ["Shop"] and shown["live_token_families"] == 1
    assert not any("hash" in key or "secret" in key for key in shown)
    text = run(cli, "users", "show", "alice").output
    assert "authorized_apps: Shop" in text and "two_step: False" in text
    assert run(cli, "users", "show", "nobody").exit_code != 0


def test_users_disable_ends_sessions(app, cli, http):
    create_alice(cli)
    token = csrf_token(http.get("/login").get_data(as_text=True))
    http.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    result = run(cli, "users", "disable", "alice", "--json")
    assert json.loads(result.output)["sessions_ended"] == 1
    with app.app_context():
        assert db.session.execute(db.select(LoginSession)).scalar_one().ended_at is not None
    assert "Not signed in" in http.get("/").get_data(as_text=True)


def test_set_password_for_unknown_user_fails(cli):
    result = run(cli, "users", "set-password", "ghost", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code != 0 and "no user" in result.stderr


def create_client(cli, *extra):
    return run(cli, "clients", "create", "--name", "Shop", "--redirect-uri",
               "https://shop.example.com/cb", "--json", *extra)


def test_confidential_client_secret_is_shown_once_and_stored_hashed(app, cli):
    result = create_client(cli)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["client_secret"]) >= 43  # 256 bits, base64url
    with app.app_context():
        client = Client.by_client_id(data["client_id"])
        assert client.secret_hash != data["client_secret"]
        assert client.check_client_secret(data["client_secret"])
    shown = run(cli, "clients", "show", data["client_id"], "--json").output
    assert data["client_secret"] not in shown
    assert not any("secret" in name for name in json.loads(shown))  # nor its hash
    assert client.secret_hash not in run(cli, "clients", "list", "--json").output


def test_public_client_has_no_secret(cli):
    data = json.loads(create_client(cli, "--public").output)
    assert data["client_secret"] is None and data["type"] == "public"


@pytest.mark.parametrize("uri", ["https://shop.example.com/cb#frag", "http://shop.example.com/cb",
                                 "javascript:alert(1)", "/relative/cb",
                                 "https://user@shop.example.com/cb"])
def test_invalid_redirect_uris_are_refused_and_nothing_is_written(app, cli, uri):
    result = run(cli, "clients", "create", "--name", "Bad", "--redirect-uri", uri)
    assert result.exit_code != 0 and uri in result.stderr
    assert count(app, Client) == 0


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8000/cb", "http://localhost/cb",
                                 "com.example.app:/callback"])
def test_loopback_and_private_use_redirect_uris_are_allowed(cli, uri):
    assert run(cli, "clients", "create", "--name", "Ok", "--redirect-uri", uri).exit_code == 0


def test_update_and_rotate_secret(app, cli):
    data = json.loads(create_client(cli).output)
    cid = data["client_id"]
    result = run(cli, "clients", "update", cid, "--add-redirect-uri",
                 "https://shop.example.com/cb2", "--first-party", "--json")
    assert json.loads(result.output)["redirect_uris"] == [
        "https://shop.example.com/cb", "https://shop.example.com/cb2"]
    new = json.loads(run(cli, "clients", "rotate-secret", cid, "--json").output)["client_secret"]
    with app.app_context():
        client = Client.by_client_id(cid)
        assert client.first_party
        assert client.check_client_secret(new)
        assert not client.check_client_secret(data["client_secret"])


def test_a_planned_rotation_keeps_the_old_secret_for_its_overlap_only(app, cli):
    data = json.loads(create_client(cli).output)
    cid, first = data["client_id"], data["client_secret"]
    rotated = json.loads(run(cli, "clients", "rotate-secret", cid, "--keep-old-for", "2d",
                             "--json").output)
    second = rotated["client_secret"]
    shown = json.loads(run(cli, "clients", "show", cid, "--json").output)
    assert shown["rotation_overlap_ends_at"] == rotated["rotation_overlap_ends_at"]
    with app.app_context():
        client = Client.by_client_id(cid)
        assert client.previous_secret_expires_at - utcnow() > timedelta(days=2, seconds=-60)
        assert client.check_client_secret(first) and client.check_client_secret(second)
    third = json.loads(run(cli, "clients", "rotate-secret", cid, "--keep-old-for", "15m",
                           "--json").output)["client_secret"]
    with app.app_context():  # one overlap at a time: the first secret is gone
        client = Client.by_client_id(cid)
        assert not client.check_client_secret(first)
        assert client.check_client_secret(second) and client.check_client_secret(third)
        client.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert not client.check_client_secret(second) and client.check_client_secret(third)
    assert json.loads(run(cli, "clients", "show", cid, "--json").output)[
        "rotation_overlap_ends_at"] is None


def test_the_overlap_can_end_early_and_a_plain_rotation_has_none(app, cli):
    data = json.loads(create_client(cli).output)
    cid, first = data["client_id"], data["client_secret"]
    second = json.loads(run(cli, "clients", "rotate-secret", cid, "--keep-old-for", "3600",
                            "--json").output)["client_secret"]
    ended = run(cli, "clients", "end-previous-secret", cid, "--json")
    assert json.loads(ended.output) == {"client_id": cid, "previous_secret_ended": True}
    assert "no previous secret" in run(cli, "clients", "end-previous-secret", cid).output
    third = json.loads(run(cli, "clients", "rotate-secret", cid, "--json").output)
    assert third["rotation_overlap_ends_at"] is None
    with app.app_context():
        client = Client.by_client_id(cid)
        assert not client.check_client_secret(first) and not client.check_client_secret(second)
        assert client.check_client_secret(third["client_secret"])


@pytest.mark.parametrize("duration", ["8d", "604801", "1w", "-5m", "h", "", "１h", "9" * 12])
def test_a_bad_overlap_is_one_line_and_changes_nothing(app, cli, duration):
    data = json.loads(create_client(cli).output)
    result = run(cli, "clients", "rotate-secret", data["client_id"], "--keep-old-for", duration)
    assert result.exit_code == 2 and "--keep-old-for" in result.output
    assert "Traceback" not in result.output
    with app.app_context():
        assert Client.by_client_id(data["client_id"]).check_client_secret(data["client_secret"])


def test_delete_client(app, cli):
    cid = json.loads(create_client(cli).output)["client_id"]
    assert run(cli, "clients", "delete", cid, "--yes").exit_code == 0
    assert count(app, Client) == 0


def test_delete_user_asks_first(app, cli):
    create_alice(cli)
    assert run(cli, "users", "delete", "alice", input="n\n").exit_code != 0
    assert count(app, User) == 1
    done = run(cli, "users", "delete", "alice", input="y\n")
    assert done.exit_code == 0 and "deleted alice" in done.output
    assert count(app, User) == 0


def test_unknown_client_is_an_error(cli):
    result = run(cli, "clients", "show", "nope")
    assert result.exit_code != 0 and "no client" in result.stderr


def test_public_client_cannot_have_client_credentials(app, cli):
    result = create_client(cli, "--public", "--grant-type", "client_credentials")
    assert result.exit_code != 0
    assert count(app, Client) == 0


def test_service_client_with_audiences_and_resource_server(cli):
    result = run(cli, "clients", "create", "--name", "Worker", "--grant-type",
                 "client_credentials", "--scope", "orders:read orders:write",
                 "--audience", "https://api.example.com", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["grant_types"] == ["client_credentials"]
    assert data["scope"] == "orders:read orders:write"
    assert data["audiences"] == ["https://api.example.com"] and data["introspect_any"] is False
    result = run(cli, "clients", "update", data["client_id"], "--introspect-any", "--json")
    assert json.loads(result.output)["introspect_any"] is True
    rs = json.loads(run(cli, "clients", "create", "--name", "API", "--grant-type",
                        "client_credentials", "--json").output)
    assert rs["scope"] == ""  # no user scopes by default for a service


def test_require_dpop_is_set_and_cleared(cli):
    data = json.loads(run(cli, "clients", "create", "--name", "Ledger", "--grant-type",
                          "client_credentials", "--require-dpop", "--json").output)
    assert data["require_dpop"] is True
    result = run(cli, "clients", "update", data["client_id"], "--no-require-dpop", "--json")
    assert json.loads(result.output)["require_dpop"] is False
    plain = json.loads(run(cli, "clients", "create", "--name", "Worker", "--grant-type",
                           "client_credentials", "--json").output)
    assert plain["require_dpop"] is False


def test_request_objects_and_signed_userinfo_are_set_and_cleared(cli, tmp_path):
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    result = create_client(cli, "--jwks-file", str(keys), "--request-uri",
                                    "https://shop.example.com/ro#h", "--signed-userinfo",
                                    "--require-signed-request-object")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["key_ids"] == [None]  # a key without a kid is shown, not a crash
    assert data["request_uris"] == ["https://shop.example.com/ro#h"]
    assert data["require_signed_request_object"] is True
    assert data["userinfo_signed_response_alg"] == "RS256"
    assert data["request_object_signing_alg"] is None
    pinned = json.loads(run(cli, "clients", "update", data["client_id"],
                            "--request-object-signing-alg", "PS256", "--json").output)
    assert pinned["request_object_signing_alg"] == "PS256"
    updated = json.loads(run(cli, "clients", "update", data["client_id"], "--no-signed-userinfo",
                             "--no-require-signed-request-object",
                             "--request-object-signing-alg", "any", "--json").output)
    assert updated["request_object_signing_alg"] is None
    assert updated["userinfo_signed_response_alg"] is None
    assert updated["require_signed_request_object"] is False
    assert updated["request_uris"] == ["https://shop.example.com/ro#h"]


def test_a_fapi2_web_app_as_the_readme_registers_it(cli, tmp_path):
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    result = run(cli, "clients", "create", "--name", "Bank app", "--redirect-uri",
                 "https://bank.example.com/cb", "--jwks-file", str(keys),
                 "--token-endpoint-auth-signing-alg", "PS256", "--require-par",
                 "--require-signed-request-object", "--request-object-signing-alg", "PS256",
                 "--require-dpop", "--signed-userinfo", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_secret"] is None and data["token_endpoint_auth_method"] == \
        "private_key_jwt"
    assert data["require_par"] and data["require_dpop"] and data["require_signed_request_object"]
    assert data["request_object_signing_alg"] == "PS256"
    assert data["token_endpoint_auth_signing_alg"] == "PS256"


@pytest.mark.parametrize("args, message", [
    (["--audience", "api"], "absolute URI"),
    (["--audience", "https://api.example.com#x"], "absolute URI"),
    (["--audience", "http://["], "absolute URI"),
    (["--redirect-uri", "http://["], "not a URI"),
    (["--grant-type", "refresh_token", "--grant-type", "authorization_code"], "offline_access"),
    (["--grant-type", "refresh_token", "--scope", "offline_access"], "authorization_code"),
    (["--public", "--introspect-any"], "cannot introspect"),
    (["--request-uri", "https://shop.example.com/ro"], "--jwks-file"),  # needs keys
    (["--require-signed-request-object"], "--jwks-file"),
    (["--request-object-signing-alg", "PS256"], "--jwks-file"),
    (["--token-endpoint-auth-signing-alg", "PS256"], "--jwks-file"),
    (["--request-object-signing-alg", "HS256"], "HS256"),
    (["--request-uri", "http://shop.example.com/ro"], "https"),
])
def test_inconsistent_clients_are_refused(app, cli, args, message):
    result = create_client(cli, *args)
    assert result.exit_code != 0 and message in result.output
    assert count(app, Client) == 0


def test_every_command_has_help(cli):
    for args in (["users", "--help"], ["users", "create", "--help"], ["clients", "--help"],
                 ["clients", "create", "--help"], ["clients", "rotate-secret", "--help"],
                 ["tokens", "--help"], ["tokens", "revoke", "--help"]):
        assert run(cli, *args).exit_code == 0


def test_client_ids_never_read_as_an_option():
    """`idp clients delete ID` must work for every generated id."""
    default = Client.__table__.c.client_id.default.arg
    assert not any(default(None).startswith("-") for _ in range(2000))


# --- errors no command can mend: one line, through the real `idp` entry point -------------

def run_idp(tmp_path, *args: str | bytes, database_url: str | None = None, stdin: bytes = b"",
            stdout=subprocess.PIPE):
    env = {**os.environ, "IDP_ENV": "development", "IDP_ISSUER": "http://127.0.0.1:5000",
           "IDP_KEYS_DIR": str(tmp_path / "keys"),
           "IDP_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'idp.sqlite3'}"}
    return subprocess.run([str(Path(sys.executable).parent / "idp"), *args], env=env,
                          input=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)


def test_a_database_that_is_not_migrated_is_one_line_not_a_traceback(tmp_path):
    done = run_idp(tmp_path, "users", "list")
    assert done.returncode == 1
    assert b"database error" in done.stderr and b"idp db upgrade" in done.stderr
    assert b"Traceback" not in done.stderr


def test_an_unusable_database_url_stops_the_command_with_one_line(tmp_path):
    done = run_idp(tmp_path, "users", "list", database_url="notaurl")
    assert done.returncode == 2
    assert done.stderr.decode().startswith("idp: IDP_DATABASE_URL is not a usable database URL")


def test_arguments_that_are_not_utf8_are_refused_and_write_nothing(tmp_path):
    assert run_idp(tmp_path, "db", "upgrade").returncode == 0
    done = run_idp(tmp_path, "users", "create", b"\xff", "--email", "x@example.com",
                   "--name", "X", "--password-stdin", stdin=PASSWORD.encode() + b"\n")
    assert done.returncode == 1 and b"username must not contain control" in done.stderr
    assert b"Traceback" not in done.stderr
    done = run_idp(tmp_path, "users", "create", "xavier", "--email", "x@example.com",
                   "--name", "X", "--password-stdin", stdin=b"\xff" + PASSWORD.encode() + b"\n")
    assert done.returncode == 1 and b"must be UTF-8 text" in done.stderr
    assert b"Traceback" not in done.stderr
    assert run_idp(tmp_path, "users", "list").stdout.strip() == b"no users"


def test_database_errors_never_carry_the_statement_values(app):
    """A password hash (or a secret's) must not reach a log line or the terminal with an
    error: the engine hides bound parameters."""
    with app.app_context():
        db.session.add(User(username="taken", password_hash="first-hash"))
        db.session.commit()
        db.session.add(User(username="taken", password_hash="SECRET-HASH-VALUE"))
        with pytest.raises(IntegrityError) as raised:
            db.session.commit()
        db.session.rollback()
    assert "SECRET-HASH-VALUE" not in str(raised.value)


def test_a_password_piped_with_crlf_is_stored_without_the_cr(tmp_path):
    assert run_idp(tmp_path, "db", "upgrade").returncode == 0
    done = run_idp(tmp_path, "users", "create", "carol", "--email", "c@example.com", "--name",
                   "C", "--password-stdin", stdin=PASSWORD.encode() + b"\r\n")
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'idp.sqlite3'}")
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    engine.dispose()
    assert PasswordHasher().verify(stored, PASSWORD)


@pytest.mark.parametrize("args", [
    ("users", "create", "dave", "--email", "a" * 400 + "@x.example", "--name", "D",
     "--password-stdin"),
    ("users", "create", "dave", "--email", "d@example.com", "--name", "n" * 201,
     "--password-stdin"),
    ("clients", "create", "--name", "n" * 201, "--redirect-uri", "https://rp.example/cb"),
    ("clients", "create", "--name", "App", "--redirect-uri", "https://rp.example/c b"),
    ("clients", "create", "--name", "App", "--redirect-uri", "https://rp.example/\x01"),
])
def test_values_the_database_cannot_hold_are_refused_first(app, cli, args):
    """SQLite stores an overlong value that PostgreSQL refuses: both refuse it up front."""
    result = run(cli, *args, input=PASSWORD + "\n")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert count(app, User) == 0 and count(app, Client) == 0


@pytest.mark.parametrize("args, message", [
    (("users", "create", "da\tve", "--email", "d@example.com", "--name", "D"),
     "username must not contain control characters"),
    (("users", "create", "da ve", "--email", "d@example.com", "--name", "D"),
     "username must not contain spaces"),
    (("users", "create", "dave", "--email", "d@exam\nple.com", "--name", "D"),
     "--email must not contain control characters"),
    (("users", "create", "dave", "--email", "d@example.com", "--name", "Da\x1bve"),
     "--name must not contain control characters"),
    (("clients", "create", "--name", "App\nEvil: yes", "--redirect-uri", "https://rp/cb"),
     "--name must not contain control characters"),
])
def test_names_with_control_characters_are_refused(app, cli, args, message):
    """They broke the tab-separated `list` output and reached pages and ID tokens."""
    result = run(cli, *args, "--password-stdin", input=PASSWORD + "\n") if args[0] == "users" \
        else run(cli, *args)
    assert result.exit_code != 0 and message in result.output
    assert count(app, User) == 0 and count(app, Client) == 0


def test_a_secret_that_cannot_be_shown_is_not_stored(tmp_path):
    """A full disk or a closed pipe on stdout: the secret shown only once never reached the
    operator, so no client is created and a rotation keeps the old secret."""
    assert run_idp(tmp_path, "db", "upgrade").returncode == 0
    with open("/dev/full", "wb") as full:
        done = run_idp(tmp_path, "clients", "create", "--name", "svc",
                       "--grant-type", "client_credentials", stdout=full)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert b"could not write the output (No space left on device): nothing was changed" in (
        done.stderr)
    assert run_idp(tmp_path, "clients", "list").stdout.strip() == b"no clients"

    created = json.loads(run_idp(tmp_path, "clients", "create", "--name", "svc", "--grant-type",
                                 "client_credentials", "--json").stdout)
    with open("/dev/full", "wb") as full:
        done = run_idp(tmp_path, "clients", "rotate-secret", created["client_id"], stdout=full)
    assert done.returncode == 1 and b"nothing was changed" in done.stderr
    assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr
    app = create_app({"ENV": "development", "ISSUER": "http://127.0.0.1:5000",
                      "KEYS_DIR": str(tmp_path / "keys"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}"})
    with app.app_context():
        client = Client.by_client_id(created["client_id"])
        assert client.check_client_secret(created["client_secret"])
        db.engine.dispose()


def test_a_client_gets_links_to_its_privacy_policy_and_terms(cli):
    created = cli.invoke(args=["clients", "create", "--name", "Notes", "--redirect-uri",
                               "https://notes.example/cb", "--policy-uri",
                               "https://notes.example/privacy", "--json"])
    client = json.loads(created.output)
    assert client["policy_uri"] == "https://notes.example/privacy" and client["tos_uri"] is None
    refused = cli.invoke(args=["clients", "update", client["client_id"], "--tos-uri",
                               "javascript:alert(1)"])
    assert refused.exit_code != 0 and "is not an https URL" in refused.output
    updated = cli.invoke(args=["clients", "update", client["client_id"], "--policy-uri", "",
                               "--tos-uri", "https://notes.example/terms", "--json"])
    assert json.loads(updated.output)["policy_uri"] is None
    assert json.loads(updated.output)["tos_uri"] == "https://notes.example/terms"
