"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, the way MCP
clients meet a provider they have never seen): a client whose client_id is an https URL where
it publishes its own metadata. Off unless IDP_CLIENT_METADATA_DOCUMENTS;
IDP_CLIENT_METADATA_DOCUMENT_HOSTS may narrow it to some hosts.

The first request naming such a client_id fetches the document (outbound.fetch_from_outside:
https only, public addresses only, no redirects, at most MAX_BYTES in TIMEOUT_SECONDS). It is
checked as a registration at /register is (registration.client_from, with the same limits
on what a client may be), and further:

- its client_id must be the URL it was fetched from, character for character (§4.1);
- it may not hold a shared secret, nor ask to authenticate with one (§4.1): a client that
  authenticates does so with private_key_jwt, its keys inline or at a jwks_uri (fetched the
  same guarded way as the document).

The client is then stored as a row like any other, so that codes, tokens and consents name
it, with when the document must be fetched again: its Cache-Control max-age, held between
MIN_CACHE_SECONDS and MAX_CACHE_SECONDS. Each later fetch replaces what the row says. A
document that is gone (4xx) or no longer passes stops the client at the next request after
that time. One whose server is down (unreachable, 5xx, 429) keeps its last metadata up to
STALE_MAX_SECONDS more, so that a brief outage of the client's web server does not sign its
users out; so does a known client's when its refetch is over the caller's address's limit.
A failure is remembered for RETRY_SECONDS in each worker, so that a client that is down, or a
client_id that was never one, does not make every request wait on a fetch.

The consent page treats such a client as self-registered, and names the host its metadata
came from (§6.3).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError
from flask import current_app
from flask import request
from sqlalchemy.exc import IntegrityError

from ..models import Client
from ..models import RegisteredClient
from ..models import db
from ..models import utcnow
from ..models.client import KEY_AUTH_METHOD
from ..security import audit
from ..security import rate_limit
from . import outbound
from . import registration

MAX_CLIENT_ID_LENGTH = 255  # the column's width; the draft sets none
MAX_BYTES = 5 * 1024  # the draft's advice (§6.6)
TIMEOUT_SECONDS = 5
MIN_CACHE_SECONDS = 300
MAX_CACHE_SECONDS = 86400
DEFAULT_CACHE_SECONDS = 3600  # a document served without max-age
RETRY_SECONDS = 10
STALE_MAX_SECONDS = 3600  # how long past its time a document holds while its server is down
METHODS = ("none", KEY_AUTH_METHOD)
FORGET_FAILURES_OVER = 10_000  # distinct client_ids whose failure a worker remembers


class MetadataDocumentUnusable(InvalidClientError):
    """The client_id names a metadata document that cannot be used: the description says why.
    At /authorize this is an error page, never a redirect: no redirect URI is trusted."""

    status_code = 400


class TooManyFetches(MetadataDocumentUnusable):
    status_code = 429

    def __init__(self):
        super().__init__("Too many client metadata documents were fetched for this address; "
                         "try again later.")


def enabled() -> bool:
    return current_app.config["CLIENT_METADATA_DOCUMENTS"]


def names_a_document(client_id: str) -> bool:
    """Only a metadata document's client_id is a URL: others are random hex."""
    return client_id.startswith("https://")


def client_for(client_id: str) -> RegisteredClient | None:
    """The client whose metadata document is at `client_id`, fetched and stored if it is not
    known or its time is up; MetadataDocumentUnusable says why there is none. None while
    documents are off: the clients they made before are stopped too."""
    if not enabled():
        return None
    stored = RegisteredClient.find(client_id)
    # metadata_document_expires_at is None for a client registered another way.
    if stored is not None and (stored.metadata_document_expires_at is None
                               or stored.metadata_document_expires_at > utcnow()):
        return stored
    failure = _failed.get(client_id)
    if failure is None or time.monotonic() >= failure.retry_at:
        try:
            client, max_age = _fetch(client_id)
        except TooManyFetches:
            # Fetched again only as its time is up: what it said holds a while longer, as
            # while its server is down, rather than refuse a user of a known client.
            kept = _usable_stale(stored)
            audit.log("client_metadata.throttled", client_id=client_id, kept_for_now=kept or None)
            if kept:
                return stored
            raise
        except (outbound.FetchFailed, OAuth2Error) as error:
            failure = _remember_failure(client_id, error, stale=_usable_stale(stored))
        else:
            _failed.pop(client_id, None)
            _store(client_id, client, utcnow() + timedelta(seconds=max_age), new=stored is None)
            return RegisteredClient.find(client_id)
    if failure.transient and _usable_stale(stored):
        return stored
    raise MetadataDocumentUnusable(failure.reason)


@dataclass(frozen=True)
class Failure:
    retry_at: float  # time.monotonic()
    reason: str
    transient: bool  # the server was down, rather than the document refused


_failed: dict[str, Failure] = {}


def _remember_failure(client_id: str, error: Exception, stale: bool) -> Failure:
    transient = isinstance(error, outbound.FetchFailed) and error.transient
    failure = Failure(time.monotonic() + RETRY_SECONDS, _reason(error), transient)
    if len(_failed) > FORGET_FAILURES_OVER:
        _failed.clear()
    _failed[client_id] = failure
    audit.log("client_metadata.refused", client_id=client_id, reason=failure.reason,
              kept_for_now=(transient and stale) or None)
    return failure


def _usable_stale(stored: RegisteredClient | None) -> bool:
    """A client known from a document fetched before, while its server is down: what the
    document said holds up to STALE_MAX_SECONDS past its time, as a client's keys do."""
    return stored is not None and utcnow() < stored.metadata_document_expires_at + timedelta(
        seconds=STALE_MAX_SECONDS)


def problem_with_client_id(client_id: str) -> str | None:
    """§3: an https URL with a host and a path, no dot segments, no fragment and no user
    name or password (its length is checked before: server.could_be_client_id); and, where
    the operator names hosts, on one of them."""
    try:
        parts = urlsplit(client_id)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a URL"
    if not parts.hostname or not parts.path:
        return "must name a host and a path"
    if parts.fragment or "#" in client_id or "@" in parts.netloc:
        return "may have no fragment, user name or password"
    if {".", ".."} & set(parts.path.split("/")):
        return "may have no . or .. path segments"
    hosts = current_app.config["CLIENT_METADATA_DOCUMENT_HOSTS"].split()
    if hosts and not any(_host_matches(parts.hostname, host) for host in hosts):
        return "is not on a host this provider accepts clients from"
    return None


def _host_matches(hostname: str, pattern: str) -> bool:
    """`example.com` is that host only; `.example.com` any host under it."""
    pattern = pattern.lower()
    return hostname.endswith(pattern) if pattern.startswith(".") else hostname == pattern


def _fetch(client_id: str) -> tuple[Client, int]:
    """The client the document describes, not stored, and how long it may be kept."""
    if problem := problem_with_client_id(client_id):
        raise registration.InvalidClientMetadata(f"The client_id URL {problem}.")
    # A fetch registers a client: it counts against the address as a registration at
    # /register does, so that nobody makes the provider fetch URL after URL.
    config = current_app.config
    if rate_limit.count_attempt(f"register:ip:{request.remote_addr}",
                                config["LOGIN_WINDOW_SECONDS"]) > config[
                                    "CLIENT_REGISTRATION_MAX_PER_IP"]:
        raise TooManyFetches()
    response = outbound.fetch_from_outside(client_id, max_bytes=MAX_BYTES,
                                           timeout=TIMEOUT_SECONDS)
    try:
        document = json.loads(response.body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the parser's depth
        raise outbound.FetchFailed("the document is not JSON") from None
    return _client_from(client_id, document), _max_age(response.getheader("Cache-Control"))


def _client_from(client_id: str, document) -> Client:
    if not isinstance(document, dict):
        raise registration.InvalidClientMetadata("The document must be a JSON object.")
    if document.get("client_id") != client_id:
        raise registration.InvalidClientMetadata("The document's client_id must be its URL.")
    if {"client_secret", "client_secret_expires_at"} & document.keys():
        raise registration.InvalidClientMetadata("A metadata document may hold no secret.")
    method = document.get("token_endpoint_auth_method", "none")
    if method not in METHODS:
        raise registration.InvalidClientMetadata(
            "token_endpoint_auth_method must be none or private_key_jwt: a metadata document "
            "cannot share a secret.")
    for name in ("backchannel_logout_uri", "sector_identifier_uri"):
        if name in document:  # URLs the provider itself would call
            raise registration.InvalidClientMetadata(
                f"{name} is not accepted in a metadata document.")
    # A logo is not fetched for a document, which is fetched when a sign-in starts: one more
    # fetch would make the user wait, and one that failed would refuse the client.
    described = {name: value for name, value in document.items() if name != "logo_uri"}
    client, _ = registration.client_from({**described, "token_endpoint_auth_method": method},
                                         with_token=False)
    return client


def _max_age(cache_control: str | None) -> int:
    """How long the document may be kept, by its Cache-Control, within this provider's bounds."""
    directives = (cache_control or "").lower()
    if "no-store" in directives or "no-cache" in directives:
        return MIN_CACHE_SECONDS
    found = re.search(r"(?:^|[,\s])max-age=(\d{1,10})\b", directives)
    seconds = int(found.group(1)) if found else DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(seconds, MAX_CACHE_SECONDS))


def _store(client_id: str, client: Client, expires_at, new: bool) -> None:
    """Insert or replace the client's row, on a connection of its own: the request's session
    may hold changes of its own, which this must neither commit nor roll back."""
    values = {name: getattr(client, name) for name in registration.DESCRIBED_FIELDS}
    values.update(token_endpoint_auth_method=client.token_endpoint_auth_method,
                  subject_type=client.subject_type, sector_identifier=client.sector_identifier,
                  metadata_document_expires_at=expires_at, updated_at=utcnow())
    table = Client.__table__
    replace = table.update().where(table.c.client_id == client_id,
                                   table.c.metadata_document_expires_at.is_not(None))
    try:
        with db.engine.begin() as connection:
            if not connection.execute(replace.values(**values)).rowcount:
                connection.execute(table.insert().values(client_id=client_id,
                                                         self_registered=True, **values))
    except IntegrityError:  # another worker stored it first: store this over it
        with db.engine.begin() as connection:
            connection.execute(replace.values(**values))
    if new:
        audit.log("client_metadata.registered", client_id=client_id)


def _reason(error: Exception) -> str:
    if isinstance(error, OAuth2Error):
        return error.description
    return f"Its metadata document could not be fetched: {error}."
