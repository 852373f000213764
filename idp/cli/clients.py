"""`idp clients ...`: relying parties, services and resource servers."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup

from ..keys import ALGORITHM
from ..models import Client
from ..models import db
from ..models.client import KEY_AUTH_METHOD
from ..models.client import MAX_PREVIOUS_SECRET_SECONDS
from ..models.client import PUBLIC_SUBJECTS
from ..models.client import SUBJECT_TYPES
from ..models.client import problem_with_request_uri
from ..models.client import problem_with_resource
from ..models.client import problem_with_web_url
from ..oauth import client_assertion
from ..oauth import client_keys
from ..oauth import device
from ..oauth import logos
from ..oauth import sectors
from ..security import audit
from . import GRANT_TYPES
from . import Duration
from . import check_text
from . import commit
from . import emit
from . import get_client
from . import json_option
from . import uris_option_callback

# Grants through which a user signs in (and so may get refresh tokens, and be signed out).
USER_GRANTS = ("authorization_code", device.GRANT_TYPE)


@click.group(cls=AppGroup)
def clients():
    """Manage OAuth clients (relying parties and services)."""


def client_view(client: Client) -> dict:
    """Everything about a client except its secret hash, which never leaves the database."""
    return {"client_id": client.client_id, "name": client.name,
            "type": "public" if client.is_public else "confidential",
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "key_ids": [key.get("kid") for key in (client.jwks or {}).get("keys", [])],
            "jwks_uri": client.jwks_uri,
            "token_endpoint_auth_signing_alg": client.token_endpoint_auth_signing_alg,
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "grant_types": client.grant_types, "scope": client.scope,
            "audiences": client.audiences, "introspect_any": client.introspect_any,
            "require_mfa": client.require_mfa, "require_par": client.require_par,
            "require_dpop": client.require_dpop,
            "request_uris": client.request_uris,
            "require_signed_request_object": client.require_signed_request_object,
            "request_object_signing_alg": client.request_object_signing_alg,
            "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
            "first_party": client.first_party, "self_registered": client.self_registered,
            # A client known by its metadata document: when the document is fetched again.
            "metadata_document_expires_at": client.metadata_document_expires_at,
            "subject_type": client.subject_type, "sector_identifier": client.sector_identifier,
            "sector_identifier_uri": client.sector_identifier_uri,
            "policy_uri": client.policy_uri, "tos_uri": client.tos_uri,
            "logo_uri": client.logo_uri,
            "created_at": client.created_at,
            "rotation_overlap_ends_at": (client.previous_secret_expires_at
                                           if client.previous_secret_live else None)}


def client_text(client: Client) -> str:
    # str(): a key registered without a kid is listed as None.
    return "\n".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in client_view(client).items())


def check_client(client: Client) -> None:
    check_text(client.name, "--name", 200)
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise click.ClickException("the authorization_code grant needs at least one --redirect-uri")
    if client.is_public and "client_credentials" in client.grant_types:
        raise click.ClickException("a public client cannot use client_credentials")
    if client.is_public and client.introspect_any:
        raise click.ClickException("a public client cannot introspect tokens")
    signs_users_in = any(grant in client.grant_types for grant in USER_GRANTS)
    if client.backchannel_logout_uri and not signs_users_in:
        raise click.ClickException("--backchannel-logout-uri is for clients that sign users in: "
                                   "add --grant-type authorization_code")
    if "refresh_token" in client.grant_types:
        if not signs_users_in:
            raise click.ClickException("refresh tokens come from the authorization_code or "
                                       "device_code grant: add one")
        if "offline_access" not in client.scope.split():
            raise click.ClickException("the refresh_token grant needs offline_access in --scope")
    if (client.request_uris or client.require_signed_request_object
            or client.request_object_signing_alg or client.token_endpoint_auth_signing_alg) \
            and not client.uses_keys:
        raise click.ClickException("assertions and request objects are verified with the "
                                   "client's keys: give --jwks-file or --jwks-uri")
    if client.sector_identifier_uri and (problem := sectors.problem_with_sector_uri(
            client.sector_identifier_uri, client.redirect_uris)):
        raise click.ClickException(f"--sector-identifier-uri {problem}")
    if problem := client.settle_sector():
        raise click.ClickException(problem)


def validate_audience(ctx, param, values):
    for value in values or ():
        if problem := problem_with_resource(value):
            raise click.BadParameter(problem)
    return list(dict.fromkeys(values)) if values else values


redirect_uri_option = click.option("--redirect-uri", "redirect_uris", multiple=True,
                                   callback=uris_option_callback,
                                   help="Registered redirect URI (repeatable).")
logout_uri_option = click.option("--post-logout-redirect-uri", "logout_uris", multiple=True,
                                 callback=uris_option_callback,
                                 help="Registered post-logout URI (repeatable).")


def validate_web_url(ctx, param, value):
    """An https URL (http on loopback, for development), without a fragment; "" (on update)
    removes it."""
    if value and (problem := problem_with_web_url(value)):
        raise click.BadParameter(f"{value!r} {problem}")
    return value


def validate_https_url(ctx, param, value):
    if value and urlsplit(value).scheme != "https":
        raise click.BadParameter(f"{value!r} is not an https URL")
    return validate_web_url(ctx, param, value)


sector_uri_option = click.option(
    "--sector-identifier-uri", callback=validate_https_url,
    help="For a pairwise client with redirect URIs on several hosts: an https URL serving a "
         "JSON array that lists them all (OIDC Core §8.1), fetched now; its host is the "
         "sector. \"\" removes it.")
backchannel_option = click.option(
    "--backchannel-logout-uri", callback=validate_web_url,
    help="Where the client is told, server to server, that a user's sign-in session ended "
         "(OIDC Back-Channel Logout); \"\" removes it.")


def documents_options(command):
    """The client's privacy policy and terms, linked from the consent page."""
    for name, what in (("--tos-uri", "terms of service"), ("--policy-uri", "privacy policy")):
        command = click.option(name, callback=validate_web_url,
                               help=f"The page of the client's {what}, linked from the "
                                    "consent page; \"\" removes it.")(command)
    return command


logo_option = click.option(
    "--logo-uri", callback=validate_https_url,
    help="An https URL of the client's logo (PNG, JPEG, GIF or WebP, at most 48 KiB and "
         "2048 pixels a side), fetched now and shown on the consent page; \"\" removes it.")


def set_logo(client: Client, uri: str) -> None:
    """Fetch the logo at `uri` now (oauth/logos.py); "" removes it."""
    client.logo_uri, client.logo = uri or None, None
    if uri:
        try:
            client.logo = logos.fetch_logo(uri)
        except logos.LogoUnusable as problem:
            raise click.ClickException(f"--logo-uri {problem}") from None


def read_jwks(ctx, param, path):
    """The client's public keys for private_key_jwt, checked (client_assertion.py)."""
    if path is None:
        return None
    try:
        jwks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"{path} is not a readable JSON file ({error})") from None
    if problem := client_keys.problem_with_jwks(jwks):
        raise click.BadParameter(f"{path}: {problem}")
    return jwks


def read_jwks_uri(ctx, param, uri):
    """Where the client publishes its keys: https (http on loopback), and serving a valid
    JWKS now, so that a typo fails here rather than at the client's first token request."""
    if uri is None:
        return None
    validate_web_url(ctx, param, uri)
    try:
        client_keys.fetch(uri)
    except client_keys.KeysUnavailable as error:
        raise click.BadParameter(f"{uri} does not serve usable keys now ({error})") from None
    return uri


def jwks_option(command):
    command = click.option(
        "--token-endpoint-auth-signing-alg", type=click.Choice([*client_assertion.ALGORITHMS,
                                                                "any"]),
        help="The one algorithm the client signs its assertions with (FAPI 2.0 wants PS256, "
             "ES256 or Ed25519); any: each of those offered.")(command)
    command = click.option(
        "--jwks-uri", callback=read_jwks_uri,
        help="Where the client publishes its public keys (JWKS), fetched and cached; it "
             "rotates them there. Instead of --jwks-file.")(command)
    return click.option(
        "--jwks-file", "jwks", callback=read_jwks, type=click.Path(dir_okay=False),
        help="A JSON file of the client's public keys (JWKS): it authenticates with "
             "private_key_jwt (RFC 7523), a JWT signed by its own key, instead of a "
             "secret.")(command)


def use_keys(client: Client, jwks: dict | None, jwks_uri: str | None) -> None:
    """The client authenticates with private_key_jwt, by these keys, and has no secret."""
    if jwks and jwks_uri:
        raise click.UsageError("--jwks-file and --jwks-uri exclude each other")
    if client.is_public:
        raise click.UsageError("a public client does not authenticate: it has no keys")
    client.jwks, client.jwks_uri = jwks, jwks_uri
    client.token_endpoint_auth_method = KEY_AUTH_METHOD
    client.secret_hash = None
    client.end_previous_secret()


grant_option = click.option(
    "--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES),
    callback=lambda ctx, param, values: tuple(
        device.GRANT_TYPE if value == "device_code" else value for value in values),
    help="Allowed grant (repeatable); device_code: RFC 8628, for devices that cannot show a "
         "sign-in page.")
audience_option = click.option(
    "--audience", "audiences", multiple=True, callback=validate_audience,
    help="Resource (RFC 8707) the client may ask tokens for; it becomes `aud` (repeatable).")
introspect_option = click.option(
    "--introspect-any/--no-introspect-any", default=None,
    help="A resource server: may introspect tokens issued to any client.")
require_par_option = click.option(
    "--require-par/--no-require-par", default=None,
    help="Authorization requests must be pushed to /par (RFC 9126), never sent in the URL.")
require_dpop_option = click.option(
    "--require-dpop/--no-require-dpop", default=None,
    help="Every token request must carry a DPoP proof (RFC 9449), so that every access token "
         "is bound to the client's key.")


def validate_request_uris(ctx, param, values):
    for value in values or ():
        if problem := problem_with_request_uri(value):
            raise click.BadParameter(f"{value!r} {problem}")
    return list(dict.fromkeys(values)) if values else values


def _named_alg(value: str | None) -> str | None:
    return None if value in (None, "any") else value


def request_objects_options(command):
    """Signed request objects (RFC 9101) and signed UserInfo (OIDC Core §5.3.2)."""
    command = click.option(
        "--signed-userinfo/--no-signed-userinfo", default=None,
        help="/userinfo answers this client with a JWT signed RS256 by the provider.")(command)
    command = click.option(
        "--require-signed-request-object/--no-require-signed-request-object", default=None,
        help="Authorization requests must be request objects signed by the client's keys "
             "(RFC 9101), never plain parameters.")(command)
    command = click.option(
        "--request-object-signing-alg", type=click.Choice([*client_assertion.ALGORITHMS, "any"]),
        help="The one algorithm the client signs request objects with (FAPI 2.0 wants PS256, "
             "ES256 or Ed25519); any: each of those offered.")(command)
    return click.option(
        "--request-uri", "request_uris", multiple=True, callback=validate_request_uris,
        help="An https URL where the client publishes request objects for request_uri to "
             "name (repeatable); no other is fetched.")(command)


require_mfa_option = click.option(
    "--require-mfa/--no-require-mfa", default=None,
    help="Users must sign in with a second factor (and enroll one if they have none).")


@clients.command("create")
@click.option("--name", required=True)
@redirect_uri_option
@click.option("--public", is_flag=True, help="No secret: PKCE only (mobile and browser apps).")
@grant_option
@click.option("--scope", help="Scopes the client may be granted "
              "[default: 'openid profile email' with the authorization_code grant].")
@audience_option
@introspect_option
@require_mfa_option
@require_par_option
@require_dpop_option
@request_objects_options
@logout_uri_option
@backchannel_option
@documents_options
@jwks_option
@click.option("--first-party", is_flag=True, help="The operator's own app: no consent page.")
@click.option("--subject-type", type=click.Choice(SUBJECT_TYPES), default=PUBLIC_SUBJECTS,
              show_default=True,
              help="pairwise: users get a `sub` of their own for this client's sector, the one "
                   "host of its redirect URIs (OIDC Core §8); fixed once registered.")
@sector_uri_option
@logo_option
@json_option
def clients_create(name, redirect_uris, public, grant_types, scope, audiences, introspect_any,
                   require_mfa, require_par, require_dpop, request_uris,
                   request_object_signing_alg, require_signed_request_object, signed_userinfo,
                   logout_uris,
                   backchannel_logout_uri, policy_uri, tos_uri, jwks, jwks_uri,
                   token_endpoint_auth_signing_alg, first_party, subject_type,
                   sector_identifier_uri, logo_uri, as_json):
    """Register a client; a confidential client's secret is printed once (none is made for a
    client with --jwks-file or --jwks-uri)."""
    grant_types = list(grant_types or ["authorization_code"])
    if scope is None:
        scope = ("openid profile email" if any(g in grant_types for g in USER_GRANTS)
                 else "")
    client = Client(name=name, redirect_uris=list(redirect_uris),
                    post_logout_redirect_uris=list(logout_uris),
                    backchannel_logout_uri=backchannel_logout_uri or None,
                    policy_uri=policy_uri or None, tos_uri=tos_uri or None,
                    grant_types=grant_types, scope=scope, audiences=list(audiences),
                    introspect_any=bool(introspect_any), require_mfa=bool(require_mfa),
                    require_par=bool(require_par), require_dpop=bool(require_dpop),
                    request_uris=list(request_uris),
                    request_object_signing_alg=_named_alg(request_object_signing_alg),
                    require_signed_request_object=bool(require_signed_request_object),
                    userinfo_signed_response_alg=ALGORITHM if signed_userinfo else None,
                    token_endpoint_auth_method="none" if public else "client_secret_basic",
                    first_party=first_party, subject_type=subject_type,
                    sector_identifier_uri=sector_identifier_uri or None,
                    token_endpoint_auth_signing_alg=_named_alg(token_endpoint_auth_signing_alg))
    if jwks or jwks_uri:
        use_keys(client, jwks, jwks_uri)
    check_client(client)
    if logo_uri:
        set_logo(client, logo_uri)
    secret = None if public or client.uses_keys else client.set_secret()
    db.session.add(client)

    def show():
        text = client_text(client)
        if secret:
            text += f"\nclient_secret: {secret}\n(shown only now: store it safely)"
        emit({**client_view(client), "client_secret": secret}, as_json, text)

    commit(show_first=show)
    audit.log("admin.client_created", client_id=client.client_id)


@clients.command("list")
@json_option
def clients_list(as_json):
    """List clients."""
    rows = db.session.execute(db.select(Client).order_by(Client.name)).scalars().all()
    text = "\n".join(f"{c.client_id}\t{c.name}\t{'public' if c.is_public else 'confidential'}"
                     for c in rows)
    emit([client_view(c) for c in rows], as_json, text or "no clients")


@clients.command("show")
@click.argument("client_id")
@json_option
def clients_show(client_id, as_json):
    """Show one client."""
    client = get_client(client_id)
    emit(client_view(client), as_json, client_text(client))


@clients.command("update")
@click.argument("client_id")
@click.option("--name")
@redirect_uri_option
@click.option("--add-redirect-uri", "added", multiple=True, callback=uris_option_callback)
@click.option("--remove-redirect-uri", "removed", multiple=True)
@logout_uri_option
@backchannel_option
@documents_options
@jwks_option
@grant_option
@click.option("--scope")
@audience_option
@introspect_option
@require_mfa_option
@require_par_option
@require_dpop_option
@request_objects_options
@sector_uri_option
@logo_option
@click.option("--first-party/--no-first-party", default=None)
@json_option
def clients_update(client_id, name, redirect_uris, added, removed, logout_uris,
                   backchannel_logout_uri, policy_uri, tos_uri, jwks, jwks_uri,
                   token_endpoint_auth_signing_alg, grant_types,
                   scope, audiences, introspect_any, require_mfa, require_par, require_dpop,
                   request_uris, request_object_signing_alg, require_signed_request_object,
                   signed_userinfo, sector_identifier_uri, logo_uri, first_party, as_json):
    """Change a client; list options replace the registered list. --jwks-file or --jwks-uri
    replaces the keys (add the new key before removing the old one, to rotate without a gap),
    and moves a client with a secret to keys: its secret stops working."""
    client = get_client(client_id)
    if jwks or jwks_uri:
        use_keys(client, jwks, jwks_uri)
    uris = list(redirect_uris) if redirect_uris else list(client.redirect_uris)
    uris = [u for u in uris + [a for a in added if a not in uris] if u not in removed]
    client.redirect_uris = uris
    if name:
        client.name = name
    if logout_uris:
        client.post_logout_redirect_uris = list(logout_uris)
    if backchannel_logout_uri is not None:
        client.backchannel_logout_uri = backchannel_logout_uri or None
    if policy_uri is not None:
        client.policy_uri = policy_uri or None
    if tos_uri is not None:
        client.tos_uri = tos_uri or None
    if grant_types:
        client.grant_types = list(grant_types)
    if scope is not None:
        client.scope = scope
    if audiences:
        client.audiences = list(audiences)
    if introspect_any is not None:
        client.introspect_any = introspect_any
    if require_mfa is not None:
        client.require_mfa = require_mfa
    if require_par is not None:
        client.require_par = require_par
    if require_dpop is not None:
        client.require_dpop = require_dpop
    if request_uris:
        client.request_uris = list(request_uris)
    if request_object_signing_alg is not None:
        client.request_object_signing_alg = _named_alg(request_object_signing_alg)
    if token_endpoint_auth_signing_alg is not None:
        client.token_endpoint_auth_signing_alg = _named_alg(token_endpoint_auth_signing_alg)
    if require_signed_request_object is not None:
        client.require_signed_request_object = require_signed_request_object
    if signed_userinfo is not None:
        client.userinfo_signed_response_alg = ALGORITHM if signed_userinfo else None
    if sector_identifier_uri is not None:
        client.sector_identifier_uri = sector_identifier_uri or None
    if first_party is not None:
        client.first_party = first_party
    try:
        check_client(client)
        if logo_uri is not None:
            set_logo(client, logo_uri)
    except click.ClickException:
        db.session.rollback()
        raise
    commit()
    audit.log("admin.client_updated", client_id=client.client_id)
    emit(client_view(client), as_json, client_text(client))


@clients.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def clients_delete(client_id, yes, as_json):
    """Delete a client with its codes, tokens and consents."""
    client = get_client(client_id)
    if not yes:
        click.confirm(f"Delete client {client.name} ({client.client_id})?", abort=True)
    db.session.delete(client)
    commit()
    audit.log("admin.client_deleted", client_id=client_id)
    emit({"client_id": client_id, "deleted": True}, as_json, f"deleted {client_id}")


def get_secret_client(client_id: str) -> Client:
    client = get_client(client_id)
    if client.is_public:
        raise click.ClickException("a public client has no secret")
    if client.uses_keys:
        raise click.ClickException("this client authenticates with its keys (private_key_jwt), "
                                   "not a secret: replace them with update --jwks-file")
    return client


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--keep-old-for", type=Duration(MAX_PREVIOUS_SECRET_SECONDS), default="0",
              help="How long the old secret keeps working, such as 1h or 2d (at most 7 days): "
                   "time to give every caller the new one. Default: it stops at once.")
@json_option
def clients_rotate_secret(client_id, keep_old_for, as_json):
    """Replace a confidential client's secret. The old one stops working at once (a leaked
    secret), or after --keep-old-for (a planned rotation); any secret older still, at once."""
    client = get_secret_client(client_id)
    secret = client.set_secret(keep_old_for=keep_old_for)
    until = client.previous_secret_expires_at
    text = f"client_secret: {secret}\n(shown only now: store it safely)"
    if until:
        text += f"\nthe old secret works until {until.isoformat(timespec='seconds')}Z"
    commit(show_first=lambda: emit({"client_id": client_id, "client_secret": secret,
                                    "rotation_overlap_ends_at": until}, as_json, text))
    audit.log("admin.client_secret_rotated", client_id=client_id,
              rotation_overlap_ends_at=until)


@clients.command("end-previous-secret")
@click.argument("client_id")
@json_option
def clients_end_previous_secret(client_id, as_json):
    """Stop accepting the secret a rotation replaced, before its time is up (every caller has
    the new one: `client_auth.previous_secret_used` has stopped appearing in the audit log)."""
    client = get_secret_client(client_id)
    had_one = client.previous_secret_live
    client.end_previous_secret()
    commit()
    audit.log("admin.client_previous_secret_ended", client_id=client_id)
    emit({"client_id": client_id, "previous_secret_ended": had_one}, as_json,
         "the previous secret no longer works" if had_one else "there was no previous secret")


