"""E-mail notices to a user after a change to how they sign in (ASVS 6.3.7), so that a change
they did not make does not go unseen: a new password, two-step sign-in turned on or off,
recovery codes made or used, factors removed by an administrator; and after attempts that
suggest someone else is trying the account (ASVS 6.3.5): sign-in paused by wrong passwords,
the right password followed by wrong codes, a sign-in after several wrong passwords.

A notice is sent after the change is committed, and, for a change made over HTTP, after the
response has gone out: a slow mail server never delays the user. A mail server that is down
loses the notice, never the change: the failure is audited. Without IDP_MAIL_SMTP_URL no notice
is sent.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from email.utils import make_msgid
from urllib.parse import SplitResult
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import current_app
from flask import has_request_context
from flask import request

from ..config import LOOPBACK_HOSTS
from ..deferred import after_response
from ..models import User
from ..models import utcnow
from . import audit

# notice: (subject, what happened)
NOTICES = {
    "password_changed": ("Your password was changed",
                         "The password of your account was changed."),
    "password_reset": ("Your password was reset",
                       "The password of your account was changed with a link mailed to this "
                       "address. Every session and application was signed out."),
    "email_changed": ("Your e-mail address was changed",
                      "An administrator changed the e-mail address of your account; this one "
                      "no longer receives its mail."),
    "email_change_requested": ("A change of your e-mail address was asked for",
                               "Someone signed in to your account asked to change its e-mail "
                               "address, and a link to confirm the new one was sent there. "
                               "Until it is used, this address stays the account's."),
    "email_changed_by_user": ("Your e-mail address was changed",
                              "The e-mail address of your account was changed from the account "
                              "page, and confirmed from the new address; this one no longer "
                              "receives its mail."),
    "password_set_by_admin": ("Your password was reset",
                              "An administrator set a new password for your account."),
    "totp_enabled": ("Two-step sign-in is on",
                     "Two-step sign-in with an authenticator app was turned on for your "
                     "account, with new recovery codes."),
    "totp_disabled": ("Two-step sign-in is off",
                      "Two-step sign-in was turned off for your account. Your recovery codes "
                      "no longer work."),
    "recovery_codes_regenerated": ("New recovery codes",
                                   "New recovery codes were made for your account. The old "
                                   "ones no longer work."),
    "recovery_code_used": ("A recovery code was used",
                           "One of your recovery codes was used to sign in to your account. "
                           "It cannot be used again."),
    "account_deleted": ("Your account was deleted",
                        "Your account was deleted from its account page, with everything kept "
                        "for it. The applications you used it for were told."),
    # ASVS 6.3.5: attempts that suggest someone else is trying the account.
    "sign_in_locked": ("Sign-in to your account is paused",
                       "Someone entered a wrong password for your account too many times, so "
                       "signing in to it is paused for a while. If it was not you, someone may "
                       "be guessing your password."),
    "second_factor_locked": ("Your password was used, then wrong codes",
                             "Someone entered the right password for your account, then wrong "
                             "two-step sign-in codes too many times. If it was not you, your "
                             "password is known to someone else: change it now."),
    "signed_in_after_failures": ("A sign-in after wrong passwords",
                                 "Someone signed in to your account after entering a wrong "
                                 "password several times."),
    "factors_removed_by_admin": ("Two-step sign-in was removed",
                                 "An administrator removed the authenticator app and the "
                                 "recovery codes of your account."),
}
SMTP_TIMEOUT_SECONDS = 10
SMTP_SCHEMES = {"smtp": 587, "smtps": 465}


def enabled() -> bool:
    return bool(current_app.config["MAIL_SMTP_URL"])


def send(user: User, notice: str, to: str | None = None) -> None:
    """Notify `user` of `notice` (at `to` rather than their address, for one that changed):
    after the response to this request, or now, from the CLI."""
    subject, what_happened = NOTICES[notice]
    _queue(user, notice, subject, to=to, body=lambda origin: (
        f"{what_happened}\n\n"
        f"Account: {user.username}\n"
        f"When: {utcnow():%Y-%m-%d %H:%M} UTC{origin}\n"
        f"Where: {current_app.config['ISSUER']}\n\n"
        "If this was not you or your administrator, sign in and change your password, "
        "and tell your administrator.\n"))


# purpose: (subject, why, what the link does), for mailed_links.py's links
LINKS = {
    "password_reset": ("Reset your password",
                       "Someone asked to reset the password of your account",
                       "To choose a new password"),
    "verify_email": ("Confirm your e-mail address",
                     "Someone asked to confirm this address for your account",
                     "To confirm that this address is yours"),
}


def send_link(user: User, purpose: str, link: str, ttl_seconds: int,
              to: str | None = None) -> None:
    """A link of security/mailed_links.py, to the user's current address, or `to`."""
    subject, why, what = LINKS[purpose]
    _queue(user, f"{purpose}_link", subject, to=to, body=lambda origin: (
        f"{why} at {current_app.config['ISSUER']}{origin}.\n\n"
        f"Account: {user.username}\n\n"
        f"{what}, open this link within {duration(ttl_seconds)}. It works once.\n\n"
        f"{link}\n\n"
        "If it was not you, ignore this mail: nothing changes.\n"))


def duration(seconds: int) -> str:
    """In the largest whole unit: "30 minutes", "1 hour", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 or unit == "minute":
            count = max(seconds // size, 1)
            return f"{count} {unit}{'s' * (count != 1)}"
    raise AssertionError("unreachable")


def _queue(user: User, notice: str, subject: str, body, to: str | None = None) -> None:
    to = to or user.email
    if not enabled() or not to:
        return
    ip = request.remote_addr if has_request_context() else None
    message = EmailMessage()
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid()
    message.set_content(body(f", from the address {ip}" if ip else ""))
    after_response(Delivery(user.id, notice, ip, to, message))


@dataclass
class Delivery:
    """One notice on its way to the mail server, with what its audit record needs."""

    user_id: int
    notice: str
    ip: str | None
    to: str
    message: EmailMessage  # From and To are set on delivery, where a bad address is audited

    def __call__(self) -> None:
        config = current_app.config
        try:
            self.message["From"] = config["MAIL_FROM"]
            self.message["To"] = self.to
            parts = urlsplit(config["MAIL_SMTP_URL"])
            with _connect(parts) as smtp:
                _secure_and_log_in(smtp, parts)
                smtp.send_message(self.message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:  # ValueError: an address
            self._audit("notice.failed", reason=type(exc).__name__)
            return
        self._audit("notice.sent")

    def _audit(self, event: str, **fields) -> None:
        audit.log(event, user_id=self.user_id, notice=self.notice, ip=self.ip, **fields)


def _connect(parts: SplitResult) -> smtplib.SMTP:
    port = parts.port or SMTP_SCHEMES[parts.scheme]
    if parts.scheme == "smtps":
        return smtplib.SMTP_SSL(parts.hostname, port, timeout=SMTP_TIMEOUT_SECONDS,
                                context=ssl.create_default_context())
    return smtplib.SMTP(parts.hostname, port, timeout=SMTP_TIMEOUT_SECONDS)


def _secure_and_log_in(smtp: smtplib.SMTP, parts: SplitResult) -> None:
    """smtp:// must upgrade with STARTTLS, except to a relay on this host: a notice and the
    relay's password never cross a network in clear."""
    if parts.scheme == "smtp" and parts.hostname not in LOOPBACK_HOSTS:
        smtp.starttls(context=ssl.create_default_context())
    if parts.username:
        smtp.login(unquote(parts.username), unquote(parts.password or ""))
