"""`idp check`: the settings and registrations that weaken a deployment, each with the reason
and what to do. Start-up already refuses what cannot be safe (an http issuer in production,
missing secrets, argon2id below OWASP's floor); these are the choices an operator may make on
purpose, but should make knowingly.

An `error` is a deployment that is not fit for production; a `warning` is a weaker choice.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app

from .keys import RotationError
from .keys.policy import active_and_next
from .models import Client
from .models import db
from .models import utcnow
from .security import notices

ERROR, WARNING = "error", "warning"
LONG_ACCESS_TOKEN_SECONDS = 3600
OVERDUE = timedelta(days=1)  # beyond a day: not a rotation about to happen, but none at all


@dataclass(frozen=True)
class Finding:
    severity: str
    subject: str  # a setting (IDP_...) or a client (client CLIENT_ID)
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def findings() -> list[Finding]:
    return [*_settings(), *_signing_keys(), *_clients()]


def _settings() -> list[Finding]:
    config = current_app.config
    found = []

    def add(severity: str, name: str, message: str) -> None:
        found.append(Finding(severity, f"IDP_{name}", message))

    if config["ENV"] == "development":
        add(ERROR, "ENV", "development: secrets are generated into the keys folder and an http "
                          "issuer is allowed. Set IDP_ENV=production and give the secrets.")
    if grace := config["REFRESH_TOKEN_REUSE_GRACE_SECONDS"]:
        add(WARNING, "REFRESH_TOKEN_REUSE_GRACE_SECONDS",
            f"a refresh token copied and used within {grace} s of its first use is not "
            "detected as a replay (RFC 9700 §4.14.2).")
    if config["CLIENT_REGISTRATION"] == "open":
        add(WARNING, "CLIENT_REGISTRATION", "open: anyone may register a client. Users are "
                                            "warned on its consent page; 'token' asks for the "
                                            "initial access token.")
    if config["CLIENT_METADATA_DOCUMENTS"] and not config["CLIENT_METADATA_DOCUMENT_HOSTS"].split():
        add(WARNING, "CLIENT_METADATA_DOCUMENTS", "on for any host: any site may be a client "
                                                  "by publishing a metadata document. Users "
                                                  "are warned on its consent page; "
                                                  "IDP_CLIENT_METADATA_DOCUMENT_HOSTS narrows it.")
    if networks := config["OUTBOUND_PRIVATE_NETWORKS"].split():
        add(WARNING, "OUTBOUND_PRIVATE_NETWORKS",
            f"{' '.join(networks)}: a URL a client names (its metadata document, its "
            "jwks_uri, its request_uris, its sector_identifier_uri) may make the provider call "
            "there. Keep it to networks with nothing else to reach.")
    if (lifetime := config["ACCESS_TOKEN_TTL_SECONDS"]) > LONG_ACCESS_TOKEN_SECONDS:
        add(WARNING, "ACCESS_TOKEN_TTL_SECONDS",
            f"access tokens live {lifetime} s: a stolen one works that long, and revoking a "
            "client-credentials token means a deny-list entry for all that time.")
    if config["ISSUER"].startswith("https://") and not config["HSTS_SECONDS"]:
        add(WARNING, "HSTS_SECONDS", "0: the provider sends no Strict-Transport-Security. "
                                     "Make sure the proxy in front does.")
    if not config["PRUNE_INTERVAL_SECONDS"]:
        add(WARNING, "PRUNE_INTERVAL_SECONDS", "0: nothing deletes expired rows unless "
                                               "`idp prune` runs from cron.")
    if not notices.enabled():
        add(WARNING, "MAIL_SMTP_URL", "unset: users are not told of changes to how they sign "
                                      "in (ASVS 6.3.7), and cannot reset a forgotten password.")
    return found


def _signing_keys() -> list[Finding]:
    """A rotation overdue by more than OVERDUE: nothing rotates the keys (KEY_AUTO_ROTATE off
    and no cron), so one key signs for ever."""
    store = current_app.extensions["idp.keys"]
    store.refresh()  # as a worker would: an empty key table gets its first keys
    try:
        active, next_key = active_and_next(store.key_list())
    except RotationError as error:
        return [Finding(ERROR, "signing keys", f"{error}.")]
    due = store.policy.rotation_due_at(active, next_key)
    if due > utcnow() - OVERDUE:
        return []
    return [Finding(WARNING, "signing keys",
                    f"the rotation was due {due:%Y-%m-%d %H:%M} UTC and has not happened: with "
                    "IDP_KEY_AUTO_ROTATE=false, run idp keys rotate --if-due from cron.")]


def _clients() -> list[Finding]:
    found = []
    for client in db.session.execute(db.select(Client).order_by(Client.name)).scalars():
        subject = f"client {client.client_id}"
        if client.previous_secret_live:
            found.append(Finding(
                WARNING, subject,
                f"{client.name}: the secret it replaced still works until "
                f"{client.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC. Once every caller "
                "has the new one: idp clients end-previous-secret."))
        for uri in client.redirect_uris:
            if urlsplit(uri).scheme == "http" and urlsplit(uri).hostname == "localhost":
                found.append(Finding(
                    WARNING, subject,
                    f"{client.name}: redirect URI {uri} names localhost, which may resolve to "
                    "another address than the loopback (RFC 8252 §8.3): use 127.0.0.1 or "
                    "[::1]."))
    return found
