"""Second factors: TOTP (RFC 6238) with replay protection, recovery codes, and the encryption
of TOTP secrets at rest.

A TOTP secret must be readable by the server (it computes the expected code), so unlike a
password it cannot be hashed: it is encrypted with MFA_ENCRYPTION_KEY, which lives in the
configuration, never in the database. Recovery codes are random and only their keyed hash is
kept, like every other random credential (hashing.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import pyotp
import segno
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet
from flask import current_app
from sqlalchemy import or_
from sqlalchemy import update

from ..models import RecoveryCode
from ..models import TotpFactor
from ..models import User
from ..models import db
from ..models import utcnow
from . import notices
from . import rate_limit
from .hashing import hash_secret

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
RECOVERY_CODE_COUNT = 10
# Codes one step early or late are accepted: clocks drift and people type slowly (RFC 6238 §6).
ALLOWED_DRIFT_STEPS = 1


class SecretUnreadable(Exception):
    """A stored TOTP secret that no configured MFA_ENCRYPTION_KEY decrypts."""


# --- encryption at rest --------------------------------------------------------------------

def _cipher() -> MultiFernet:
    """Fernet (AES-128-CBC with HMAC-SHA-256) under each configured key; the first encrypts."""
    keys = current_app.config["MFA_ENCRYPTION_KEY"].split()
    return MultiFernet([
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys
    ])


def encrypt_secret(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _cipher().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no configured MFA_ENCRYPTION_KEY decrypts this secret") from None


# --- TOTP ----------------------------------------------------------------------------------

def start_enrollment(user: User) -> str:
    """A new, unconfirmed authenticator secret for `user` (replacing an unconfirmed one)."""
    secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 §4 recommends
    factor = user.totp or TotpFactor(user_id=user.id)
    factor.secret_encrypted = encrypt_secret(secret)
    factor.confirmed_at = None
    factor.last_used_step = None
    db.session.add(factor)
    db.session.commit()
    return secret


def provisioning_uri(secret: str, user: User) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    issuer_name = urlsplit(current_app.config["ISSUER"]).hostname or "idp"
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=user.username, issuer_name=issuer_name)


def qr_code_svg(uri: str) -> str:
    """An inline SVG QR code: drawn here, so the secret never leaves the server."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, omitsize=True,
                                                 title="Scan with your authenticator app")


def _normalized_code(code: str | None) -> str:
    return "".join((code or "").split())


def accept_totp(factor: TotpFactor, code: str | None) -> bool:
    """A current code (±1 step) that has not been accepted before. The step is recorded with
    one conditional UPDATE, so the same code presented twice at once is accepted once."""
    code = _normalized_code(code)
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return False
    totp = pyotp.TOTP(decrypt_secret(factor.secret_encrypted), digits=TOTP_DIGITS,
                      interval=TOTP_STEP_SECONDS)
    current = int(time.time()) // TOTP_STEP_SECONDS
    matched = None
    for step in range(current - ALLOWED_DRIFT_STEPS, current + ALLOWED_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    if matched is None:
        return False
    accepted = db.session.execute(
        update(TotpFactor)
        .where(TotpFactor.id == factor.id,
               or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < matched))
        .values(last_used_step=matched)
    ).rowcount
    db.session.commit()
    return bool(accepted)


# --- recovery codes ------------------------------------------------------------------------

def _normalized_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes(user: User) -> list[str]:
    """Ten fresh codes (60 bits each) replacing any earlier ones; shown once, kept hashed.
    The caller commits."""
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        db.session.add(RecoveryCode(user_id=user.id,
                                    code_hash=hash_secret(_normalized_recovery_code(raw))))
    return codes


def use_recovery_code(user: User, code: str | None) -> bool:
    """Spend one unused recovery code of `user`, atomically."""
    normalized = _normalized_recovery_code(code or "")
    if not normalized:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id,
               RecoveryCode.code_hash == hash_secret(normalized),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(used)


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(
        db.select(db.func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))


def verify_second_factor(user: User, code: str | None) -> str | None:
    """"totp" or "recovery" for a good code of an enrolled user, else None."""
    if not user.has_totp:
        return None
    if accept_totp(user.totp, code):
        return "totp"
    if use_recovery_code(user, code):
        return "recovery"
    return None


def remove_factors(user: User) -> None:
    """Remove the authenticator and the recovery codes; the caller commits."""
    db.session.execute(db.delete(TotpFactor).where(TotpFactor.user_id == user.id))
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.expire(user, ["totp"])


# --- wrong codes ---------------------------------------------------------------------------

def count_attempt(user: User, notice_when_locked: str | None = None) -> bool:
    """Count an attempt to confirm `user` (a code, or the password on the account page) before
    checking it; False once the account is locked
    (more than MFA_MAX_FAILURES within MFA_WINDOW_SECONDS). A correct code calls reset().
    The attempt that locks it sends the user `notice_when_locked`, if given."""
    config = current_app.config
    attempts = rate_limit.count_attempt(f"mfa:user:{user.id}", config["MFA_WINDOW_SECONDS"])
    if notice_when_locked and attempts == config["MFA_MAX_FAILURES"] + 1:
        notices.send(user, notice_when_locked)
    return attempts <= config["MFA_MAX_FAILURES"]


def reset_attempts(user: User) -> None:
    rate_limit.reset(f"mfa:user:{user.id}")
