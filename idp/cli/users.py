"""`idp users ...`: end users."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..models import Client
from ..models import Consent
from ..models import TokenFamily
from ..models import User
from ..models import db
from ..models import utcnow
from ..models.client import PUBLIC_SUBJECTS
from ..models.user import EMAIL_MAX_LENGTH
from ..models.user import NAME_MAX_LENGTH
from ..models.user import problem_with_email
from ..oauth.subjects import subject_for
from ..security import audit
from ..security import mailed_links
from ..security import notices
from ..security.mfa import recovery_codes_left
from ..security.mfa import remove_factors
from ..sessions import delete_account
from ..sessions import end_all_sessions_of
from ..sessions import live_sessions_of
from ..sessions import sign_out_everywhere
from . import check_text
from . import commit
from . import emit
from . import get_client
from . import get_user
from . import json_option
from . import read_password


@click.group(cls=AppGroup)
def users():
    """Manage end users."""


def user_view(user: User) -> dict:
    return {"username": user.username, "sub": user.subject, "email": user.email,
            "email_verified": user.email_verified, "name": user.name,
            "disabled": user.disabled, "created_at": user.created_at}


def check_email(email: str) -> None:
    check_text(email, "--email", EMAIL_MAX_LENGTH)
    if problem := problem_with_email(email):
        raise click.ClickException(f"{email[:80]!r} {problem}")


email_verified_option = click.option(
    "--email-verified/--email-not-verified", default=None,
    help="Whether the address is known to be the user's (the `email_verified` claim); "
         "otherwise the user confirms it from the account page, where mail is set up.")


@users.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--name", required=True)
@email_verified_option
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_create(username, email, name, email_verified, password_stdin, as_json):
    """Create a user; the password is asked for (or read from stdin)."""
    username = User.normalize_username(username)
    check_text(username, "username", 150)
    if any(character.isspace() for character in username):
        raise click.ClickException("username must not contain spaces")
    check_email(email)
    check_text(name, "--name", NAME_MAX_LENGTH)
    if User.by_username(username) is not None:
        raise click.ClickException(f"a user named {username!r} already exists")
    user = User(username=username, email=email, name=name, email_verified=bool(email_verified),
                password_hash=read_password(password_stdin))
    db.session.add(user)
    commit()
    audit.log("admin.user_created", user_id=user.id)
    emit(user_view(user), as_json, f"created user {user.username} (sub {user.subject})")


@users.command("show")
@click.argument("username")
@json_option
def users_show(username, as_json):
    """Show one user, with what an operator asks first when they cannot sign in: second
    factor, sessions, applications authorized, tokens outstanding."""
    user = get_user(username)
    sessions = live_sessions_of(user)
    apps = db.session.execute(
        db.select(Client.name).join(Consent, Consent.client_id == Client.client_id)
        .where(Consent.user_id == user.id).order_by(Client.name)).scalars().all()
    live_families = db.session.scalar(
        db.select(db.func.count()).select_from(TokenFamily)
        .where(TokenFamily.user_id == user.id, TokenFamily.revoked_at.is_(None),
               TokenFamily.expires_at > utcnow()))
    view = {**user_view(user), "password_changed_at": user.password_changed_at,
            "two_step": user.has_totp, "recovery_codes_left": recovery_codes_left(user),
            "live_sessions": len(sessions),
            "last_active_at": sessions[0].last_seen_at if sessions else None,
            "authorized_apps": apps, "live_token_families": live_families}
    emit(view, as_json, "\n".join(
        f"{key}: {', '.join(value) if isinstance(value, list) else value}"
        for key, value in view.items()))


@users.command("whois")
@click.argument("sub")
@click.option("--client", "client_id", help="The client that knows the user by SUB, where it "
              "is a pairwise one (OIDC Core §8.1).")
@json_option
def users_whois(sub, client_id, as_json):
    """The user a `sub` names: a public one, or, with --client, a pairwise one of that client
    (what its support desk quotes)."""
    client = get_client(client_id) if client_id else None
    if client is None or client.subject_type == PUBLIC_SUBJECTS:
        user = User.by_subject(sub)
    else:  # a pairwise sub cannot be reversed: compute each user's until one matches
        users = db.session.execute(db.select(User).execution_options(yield_per=1000))
        try:
            user = next((candidate for candidate in users.scalars()
                         if subject_for(candidate, client) == sub), None)
        finally:
            users.close()  # a server-side cursor on PostgreSQL, left open by an early match
    if user is None:
        raise click.ClickException("no user has this sub" + (" for this client" if client
                                                             else ""))
    emit(user_view(user), as_json, f"{user.username} (sub {user.subject})")


@users.command("update")
@click.argument("username")
@click.option("--email", help="A new address: unconfirmed, unless --email-verified is given.")
@click.option("--name")
@email_verified_option
@json_option
def users_update(username, email, name, email_verified, as_json):
    """Change a user's e-mail address or name. The old address is told of a new one, and the
    links sent to it (password reset, confirmation) stop working."""
    user = get_user(username)
    old_email = user.email
    if email is not None:
        check_email(email)
        if email != old_email:
            user.email = email
            user.email_verified = False
            mailed_links.retire(user)
    if name is not None:
        check_text(name, "--name", NAME_MAX_LENGTH)
        user.name = name
    if email_verified is not None:
        user.email_verified = email_verified
    commit()
    audit.log("admin.user_updated", user_id=user.id, email_changed=user.email != old_email)
    if user.email != old_email and old_email:
        notices.send(user, "email_changed", to=old_email)
    emit(user_view(user), as_json, f"updated {user.username}")


@users.command("list")
@json_option
def users_list(as_json):
    """List users."""
    rows = db.session.execute(db.select(User).order_by(User.username)).scalars().all()
    text = "\n".join("\t".join([u.username, u.subject, u.email or "", "disabled" * u.disabled])
                     for u in rows)
    emit([user_view(u) for u in rows], as_json, text or "no users")


def _set_disabled(username: str, disabled: bool, as_json: bool) -> None:
    user = get_user(username)
    user.disabled = disabled
    signed_out = {"sessions_ended": 0, "token_families_revoked": 0}
    if disabled:  # ASVS 7.4.2: a disabled account keeps no session and no token
        signed_out = sign_out_everywhere(user, "user_disabled")
    commit()
    audit.log("admin.user_disabled" if disabled else "admin.user_enabled", user_id=user.id)
    state = "disabled" if disabled else "enabled"
    emit({**user_view(user), **signed_out}, as_json, f"{state} {user.username}")


@users.command("disable")
@click.argument("username")
@json_option
def users_disable(username, as_json):
    """Disable a user: sign-in refused, sessions ended, tokens revoked."""
    _set_disabled(username, True, as_json)


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def users_delete(username, yes, as_json):
    """Delete a user and everything held for them: sessions (their applications are told, by
    back-channel logout), consents, tokens, second factors, e-mailed links. Their `sub` is
    never given to anyone again. `disable` keeps the account instead."""
    user = get_user(username)
    if not yes:
        click.confirm(f"Delete user {user.username} ({user.subject}) and all their data?",
                      abort=True)
    user_id, subject = user.id, user.subject
    signed_out = delete_account(user)
    commit()
    audit.log("admin.user_deleted", user_id=user_id, **signed_out)
    emit({"username": username, "sub": subject, "deleted": True, **signed_out}, as_json,
         f"deleted {username}")


@users.command("enable")
@click.argument("username")
@json_option
def users_enable(username, as_json):
    """Enable a disabled user."""
    _set_disabled(username, False, as_json)


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_set_password(username, password_stdin, as_json):
    """Set a user's password; every session of the user ends and every refresh token is
    revoked."""
    user = get_user(username)
    user.password_hash = read_password(password_stdin)
    user.password_changed_at = utcnow()
    signed_out = sign_out_everywhere(user, "password_set_by_admin")
    commit()
    audit.log("admin.password_set", user_id=user.id, **signed_out)
    notices.send(user, "password_set_by_admin")
    emit({"username": user.username, **signed_out}, as_json,
         f"password changed for {user.username}")


@users.command("sign-out")
@click.argument("username")
@json_option
def users_sign_out(username, as_json):
    """End every sign-in session of a user (a lost or shared device): the next page asks them
    to sign in. Their applications' tokens are left alone; `idp tokens revoke --user` ends
    those."""
    user = get_user(username)
    ended = end_all_sessions_of(user)
    commit()
    audit.log("admin.sessions_ended", user_id=user.id, sessions_ended=ended)
    emit({"username": user.username, "sessions_ended": ended}, as_json,
         f"ended {ended} session(s) of {user.username}")


@users.command("mfa-reset")
@click.argument("username")
@json_option
def users_mfa_reset(username, as_json):
    """Remove a user's authenticator and recovery codes (a lost phone); they sign in with the
    password alone until they enroll again. Every session of the user ends and every refresh
    token is revoked: the lost phone may hold them."""
    user = get_user(username)
    had_totp = user.has_totp
    remove_factors(user)
    signed_out = {"sessions_ended": 0, "token_families_revoked": 0}
    if had_totp:
        signed_out = sign_out_everywhere(user, "factors_removed_by_admin")
    commit()
    audit.log("admin.mfa_reset", user_id=user.id, had_totp=had_totp, **signed_out)
    if had_totp:
        notices.send(user, "factors_removed_by_admin")
    emit({"username": user.username, "factors_removed": had_totp, **signed_out}, as_json,
         f"second factors of {user.username} removed" if had_totp
         else f"{user.username} had no second factor")
