"""Settings: config/default.toml, then an IDP_CONFIG file, then IDP_* environment, then test
overrides."""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import NoSuchModuleError

from .oauth import outbound

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "default.toml"
DEV_ISSUER = "http://127.0.0.1:5000"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Secrets that development generates (into KEYS_DIR) when they are not set.
DEVELOPMENT_SECRETS = {"SECRET_KEY": "dev-secret-key", "HASH_KEY": "dev-hash-key",
                       "MFA_ENCRYPTION_KEY": "dev-mfa-encryption-key",
                       "KEYS_PASSPHRASE": "dev-keys-passphrase"}


# Whole-number settings and their bounds. Durations stop at ten years: past that, adding one
# to a date overflows. The authorization code's bound is RFC 6749 §4.1.2's ten minutes at most.
TEN_YEARS = 10 * 365 * 86400
WHOLE_NUMBER_RANGES = {
    **{name: (1, TEN_YEARS) for name in (
        "KEYS_REFRESH_SECONDS", "KEY_ROTATION_PERIOD_SECONDS", "KEY_PUBLICATION_LEAD_SECONDS",
        "ACCESS_TOKEN_TTL_SECONDS", "ID_TOKEN_TTL_SECONDS", "MFA_WINDOW_SECONDS",
        "MFA_PENDING_SECONDS", "REFRESH_TOKEN_IDLE_SECONDS", "REFRESH_TOKEN_ABSOLUTE_SECONDS",
        "SESSION_IDLE_TIMEOUT_SECONDS", "SESSION_ABSOLUTE_TIMEOUT_SECONDS",
        "JWKS_MAX_AGE_SECONDS", "LOGIN_WINDOW_SECONDS", "CLIENT_AUTH_WINDOW_SECONDS",
        "CLIENT_REGISTRATION_UNUSED_SECONDS")},
    "PRUNE_INTERVAL_SECONDS": (0, TEN_YEARS),  # 0: `idp prune` from cron instead
    # 0: strict rotation. Five minutes at most, as Hydra's rotation_grace_period.
    "REFRESH_TOKEN_REUSE_GRACE_SECONDS": (0, 300),
    **{name: (1, 1_000_000) for name in (
        "MFA_MAX_FAILURES", "LOGIN_MAX_FAILURES_PER_ACCOUNT", "LOGIN_MAX_FAILURES_PER_IP",
        "CLIENT_AUTH_MAX_FAILURES", "CLIENT_REGISTRATION_MAX_PER_IP")},
    "AUTHORIZATION_CODE_TTL_SECONDS": (1, 600),
    "PASSWORD_RESET_TTL_SECONDS": (60, 86400),  # a minute to a day
    "EMAIL_VERIFICATION_TTL_SECONDS": (60, 7 * 86400),  # a minute to a week
    "MAILED_LINK_MAX_REQUESTS": (1, 1_000),
    "ARGON2_TIME_COST": (1, 1000),
    "ARGON2_MEMORY_COST_KIB": (8, 4 * 1024 * 1024),  # 4 GiB a hash
    "ARGON2_PARALLELISM": (1, 255),
    "TRUSTED_PROXY_COUNT": (0, 16),
    "HSTS_SECONDS": (0, 2 * 365 * 86400),  # two years, the most browsers' preload lists ask
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CLIENT_REGISTRATION_MODES = ("off", "token", "open")


class ConfigError(Exception):
    """A setting that stops start-up; the message is one line for the operator."""


def load(app: Flask, test_config: dict[str, Any] | None = None) -> None:
    """Fill app.config in order of precedence and validate the result."""
    defaults = _read_toml(DEFAULTS_FILE)
    app.config.update(defaults)
    if extra := os.environ.get("IDP_CONFIG"):
        app.config.update(_checked_file_settings(Path(extra), defaults))
    for key, default in defaults.items():
        raw = os.environ.get(f"IDP_{key}")
        if raw is not None:
            app.config[key] = _coerce(key, raw, default)
    if test_config:
        app.config.update(test_config)
    _derive(app)
    validate(app.config)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _checked_file_settings(path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """An IDP_CONFIG file's settings, each a name config/default.toml knows, of its type: a
    misspelt name would otherwise be ignored without a word."""
    settings = _read_toml(path)
    for key, value in settings.items():
        if key not in defaults:
            raise ConfigError(f"config file {path}: {key} is not a setting "
                              "(config/default.toml lists them)")
        if type(value) is not type(defaults[key]):  # bool is an int to isinstance
            kind = {bool: "true or false", int: "a whole number"}.get(type(defaults[key]),
                                                                       "a string")
            raise ConfigError(f"config file {path}: {key} must be {kind}, not {value!r}")
    return settings


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"IDP_{key} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"IDP_{key} must be a whole number, not {raw!r}") from None
    return raw


def is_development(config: Any) -> bool:
    return config.get("ENV") == "development"


def _derive(app: Flask) -> None:
    """Fill the settings whose defaults depend on others, and Flask's own names."""
    config = app.config
    dev = is_development(config)
    if not config["ISSUER"] and dev:
        config["ISSUER"] = DEV_ISSUER
    config["ISSUER"] = config["ISSUER"].rstrip("/")
    keys_dir = Path(config["KEYS_DIR"])
    config["KEYS_DIR"] = str(keys_dir if keys_dir.is_absolute() else Path.cwd() / keys_dir)
    if Path(config["KEYS_DIR"]).exists() and not Path(config["KEYS_DIR"]).is_dir():
        raise ConfigError(f"IDP_KEYS_DIR {config['KEYS_DIR']} is not a folder")
    for name, filename in DEVELOPMENT_SECRETS.items():
        if not config[name] and dev:
            config[name] = _development_secret(Path(config["KEYS_DIR"]) / filename)
    if not config["DATABASE_URL"]:
        instance = Path.cwd() / "instance"
        instance.mkdir(exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{instance / 'idp.sqlite3'}"
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    # A liveness ping before each checkout survives a restarted database server; a SQLite
    # file has no server, and the ping would be one more statement on every request.
    # hide_parameters: a database error's message (logged, or shown by the CLI) never holds
    # the statement's values, which can be password, secret or token hashes.
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": not config["DATABASE_URL"].startswith("sqlite"),
        "hide_parameters": True}
    https = config["ISSUER"].startswith("https://")
    config.update(
        SESSION_COOKIE_NAME="idp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=config["SESSION_ABSOLUTE_TIMEOUT_SECONDS"],
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        WTF_CSRF_SSL_STRICT=https,
        PREFERRED_URL_SCHEME="https" if https else "http",
        # Derived once; app.py adds it to every response only where it is set.
        STRICT_TRANSPORT_SECURITY=(f"max-age={config['HSTS_SECONDS']}"
                                   if https and config["HSTS_SECONDS"] else None),
    )


def _development_secret(path: Path) -> str:
    """Development only: a random secret kept beside the keys, so that restarts keep sessions
    and client secrets."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def validate(config: Any) -> None:
    """Stop start-up, with one line, on settings that would make the provider unsafe."""
    issuer = config["ISSUER"]
    parts = urlsplit(issuer)
    if not issuer:
        raise ConfigError("IDP_ISSUER is not set: give the https URL relying parties will use")
    if parts.query or parts.fragment or not parts.netloc:
        raise ConfigError(f"IDP_ISSUER {issuer!r} must be a URL without query or fragment")
    if parts.scheme != "https":
        loopback_http = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not (is_development(config) and loopback_http):
            raise ConfigError(
                f"IDP_ISSUER {issuer!r} must use https "
                "(http is allowed only for a loopback issuer with IDP_ENV=development)"
            )
    try:
        make_url(config["DATABASE_URL"]).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError) as exc:
        raise ConfigError(f"IDP_DATABASE_URL is not a usable database URL: {exc}") from None
    if config["ENV"] not in {"production", "development"}:
        raise ConfigError(f"IDP_ENV must be production or development, not {config['ENV']!r}")
    for name in DEVELOPMENT_SECRETS:
        if len(config[name] or "") < 32:
            raise ConfigError(
                f"IDP_{name} must be set to a random string of at least 32 characters")
    previous = config["KEYS_PREVIOUS_PASSPHRASE"]
    if previous and (len(previous) < 32 or previous == config["KEYS_PASSPHRASE"]):
        raise ConfigError("IDP_KEYS_PREVIOUS_PASSPHRASE, when set, must be the former "
                          "IDP_KEYS_PASSPHRASE: at least 32 characters, and not the current one")
    for name, (low, high) in WHOLE_NUMBER_RANGES.items():
        if not low <= config[name] <= high:
            raise ConfigError(
                f"IDP_{name} must be between {low:,} and {high:,}, not {config[name]:,}")
    if len(set(config[name] for name in DEVELOPMENT_SECRETS)) < len(DEVELOPMENT_SECRETS):
        *names, last = (f"IDP_{name}" for name in DEVELOPMENT_SECRETS)
        raise ConfigError(f"{', '.join(names)} and {last} must differ")
    if config["REFRESH_TOKEN_IDLE_SECONDS"] > config["REFRESH_TOKEN_ABSOLUTE_SECONDS"]:
        raise ConfigError("IDP_REFRESH_TOKEN_IDLE_SECONDS must be at most "
                          "IDP_REFRESH_TOKEN_ABSOLUTE_SECONDS")
    if config["KEY_SIZE"] not in (2048, 3072, 4096):
        raise ConfigError(f"IDP_KEY_SIZE must be 2048, 3072 or 4096, not {config['KEY_SIZE']}")
    _validate_argon2(config)
    _validate_mail(config)
    _validate_client_registration(config)
    try:
        outbound.parse_networks(config["OUTBOUND_PRIVATE_NETWORKS"])
    except ValueError as error:
        raise ConfigError(f"IDP_OUTBOUND_PRIVATE_NETWORKS: {error}") from None
    from .models.client import problem_with_resource  # models/client.py imports this module

    for resource in config["SELF_REGISTERED_RESOURCES"].split():
        if problem := problem_with_resource(resource):
            raise ConfigError(f"IDP_SELF_REGISTERED_RESOURCES: {problem}")
    # RFC 6749 §3.3: a scope token is printable ASCII without space, " and \.
    if bad := [scope for scope in config["SELF_REGISTERED_SCOPES"].split()
               if not (scope.isascii() and scope.isprintable()) or {'"', "\\"} & set(scope)]:
        raise ConfigError(f"IDP_SELF_REGISTERED_SCOPES: {bad[0]!r} is not a scope (RFC 6749 §3.3)")
    if str(config["LOG_LEVEL"]).upper() not in LOG_LEVELS:
        raise ConfigError(f"IDP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                          f"not {config['LOG_LEVEL']!r}")
    # A next key signs only once every worker publishes it and no relying party can still
    # hold a JWKS cached from before: the lead time must cover both.
    shortest_lead = config["KEYS_REFRESH_SECONDS"] + config["JWKS_MAX_AGE_SECONDS"]
    if not shortest_lead <= config["KEY_PUBLICATION_LEAD_SECONDS"] <= config[
            "KEY_ROTATION_PERIOD_SECONDS"]:
        raise ConfigError(
            f"IDP_KEY_PUBLICATION_LEAD_SECONDS must be at least IDP_KEYS_REFRESH_SECONDS + "
            f"IDP_JWKS_MAX_AGE_SECONDS ({shortest_lead}) and at most "
            "IDP_KEY_ROTATION_PERIOD_SECONDS")


def _validate_argon2(config: Any) -> None:
    memory, passes = config["ARGON2_MEMORY_COST_KIB"], config["ARGON2_TIME_COST"]
    if memory < 8 * config["ARGON2_PARALLELISM"]:  # argon2 needs 8 KiB per lane
        raise ConfigError("IDP_ARGON2_MEMORY_COST_KIB must be at least 8 times "
                          "IDP_ARGON2_PARALLELISM")
    # OWASP's password storage cheat sheet: its weakest argon2id setting is 7 MiB with 5
    # passes, and each of its others spends at least as much memory times passes.
    if not is_development(config) and (memory < 7168 or memory * passes < 7168 * 5):
        raise ConfigError(
            f"argon2id at {memory:,} KiB and {passes} passes is below OWASP's minimum for "
            "production: IDP_ARGON2_MEMORY_COST_KIB at least 7,168 and, times "
            "IDP_ARGON2_TIME_COST, at least 35,840")


def _validate_client_registration(config: Any) -> None:
    mode = config["CLIENT_REGISTRATION"]
    if mode not in CLIENT_REGISTRATION_MODES:
        raise ConfigError("IDP_CLIENT_REGISTRATION must be one of "
                          f"{', '.join(CLIENT_REGISTRATION_MODES)}, not {mode!r}")
    if mode == "token" and len(config["CLIENT_REGISTRATION_TOKEN"]) < 32:
        raise ConfigError("IDP_CLIENT_REGISTRATION=token needs IDP_CLIENT_REGISTRATION_TOKEN, "
                          "a random string of at least 32 characters")


def _validate_mail(config: Any) -> None:
    """The URL is never repeated in a message: it can hold the relay's password."""
    if not config["MAIL_SMTP_URL"]:
        return
    try:
        parts = urlsplit(config["MAIL_SMTP_URL"])
        usable = parts.scheme in ("smtp", "smtps") and bool(parts.hostname) and (
            parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number, an unclosed IPv6 bracket
        usable = False
    if not usable or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("IDP_MAIL_SMTP_URL must be smtps://[user:password@]host[:port] or "
                          "smtp://[user:password@]host[:port]")
    address = config["MAIL_FROM"]
    if "@" not in address or not address.isprintable():
        raise ConfigError("IDP_MAIL_FROM must be set to an e-mail address when "
                          "IDP_MAIL_SMTP_URL is")
