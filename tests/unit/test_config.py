"""Start-up settings: what stops the provider, and with what message."""

import os

import pytest

from idp import create_app
from idp.config import ConfigError

from ..conftest import make_app


def config(tmp_path, **overrides):
    return {"ENV": "production", "ISSUER": "https://id.example.com",
            "SECRET_KEY": "s" * 40, "HASH_KEY": "h" * 40,
            "MFA_ENCRYPTION_KEY": "m" * 40, "KEYS_DIR": str(tmp_path / "keys"),
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


def test_first_start_generates_a_private_key_with_mode_0600(tmp_path):
    create_app(config(tmp_path))
    keys = list((tmp_path / "keys").glob("*.pem"))
    assert len(keys) == 1
    assert os.stat(keys[0]).st_mode & 0o777 == 0o600


def test_corrupt_key_file_is_a_clear_start_up_error(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "broken.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not a valid PEM private key"):
        create_app(config(tmp_path))


@pytest.mark.parametrize("name", ["SECRET_KEY", "HASH_KEY", "MFA_ENCRYPTION_KEY"])
def test_development_secrets_are_generated_once(tmp_path, signing_keys_dir, name):
    first = make_app(tmp_path, signing_keys_dir, **{name: ""})
    second = make_app(tmp_path, signing_keys_dir, **{name: ""})
    assert first.config[name] == second.config[name]
    assert len(first.config[name]) >= 32
    assert first.config["SECRET_KEY"] != first.config["HASH_KEY"]
