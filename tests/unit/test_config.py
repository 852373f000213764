"""Start-up settings: what stops the provider, and with what message."""

import json
import logging

import pytest
from flask_migrate import upgrade

from idp import create_app
from idp.config import ConfigError
from idp.keys.material import SigningKey
from idp.models import SigningKeyRecord
from idp.models import db

from ..conftest import make_app


def config(tmp_path, **overrides):
    return {"ENV": "production", "ISSUER": "https://id.example.com",
            "SECRET_KEY": "s" * 40, "HASH_KEY": "h" * 40,
            "MFA_ENCRYPTION_KEY": "m" * 40, "KEYS_PASSPHRASE": "k" * 40,
            "KEYS_DIR": str(tmp_path / "keys"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **overrides}


def test_production_needs_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="IDP_SECRET_KEY"):
        create_app(config(tmp_path, SECRET_KEY=""))


def test_production_needs_a_hash_key_of_its_own(tmp_path):
    with pytest.raises(ConfigError, match="IDP_HASH_KEY must be set"):
        create_app(config(tmp_path, HASH_KEY=""))
    with pytest.raises(ConfigError, match="must differ"):
        create_app(config(tmp_path, HASH_KEY="s" * 40))


def test_refresh_lifetimes_must_be_consistent(tmp_path):
    with pytest.raises(ConfigError, match="REFRESH_TOKEN_IDLE_SECONDS"):
        create_app(config(tmp_path, REFRESH_TOKEN_IDLE_SECONDS=100,
                          REFRESH_TOKEN_ABSOLUTE_SECONDS=50))


def test_production_refuses_an_http_issuer(tmp_path):
    with pytest.raises(ConfigError, match="https"):
        create_app(config(tmp_path, ISSUER="http://id.example.com"))


def test_development_allows_loopback_http_but_not_public_http(tmp_path):
    create_app(config(tmp_path, ENV="development", ISSUER="http://127.0.0.1:5000"))
    with pytest.raises(ConfigError):
        create_app(config(tmp_path, ENV="development", ISSUER="http://id.example.com"))


def test_environment_variables_override_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_ACCESS_TOKEN_TTL_SECONDS", "120")
    app = create_app(config(tmp_path))
    assert app.config["ACCESS_TOKEN_TTL_SECONDS"] == 120


def test_malformed_number_in_environment_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_ACCESS_TOKEN_TTL_SECONDS", "ten")
    with pytest.raises(ConfigError, match="whole number"):
        create_app(config(tmp_path))


def migrated_app(tmp_path, **overrides):
    """An app on a database that `idp db upgrade` has migrated, started again as production
    does after the upgrade."""
    with create_app(config(tmp_path, **overrides)).app_context():
        upgrade()
    return create_app(config(tmp_path, **overrides))


def stored_keys(app) -> dict[str, SigningKeyRecord]:
    with app.app_context():
        return {k.state: k for k in db.session.execute(db.select(SigningKeyRecord)).scalars()}


def test_production_needs_a_keys_passphrase_of_its_own(tmp_path):
    with pytest.raises(ConfigError, match="IDP_KEYS_PASSPHRASE must be set"):
        create_app(config(tmp_path, KEYS_PASSPHRASE=""))
    with pytest.raises(ConfigError, match="must differ"):
        create_app(config(tmp_path, KEYS_PASSPHRASE="h" * 40))


def test_publication_lead_must_cover_the_jwks_cache_and_fit_in_the_rotation_period(tmp_path):
    with pytest.raises(ConfigError, match=r"at least .* \(305\)"):
        create_app(config(tmp_path, KEY_PUBLICATION_LEAD_SECONDS=300))
    with pytest.raises(ConfigError, match="at most IDP_KEY_ROTATION_PERIOD_SECONDS"):
        create_app(config(tmp_path, KEY_ROTATION_PERIOD_SECONDS=3600,
                          KEY_PUBLICATION_LEAD_SECONDS=7200))


def test_first_start_creates_an_active_and_a_next_key_encrypted_in_the_database(tmp_path):
    app = migrated_app(tmp_path)
    keys = stored_keys(app)
    assert set(keys) == {"active", "next"}
    for key in keys.values():
        assert key.encrypted_private_key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert app.extensions["idp.keys"].signing_key().kid == keys["active"].kid
    assert not list((tmp_path / "keys").glob("*.pem"))  # nothing in plain text on disk


def test_corrupt_key_file_is_a_clear_start_up_error(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "broken.pem").write_text("not a key")
    # before `idp db upgrade` (the file would be imported later) and at the import itself
    with pytest.raises(ConfigError, match="not a valid PEM private key"):
        create_app(config(tmp_path))
    with create_app(config(tmp_path, KEYS_DIR=str(tmp_path / "empty"))).app_context():
        upgrade()
    with pytest.raises(ConfigError, match="broken.pem is not a valid PEM private key"):
        create_app(config(tmp_path))


def test_unreadable_key_file_is_a_clear_start_up_error(tmp_path):
    (tmp_path / "keys" / "unreadable.pem").mkdir(parents=True)  # root reads any mode: a folder
    with pytest.raises(ConfigError, match="cannot read signing key .*unreadable.pem"):
        create_app(config(tmp_path))


def test_key_that_cannot_be_decrypted_is_a_clear_start_up_error(tmp_path):
    migrated_app(tmp_path)
    with pytest.raises(ConfigError, match="cannot be decrypted with IDP_KEYS_PASSPHRASE") as info:
        create_app(config(tmp_path, KEYS_PASSPHRASE="another passphrase of 32 characters"))
    assert "\n" not in str(info.value)


def test_key_row_holding_another_key_is_a_clear_start_up_error(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():  # the next key's ciphertext copied over the active key's
        active, next_key = (db.session.get(SigningKeyRecord, k.kid)
                            for k in (stored_keys(app)["active"], stored_keys(app)["next"]))
        active.encrypted_private_key = next_key.encrypted_private_key
        db.session.commit()
    with pytest.raises(ConfigError, match="does not hold that key"):
        create_app(config(tmp_path))


def test_database_down_at_start_up_does_not_stop_the_provider(tmp_path, caplog):
    app = create_app(config(tmp_path, DATABASE_URL="postgresql+psycopg://idp@127.0.0.1:1/idp"))
    assert "signing keys load at first use" in caplog.text
    assert app.test_client().get("/jwks.json").status_code == 500  # no keys, no JWKS yet


@pytest.mark.parametrize("name", ["SECRET_KEY", "HASH_KEY", "MFA_ENCRYPTION_KEY",
                                  "KEYS_PASSPHRASE"])
def test_development_secrets_are_generated_once(tmp_path, signing_keys_dir, name):
    first = make_app(tmp_path, signing_keys_dir, **{name: ""})
    second = make_app(tmp_path, signing_keys_dir, **{name: ""})
    assert first.config[name] == second.config[name]
    assert len(first.config[name]) >= 32
    assert first.config["SECRET_KEY"] != first.config["HASH_KEY"]


@pytest.mark.parametrize("name, value, message", [
    # past ten years, adding the duration to a date overflowed at the first token or rotation
    ("ACCESS_TOKEN_TTL_SECONDS", "99999999999999", "between 1 and 315,360,000"),
    ("KEY_ROTATION_PERIOD_SECONDS", "999999999999999", "between 1 and 315,360,000"),
    ("SESSION_IDLE_TIMEOUT_SECONDS", "-5", "between 1 and"),
    ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "-1", "between 1 and"),
    ("TRUSTED_PROXY_COUNT", "-1", "between 0 and 16"),
    ("AUTHORIZATION_CODE_TTL_SECONDS", "601", "between 1 and 600"),
    ("REFRESH_TOKEN_REUSE_GRACE_SECONDS", "301", "between 0 and 300"),
    ("REFRESH_TOKEN_REUSE_GRACE_SECONDS", "-1", "between 0 and 300"),
    # argon2 refused these only when a password was hashed: at sign-in, a 500
    ("ARGON2_TIME_COST", "0", "between 1 and 1,000"),
    ("ARGON2_PARALLELISM", "0", "between 1 and 255"),
    ("ARGON2_MEMORY_COST_KIB", "0", "between 8 and"),
    ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO"),
    ("CLIENT_REGISTRATION", "yes", "one of off, token, open"),
    ("CLIENT_REGISTRATION_MAX_PER_IP", "0", "between 1 and"),
    ("OUTBOUND_PRIVATE_NETWORKS", "10.0.0.0/8 intranet", "'intranet' is not an IP network"),
    ("CLIENT_METADATA_DOCUMENTS", "maybe", "true or false"),
    ("SELF_REGISTERED_RESOURCES", "https://mcp.example.com mcp-server", "'mcp-server' is not an"),
    ("SELF_REGISTERED_SCOPES", 'mcp:tools "quoted"', "is not a scope"),
])
def test_a_setting_out_of_range_is_one_clear_error(tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv(f"IDP_{name}", value)
    with pytest.raises(ConfigError, match=message) as info:
        create_app(config(tmp_path))
    assert f"IDP_{name}" in str(info.value)


def test_registration_with_a_token_needs_a_long_token(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_CLIENT_REGISTRATION", "token")
    monkeypatch.setenv("IDP_CLIENT_REGISTRATION_TOKEN", "short")
    with pytest.raises(ConfigError, match="IDP_CLIENT_REGISTRATION_TOKEN, a random string"):
        create_app(config(tmp_path))


def test_argon2_needs_8_kib_a_lane(tmp_path):
    with pytest.raises(ConfigError, match="at least 8 times IDP_ARGON2_PARALLELISM"):
        create_app(config(tmp_path, ENV="development", ISSUER="http://127.0.0.1:5000",
                          ARGON2_MEMORY_COST_KIB=120, ARGON2_PARALLELISM=16))


def test_production_refuses_argon2_below_owasps_minimum(tmp_path):
    with pytest.raises(ConfigError, match="below OWASP's minimum"):
        create_app(config(tmp_path, ARGON2_TIME_COST=1, ARGON2_MEMORY_COST_KIB=8192))
    # OWASP's lightest settings: 7 MiB with 5 passes, 46 MiB with one
    create_app(config(tmp_path, ARGON2_TIME_COST=5, ARGON2_MEMORY_COST_KIB=7168))
    create_app(config(tmp_path, ARGON2_TIME_COST=1, ARGON2_MEMORY_COST_KIB=47104))


def test_log_level_is_read_whatever_its_case(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_LOG_LEVEL", "warning")
    create_app(config(tmp_path))
    assert logging.getLogger("idp").level == logging.WARNING


def test_keys_dir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "keys").write_text("")
    with pytest.raises(ConfigError, match="IDP_KEYS_DIR .* is not a folder"):
        create_app(config(tmp_path))


@pytest.mark.parametrize("line, message", [
    ('ACCESS_TOKEN_TTL_SECONDS = "600"', "ACCESS_TOKEN_TTL_SECONDS must be a whole number"),
    ("ACCESS_TOKEN_TTL_SECONDS = 60.5", "ACCESS_TOKEN_TTL_SECONDS must be a whole number"),
    ("KEY_AUTO_ROTATE = 1", "KEY_AUTO_ROTATE must be true or false"),
    ("ISSUER = 5", "ISSUER must be a string"),
    ("ACCES_TOKEN_TTL_SECONDS = 600", "ACCES_TOKEN_TTL_SECONDS is not a setting"),
])
def test_config_file_setting_of_the_wrong_type_or_name_is_one_clear_error(
        tmp_path, monkeypatch, line, message):
    (tmp_path / "idp.toml").write_text(line + "\n")
    monkeypatch.setenv("IDP_CONFIG", str(tmp_path / "idp.toml"))
    with pytest.raises(ConfigError, match=f"idp.toml: {message}"):
        create_app(config(tmp_path))


def test_config_file_settings_apply(tmp_path, monkeypatch):
    (tmp_path / "idp.toml").write_text("ACCESS_TOKEN_TTL_SECONDS = 120\nKEY_AUTO_ROTATE = false\n")
    monkeypatch.setenv("IDP_CONFIG", str(tmp_path / "idp.toml"))
    app = create_app(config(tmp_path))
    assert (app.config["ACCESS_TOKEN_TTL_SECONDS"], app.config["KEY_AUTO_ROTATE"]) == (120, False)


def test_a_key_table_without_an_active_key_stops_start_up_with_a_way_out(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():
        db.session.delete(db.session.get(SigningKeyRecord, stored_keys(app)["active"].kid))
        db.session.commit()
    with pytest.raises(ConfigError, match="no active one") as info:
        create_app(config(tmp_path))
    # every `idp` command starts the app too: the hint is the database, not `idp keys list`
    assert "SELECT kid, state FROM signing_keys" in str(info.value)


@pytest.mark.parametrize("url", ["smtp.example.com", "http://smtp.example.com",
                                 "smtp://:pw@", "smtps://u:secretpw@mail.example.com:x",
                                 "smtp://mail.example.com/path", "smtp://[::1"])
def test_a_mail_server_url_that_cannot_be_used_stops_start_up_without_repeating_it(tmp_path, url):
    with pytest.raises(ConfigError, match="IDP_MAIL_SMTP_URL must be smtps://") as info:
        create_app(config(tmp_path, MAIL_SMTP_URL=url, MAIL_FROM="id@example.com"))
    assert "secretpw" not in str(info.value)


def test_a_mail_server_needs_a_from_address(tmp_path):
    with pytest.raises(ConfigError, match="IDP_MAIL_FROM must be set"):
        create_app(config(tmp_path, MAIL_SMTP_URL="smtps://mail.example.com"))
    create_app(config(tmp_path, MAIL_SMTP_URL="smtp://u:p%40ss@mail.example.com:587",
                      MAIL_FROM="Example ID <id@example.com>"))


def test_the_keys_passphrase_changes_without_a_moment_of_unreadable_keys(tmp_path):
    old, new = "k" * 40, "n" * 40  # config() seals under "k" * 40
    before = {record.kid for record in stored_keys(migrated_app(tmp_path)).values()}
    # 1. every host: the new passphrase, and the old one as the previous
    both = create_app(config(tmp_path, KEYS_PASSPHRASE=new, KEYS_PREVIOUS_PASSPHRASE=old))
    with both.app_context():  # a key made now is sealed under the new passphrase
        rotation = both.extensions["idp.keys"].rotate(force=True)
    # 2. reseal: exactly the keys that only the old passphrase opens
    result = both.test_cli_runner().invoke(args=["keys", "reseal", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["resealed"]) == sorted(before)
    assert rotation.published not in before
    again = both.test_cli_runner().invoke(args=["keys", "reseal"])
    assert "every key is already sealed under IDP_KEYS_PASSPHRASE" in again.output
    # 3. the new passphrase alone opens every key, the old one none
    after = create_app(config(tmp_path, KEYS_PASSPHRASE=new))
    assert after.extensions["idp.keys"].signing_key().kid == rotation.activated
    with pytest.raises(ConfigError, match="cannot be decrypted with IDP_KEYS_PASSPHRASE$"):
        create_app(config(tmp_path, KEYS_PASSPHRASE=old))
    with pytest.raises(ConfigError, match="with IDP_KEYS_PASSPHRASE or IDP_KEYS_PREVIOUS_"):
        create_app(config(tmp_path, KEYS_PASSPHRASE="x" * 40, KEYS_PREVIOUS_PASSPHRASE=old))


def test_reseal_reports_a_key_neither_passphrase_opens_in_one_line(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():  # after start-up, a row is overwritten with a key of elsewhere
        record = db.session.get(SigningKeyRecord, stored_keys(app)["next"].kid)
        record.encrypted_private_key = SigningKey.generate(2048).sealed(b"x" * 40)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["keys", "reseal"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert "cannot be decrypted with IDP_KEYS_PASSPHRASE" in result.output


@pytest.mark.parametrize("previous", ["k" * 40, "too short"])
def test_the_previous_keys_passphrase_is_a_former_one(tmp_path, previous):
    with pytest.raises(ConfigError, match="IDP_KEYS_PREVIOUS_PASSPHRASE, when set"):
        create_app(config(tmp_path, KEYS_PREVIOUS_PASSPHRASE=previous))
