"""`idp check`: the settings and registrations that weaken a deployment, each named with what
to do, and exit code 1 when the deployment is not fit for production."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.models import db
from idp.models import utcnow
from idp.models.signing_key import SigningKeyRecord

from .conftest import make_app

# What a production deployment sets (tests/conftest.py's make_app gives the rest).
PRODUCTION = {"ENV": "production", "HASH_KEY": "h" * 32, "MFA_ENCRYPTION_KEY": "m" * 32,
              "KEYS_PASSPHRASE": "p" * 32, "PRUNE_INTERVAL_SECONDS": 3600,
              "MAIL_SMTP_URL": "smtp://127.0.0.1:2525", "MAIL_FROM": "id@example.com",
              "ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST_KIB": 12288,
              "ARGON2_PARALLELISM": 1}


def check(app, *args):
    result = app.test_cli_runner().invoke(args=["check", "--json", *args])
    return result.exit_code, json.loads(result.output)


def subjects(found, severity) -> set[str]:
    return {f["subject"] for f in found if f["severity"] == severity}


@pytest.fixture
def production(tmp_path, signing_keys_dir):
    return make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com", **PRODUCTION)


def test_a_production_deployment_with_the_defaults_has_nothing_to_report(production):
    assert check(production) == (0, [])


def test_development_mode_is_an_error(tmp_path, signing_keys_dir):
    code, found = check(make_app(tmp_path, signing_keys_dir))
    assert code == 1
    assert subjects(found, "error") == {"IDP_ENV"}
    # The tests' own settings: no mail, no automatic prune.
    assert {"IDP_MAIL_SMTP_URL", "IDP_PRUNE_INTERVAL_SECONDS"} <= subjects(found, "warning")


@pytest.mark.parametrize("setting, value, says", [
    ("REFRESH_TOKEN_REUSE_GRACE_SECONDS", 30, "RFC 9700"),
    ("CLIENT_REGISTRATION", "open", "anyone may register"),
    ("CLIENT_METADATA_DOCUMENTS", True, "any site may be a client"),
    ("OUTBOUND_PRIVATE_NETWORKS", "10.20.0.0/16", "10.20.0.0/16: a URL a client names"),
    ("ACCESS_TOKEN_TTL_SECONDS", 86400, "a stolen one works that long"),
    ("HSTS_SECONDS", 0, "proxy"),
    ("PRUNE_INTERVAL_SECONDS", 0, "cron"),
    ("MAIL_SMTP_URL", "", "ASVS 6.3.7"),
])
def test_each_weaker_setting_is_a_warning(tmp_path, signing_keys_dir, setting, value, says):
    settings = {**PRODUCTION, setting: value}
    if setting == "MAIL_SMTP_URL":
        settings["MAIL_FROM"] = ""
    app = make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com", **settings)
    code, found = check(app)
    assert code == 0  # warnings do not fail a deploy
    assert [f["subject"] for f in found] == [f"IDP_{setting}"]
    assert says in found[0]["message"]


def test_metadata_documents_from_named_hosts_only_are_not_a_warning(tmp_path,
                                                                     signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com", **PRODUCTION,
                   CLIENT_METADATA_DOCUMENTS=True, CLIENT_METADATA_DOCUMENT_HOSTS=".corp.example")
    assert check(app) == (0, [])


def test_clients_with_a_live_previous_secret_or_a_localhost_redirect(production):
    cli = production.test_cli_runner()
    worker = json.loads(cli.invoke(args=["clients", "create", "--name", "Worker", "--grant-type",
                                         "client_credentials", "--json"]).output)
    cli.invoke(args=["clients", "rotate-secret", worker["client_id"], "--keep-old-for", "1h"])
    tool = json.loads(cli.invoke(args=["clients", "create", "--name", "CLI tool", "--public",
                                       "--redirect-uri", "http://localhost:8080/cb",
                                       "--json"]).output)
    code, found = check(production)
    assert code == 0
    by_subject = {f["subject"]: f["message"] for f in found}
    assert "end-previous-secret" in by_subject[f"client {worker['client_id']}"]
    assert "RFC 8252" in by_subject[f"client {tool['client_id']}"]
    cli.invoke(args=["clients", "end-previous-secret", worker["client_id"]])
    assert f"client {worker['client_id']}" not in {f["subject"] for f in check(production)[1]}


def test_the_text_output_names_severity_and_subject(production):
    production.config["CLIENT_REGISTRATION"] = "open"
    result = production.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0
    assert result.output.startswith("warning: IDP_CLIENT_REGISTRATION: open: anyone may")


def test_a_key_rotation_that_never_happens(tmp_path, signing_keys_dir):
    app = make_app(tmp_path, signing_keys_dir, issuer="https://id.example.com",
                   KEY_AUTO_ROTATE=False, **PRODUCTION)
    with app.app_context():
        store = app.extensions["idp.keys"]
        store.refresh()  # the first keys, as the first request makes them
        period = store.policy.rotation_period
        long_ago = utcnow() - period - timedelta(days=2)  # and nothing has rotated since
        db.session.execute(sa.update(SigningKeyRecord).values(created_at=long_ago))
        db.session.execute(sa.update(SigningKeyRecord)
                           .where(SigningKeyRecord.state == "active")
                           .values(activated_at=long_ago))
        db.session.commit()
    code, found = check(app)
    assert code == 0
    assert [f["subject"] for f in found] == ["signing keys"]
    assert "idp keys rotate --if-due" in found[0]["message"]
    app.test_cli_runner().invoke(args=["keys", "rotate", "--if-due"])
    assert check(app) == (0, [])
