"""User passwords: argon2id (RFC 9106), parameters from configuration."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2 import Type
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import current_app

MIN_LENGTH = 8
MAX_LENGTH = 256


class PasswordPolicyError(ValueError):
    """A password that does not meet the policy; the message is shown to the person."""


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("idp.password_hasher")
    if hasher is None:
        config = current_app.config
        hasher = PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"],
            memory_cost=config["ARGON2_MEMORY_COST_KIB"],
            parallelism=config["ARGON2_PARALLELISM"],
            type=Type.ID,
        )
        current_app.extensions["idp.password_hasher"] = hasher
    return hasher


def check_policy(password: str) -> None:
    """ASVS 6.2.1/6.2.9: length rules, no composition rules; ASVS 6.2.4/6.2.12: not one of
    the passwords attackers try first."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"Password must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"Password must be at most {MAX_LENGTH} characters.")
    if password.lower() in _common_passwords():
        raise PasswordPolicyError("This password is among the most common ones, which attackers "
                                  "try first. Choose another.")


@functools.cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords in public breach corpora, lower-case.
    Loaded when a password is first set (a few MB a process), never on the sign-in path."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    """A new password: the policy applies."""
    check_policy(password)
    return _hasher().hash(password)


def rehash_password(password: str) -> str:
    """A password that just verified, under the current argon2 parameters. It met the policy
    of its day, so it is not checked again: a sign-in never fails for a stricter policy. What
    verified is its first MAX_LENGTH characters (verify_password), so that is what is kept."""
    return _hasher().hash(password[:MAX_LENGTH])


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash (unknown user) a dummy hash is verified
    instead, so that an unknown username costs the same time as a wrong password."""
    hasher = _hasher()
    if password_hash is None:
        password_hash = _dummy_hash(hasher)
        password = "\0" + password  # can never match the dummy
    try:
        return hasher.verify(password_hash, password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def _dummy_hash(hasher: PasswordHasher) -> str:
    dummy = current_app.extensions.get("idp.dummy_password_hash")
    if dummy is None:
        dummy = hasher.hash("dummy password for timing equalisation")
        current_app.extensions["idp.dummy_password_hash"] = dummy
    return dummy
