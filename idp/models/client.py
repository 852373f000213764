"""OAuth clients (relying parties and services), shaped for Authlib's ClientMixin."""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime
from datetime import timedelta
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import scope_to_list
from flask import current_app
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..config import LOOPBACK_HOSTS
from ..security import audit
from ..security.hashing import hash_secret
from ..security.hashing import secret_matches
from . import db
from . import utcnow
from .hot_read import HotRead

SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
KEY_AUTH_METHOD = "private_key_jwt"  # RFC 7523: an assertion signed by the client's own key
CONFIDENTIAL_AUTH_METHODS = (*SECRET_AUTH_METHODS, KEY_AUTH_METHOD)
# Where public clients are welcome too (they name themselves with client_id, RFC 6749 §2.3).
ANY_AUTH_METHOD = (*CONFIDENTIAL_AUTH_METHODS, "none")
# OIDC Core §8: how a client knows its users (oauth/subjects.py).
PUBLIC_SUBJECTS, PAIRWISE_SUBJECTS = SUBJECT_TYPES = ("public", "pairwise")
# How long a rotated-out secret may keep working, at most (`rotate-secret --keep-old-for`).
MAX_PREVIOUS_SECRET_SECONDS = 7 * 86400
# A use of the previous secret is audited at most this often per client and worker: enough to
# see which caller still has it, not a line per request.
PREVIOUS_SECRET_AUDIT_SECONDS = 60
_previous_secret_told: dict[str, float] = {}


class ClientRules(ClientMixin):
    """What Authlib asks of a client, answered from its registration alone. Shared by the model
    (admin CLI, account page) and by RegisteredClient, the read-only copy the protocol endpoints
    use."""

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def uses_keys(self) -> bool:
        return self.token_endpoint_auth_method == KEY_AUTH_METHOD

    @property
    def client_metadata(self) -> dict:
        """The registration metadata Authlib's endpoints read (RP-initiated logout)."""
        return {
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": list(self.grant_types),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "scope": self.scope,
            "userinfo_signed_response_alg": self.userinfo_signed_response_alg,
        }

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, so there is never a default.
        return None

    def allowed_audiences(self) -> list[str]:
        """The resources (RFC 8707) this client may ask tokens for: those registered for it,
        and those opened to it as a self-registered client."""
        return list(dict.fromkeys([*self.audiences, *self._opened("SELF_REGISTERED_RESOURCES")]))

    def _opened(self, setting: str) -> list[str]:
        """What the operator opens to every client that registered itself, at /register or by
        a metadata document (IDP_SELF_REGISTERED_RESOURCES, _SCOPES): an MCP client names its
        server as `resource`, and its server's scopes, and cannot be registered one by one."""
        return current_app.config[setting].split() if self.self_registered else []

    def default_audience(self) -> list[str]:
        """RFC 9068 §3: without a `resource` the token is for every registered audience, or,
        when none is registered, for the client itself."""
        return list(self.audiences) or [self.client_id]

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = {*scope_to_list(self.scope), *self._opened("SELF_REGISTERED_SCOPES")}
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §4.1.3: exact string comparison, no normalisation, no wildcards; with the
        # one exception it names, RFC 8252 §7.3, below.
        if redirect_uri in self.redirect_uris:
            return True
        portless = loopback_without_port(redirect_uri)
        return portless is not None and any(
            loopback_without_port(registered) == portless for registered in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        """The secret, or, while a rotation's overlap lasts, the one it replaced."""
        if secret_matches(self.secret_hash, client_secret):
            return True
        if self.previous_secret_live and secret_matches(self.previous_secret_hash,
                                                        client_secret):
            _audit_previous_secret_use(self.client_id)
            return True
        return False

    @property
    def previous_secret_live(self) -> bool:
        return (self.previous_secret_hash is not None
                and self.previous_secret_expires_at is not None
                and self.previous_secret_expires_at > utcnow())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            # Introspection is for confidential clients only (RFC 7662 §2.1).
            return method == "none" and endpoint != "introspection"
        # A client with keys has no secret, and a client with a secret has no keys.
        return method == KEY_AUTH_METHOD if self.uses_keys else method in SECRET_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class Client(db.Model, ClientRules):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 128 random bits in hex: an id that began with "-" (1 in 64 of base64url ones) would read
    # as an option on the command line (`idp clients delete -x...` fails).
    # A client known by its metadata document has that document's URL (up to 255 characters).
    client_id: Mapped[str] = mapped_column(
        db.String(255), unique=True, default=lambda: secrets.token_hex(16)
    )
    # HMAC-SHA-256 of a 256-bit random secret (security/hashing.py); None for a public client.
    secret_hash: Mapped[str | None] = mapped_column(db.String(64))
    # The secret a rotation replaced, accepted too until previous_secret_expires_at, so that
    # the callers can be given the new one without a moment when neither works.
    previous_secret_hash: Mapped[str | None] = mapped_column(db.String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column()
    name: Mapped[str] = mapped_column(db.String(200))
    redirect_uris: Mapped[list] = mapped_column(db.JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(db.JSON, default=list)
    # Where the client is told that a sign-in session it got an ID token in has ended
    # (OpenID Connect Back-Channel Logout 1.0); None: it is not told.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(db.Text)
    grant_types: Mapped[list] = mapped_column(db.JSON, default=lambda: ["authorization_code"])
    # Space-separated scopes this client may be granted.
    scope: Mapped[str] = mapped_column(db.Text, default="openid profile email")
    # "client_secret_basic" or "client_secret_post" (either is accepted; the one the client
    # registered with is the one a read of its registration names), "private_key_jwt" (an assertion
    # signed by one of `jwks`), or "none" for public clients.
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        db.String(40), default="client_secret_basic"
    )
    # The public keys of a private_key_jwt client: a JWKS registered inline, or the URL where
    # the client publishes it (oauth/client_keys.py); one of the two, None for the others.
    jwks: Mapped[dict | None] = mapped_column(db.JSON)
    jwks_uri: Mapped[str | None] = mapped_column(db.Text)
    # The one algorithm its assertions are signed with (OIDC Dynamic Registration §2; FAPI 2.0
    # wants PS256, ES256 or Ed25519); None: any of those offered.
    token_endpoint_auth_signing_alg: Mapped[str | None] = mapped_column(db.String(10))
    # First-party clients are the operator's own apps: the consent page is skipped.
    first_party: Mapped[bool] = mapped_column(default=False)
    # Registered by the client itself at /register (RFC 7591), not by the operator: its name
    # and URIs are its own claims, which the consent page says.
    self_registered: Mapped[bool] = mapped_column(default=False)
    # RFC 7592: the keyed hash of the token a self-registered client manages itself with.
    registration_token_hash: Mapped[str | None] = mapped_column(db.String(64))
    # A client whose client_id is the URL of its metadata document (oauth/metadata_documents.py):
    # when the document must be fetched again. None for every other client.
    metadata_document_expires_at: Mapped[datetime | None] = mapped_column()
    # "public": users' `sub` is their own identifier; "pairwise": one of this client's sector,
    # the host its redirect URIs share, set at registration and kept (oauth/subjects.py).
    subject_type: Mapped[str] = mapped_column(db.String(10), default=PUBLIC_SUBJECTS)
    sector_identifier: Mapped[str | None] = mapped_column(db.Text)
    # Where a pairwise client whose redirect URIs are on several hosts lists them all
    # (oauth/sectors.py); its host is then the sector. None: the redirect URIs' one host.
    sector_identifier_uri: Mapped[str | None] = mapped_column(db.Text)
    # The client's privacy policy and terms of service (RFC 7591 §2), linked from the consent
    # page so that users can read them before they allow it.
    policy_uri: Mapped[str | None] = mapped_column(db.Text)
    tos_uri: Mapped[str | None] = mapped_column(db.Text)
    # Where the client's logo was fetched from (OIDC Dynamic Registration §2), and the image as
    # a data: URL (oauth/logos.py), shown on the consent page. Loaded only there: it is the
    # one column of the row that may be large.
    logo_uri: Mapped[str | None] = mapped_column(db.Text)
    logo: Mapped[str | None] = mapped_column(db.Text, deferred=True)
    # Users must sign in with a second factor (enrolling one first if they have none).
    require_mfa: Mapped[bool] = mapped_column(default=False)
    # Authorization requests must come pushed to /par (RFC 9126 §6), never in the browser's URL.
    require_par: Mapped[bool] = mapped_column(default=False)
    # Every token request must carry a DPoP proof (RFC 9449 §5.2, dpop_bound_access_tokens).
    require_dpop: Mapped[bool] = mapped_column(default=False)
    # Where the client publishes request objects for `request_uri` to name (OIDC Dynamic
    # Registration §2): no other URI is fetched (oauth/request_objects.py).
    request_uris: Mapped[list] = mapped_column(db.JSON, default=list)
    # Authorization requests must come as request objects signed by the client (RFC 9101 §10.5).
    require_signed_request_object: Mapped[bool] = mapped_column(default=False)
    # The one algorithm the client signs request objects with; None: any of those offered.
    request_object_signing_alg: Mapped[str | None] = mapped_column(db.String(10))
    # "RS256": /userinfo answers with a JWT the provider signs (OIDC Core §5.3.2); None: JSON.
    userinfo_signed_response_alg: Mapped[str | None] = mapped_column(db.String(10))
    # RFC 8707 resource indicators this client may ask for; they become the tokens' `aud`.
    audiences: Mapped[list] = mapped_column(db.JSON, default=list)
    # A resource server may introspect tokens issued to any client, not just its own.
    introspect_any: Mapped[bool] = mapped_column(default=False)
    # Access tokens issued to this client up to this instant are revoked (`idp tokens revoke`).
    tokens_revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @classmethod
    def by_client_id(cls, client_id: str) -> Client | None:
        stmt = db.select(cls).filter_by(client_id=client_id)
        return db.session.execute(stmt).scalar_one_or_none()

    def set_secret(self, keep_old_for: int = 0) -> str:
        """Generate a new secret (256 bits), store its hash and return it to show once. The
        secret it replaces keeps working `keep_old_for` seconds more; any earlier one, none."""
        secret = secrets.token_urlsafe(32)
        if keep_old_for and self.secret_hash:
            self.previous_secret_hash = self.secret_hash
            self.previous_secret_expires_at = utcnow() + timedelta(seconds=keep_old_for)
        else:
            self.end_previous_secret()
        self.secret_hash = hash_secret(secret)
        return secret

    def end_previous_secret(self) -> None:
        self.previous_secret_hash = self.previous_secret_expires_at = None

    def settle_sector(self) -> str | None:
        """A pairwise client's sector (OIDC Core §8.1) is the host of its
        sector_identifier_uri (which the caller has checked lists its redirect URIs,
        oauth/sectors.py), or else the host its redirect URIs share: set at registration,
        then held, since its users' subjects depend on it. Returns what is wrong, or None."""
        if self.subject_type != PAIRWISE_SUBJECTS:
            return None
        sector = (urlsplit(self.sector_identifier_uri).hostname if self.sector_identifier_uri
                  else sector_of(self.redirect_uris))
        if sector is None:
            return ("a pairwise client needs redirect URIs all on one host, its sector, or a "
                    "sector_identifier_uri that lists them")
        if self.sector_identifier is None:
            self.sector_identifier = sector
        elif sector != self.sector_identifier:
            return (f"a pairwise client's redirect URIs must stay on {self.sector_identifier}: "
                    "the subjects its users have depend on it")
        return None


def sector_of(redirect_uris) -> str | None:
    """The host all these redirect URIs share (for an app's own scheme, the scheme), or
    None."""
    sectors = {urlsplit(uri).hostname or urlsplit(uri).scheme for uri in redirect_uris}
    return sectors.pop() if len(sectors) == 1 else None


# RFC 8252 §7.3: a native app listens on a loopback IP port the OS picks when it starts, so a
# registered http://127.0.0.1/cb (or http://[::1]/cb) matches that URI with any port. Only the
# IP literals: `localhost` may resolve elsewhere (§8.3), and its registrations match exactly.
# The host and port must be followed by the path, the query or nothing: "127.0.0.1.evil.test"
# or "127.0.0.1:80@evil.test" never match.
_LOOPBACK_IP_REDIRECT = re.compile(r"http://(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?(?=[/?]|\Z)")


def loopback_without_port(uri: str) -> str | None:
    """`uri` without its port if it is a loopback IP redirect (RFC 8252 §7.3), else None."""
    match = _LOOPBACK_IP_REDIRECT.match(uri)
    if match is None or (match[2] is not None and not 0 < int(match[2]) < 65536):
        return None
    return f"http://{match[1]}{uri[match.end():]}"


def problem_with_resource(value: str) -> str | None:
    """RFC 8707 §2: a resource indicator is an absolute URI without a fragment."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if not parts or not parts.scheme or not parts.netloc or "#" in value:
        return f"{value!r} is not an absolute URI without a fragment"
    return None


def problem_with_client_uri(uri: str) -> str | None:
    """What is wrong with a URI a client registers (redirect, post-logout, back-channel, keys),
    after "the URI": RFC 9700 §2.6, §4.1.3 and RFC 8252: https; http only on loopback; a
    private-use scheme (with a dot, e.g. com.example.app:/cb) for native apps; never a fragment
    or user information."""
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "is not a URI"
    if not uri.isprintable() or any(character.isspace() for character in uri):
        return "must not contain spaces or control characters"
    if not parts.scheme:
        return "is not an absolute URI"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment"
    if "@" in parts.netloc:
        return "must not contain user information"
    if parts.scheme == "https":
        return None if parts.hostname else "has no host"
    if parts.scheme == "http":
        return None if parts.hostname in LOOPBACK_HOSTS else "uses http on a non-loopback host"
    if "." not in parts.scheme:
        return "uses a scheme that is neither https nor a private-use scheme like com.example.app"
    return None


def problem_with_web_url(uri: str) -> str | None:
    """The same, for a URL the provider calls or shows a user: https (http on loopback)."""
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "is not a URI"
    return problem_with_client_uri(uri) if scheme in ("https", "http") else "is not an https URL"


MAX_REQUEST_URI_LENGTH = 512  # OIDC Core §6.2


def problem_with_request_uri(uri: str) -> str | None:
    """The same, for a URI where the client publishes request objects (request_uris, OIDC
    Dynamic Registration §2): https, at most MAX_REQUEST_URI_LENGTH characters; a fragment is
    allowed, as it may carry the hash of the object (OIDC Core §6.2)."""
    if len(uri) > MAX_REQUEST_URI_LENGTH:
        return f"is longer than {MAX_REQUEST_URI_LENGTH} characters"
    if not uri.startswith("https://"):
        return "is not an https URL"
    if not uri.isprintable() or any(character.isspace() for character in uri):
        return "must not contain spaces or control characters"
    return problem_with_client_uri(uri.split("#", 1)[0])


def _audit_previous_secret_use(client_id: str) -> None:
    now, last = time.monotonic(), _previous_secret_told.get(client_id)
    if last is None or now - last >= PREVIOUS_SECRET_AUDIT_SECONDS:
        _previous_secret_told[client_id] = now
        audit.log("client_auth.previous_secret_used", client_id=client_id)


class RegisteredClient(ClientRules):
    """A client as registered at this moment, read afresh for each request by the protocol
    endpoints (Authlib's query_client, access-token checks), so that a change made through the
    CLI holds from the next request on. Read without the ORM (hot_read.py): it is the token
    endpoint's one query. Read-only: a request can never write a client back."""

    _BY_CLIENT_ID = HotRead(select(*(column for column in Client.__table__.c
                                     if column.key != "logo"))
                            .where(Client.__table__.c.client_id == bindparam("client_id")))
    _LOGO = HotRead(select(Client.__table__.c.logo)
                    .where(Client.__table__.c.client_id == bindparam("client_id")))

    def __init__(self, row: dict):
        for name, value in row.items():
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("RegisteredClient is read-only; change a client through Client")

    # The client last built for each client_id in this worker, with the raw row it was built
    # from. The row is still read on every request; only when it comes back unchanged is the
    # client reused, which saves decoding its JSON columns and building it again (about 30 µs
    # of a token or introspection request). Safe to share across requests: it is read-only.
    _BUILT: dict[str, tuple[tuple, RegisteredClient]] = {}
    BUILT_MAX = 1024  # bounds a worker's memory however many clients register

    @classmethod
    def find(cls, client_id: str) -> RegisteredClient | None:
        row = cls._BY_CLIENT_ID.raw_row(db.engine, client_id=client_id)
        if row is None:
            return None
        built = cls._BUILT.get(client_id)
        if built is not None and built[0] == row:
            return built[1]
        client = cls(cls._BY_CLIENT_ID.decode(db.engine, row))
        if len(cls._BUILT) >= cls.BUILT_MAX:
            cls._BUILT.clear()  # rare, and unlike evicting one entry, safe between threads
        cls._BUILT[client_id] = (row, client)
        return client

    @property
    def logo(self) -> str | None:
        """The logo as a data: URL, read when asked for (the consent page)."""
        row = self._LOGO.one_or_none(db.engine, client_id=self.client_id)
        return row["logo"] if row is not None else None
