"""Second factors at the unit level: encryption at rest, replay, drift, recovery codes, and
the lockout after wrong codes."""

from __future__ import annotations

import pytest

from idp.models import RateLimitCounter
from idp.models import TotpFactor
from idp.models import User
from idp.models import db
from idp.security import mfa

from ..conftest import add_user
from ..conftest import totp_code


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def enrolled(ctx):
    """A user with a confirmed authenticator; returns (user, secret)."""
    user = db.session.get(User, add_user(ctx).id)
    secret = mfa.start_enrollment(user)
    user.totp.confirmed_at = db.func.now()
    db.session.commit()
    return user, secret



def test_secret_is_encrypted_at_rest(enrolled):
    user, secret = enrolled
    stored = db.session.execute(db.select(TotpFactor.secret_encrypted)).scalar_one()
    assert secret not in stored
    assert mfa.decrypt_secret(stored) == secret
    assert mfa.encrypt_secret(secret) != stored  # randomized: no equality leak


def test_a_wrong_key_cannot_read_the_secret_and_says_so(ctx, enrolled):
    stored = enrolled[0].totp.secret_encrypted
    ctx.config["MFA_ENCRYPTION_KEY"] = "another-key-" + "y" * 32
    with pytest.raises(mfa.SecretUnreadable):
        mfa.decrypt_secret(stored)


def test_the_key_can_be_rotated(ctx, enrolled):
    user, secret = enrolled
    old_key = ctx.config["MFA_ENCRYPTION_KEY"]
    ctx.config["MFA_ENCRYPTION_KEY"] = "new-key-" + "z" * 32 + " " + old_key
    assert mfa.decrypt_secret(user.totp.secret_encrypted) == secret  # old ciphertext
    fresh = mfa.encrypt_secret(secret)
    ctx.config["MFA_ENCRYPTION_KEY"] = "new-key-" + "z" * 32
    assert mfa.decrypt_secret(fresh) == secret  # new ciphertext needs only the new key


def test_a_code_is_accepted_once(enrolled):
    user, secret = enrolled
    code = totp_code(secret)
    assert mfa.verify_second_factor(user, code) == "totp"
    assert mfa.verify_second_factor(user, code) is None  # replay
    # an older step after a newer one is a replay too
    assert mfa.verify_second_factor(user, totp_code(secret, 1)) == "totp"
    assert mfa.verify_second_factor(user, totp_code(secret, 0)) is None


@pytest.mark.parametrize("steps, accepted", [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_step_of_drift_is_allowed(enrolled, steps, accepted):
    user, secret = enrolled
    assert (mfa.verify_second_factor(user, totp_code(secret, steps)) == "totp") is accepted


@pytest.mark.parametrize("junk", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", None])
def test_malformed_codes_are_refused(enrolled, junk):
    assert mfa.verify_second_factor(enrolled[0], junk) is None


def test_unconfirmed_factor_does_not_count(ctx):
    user = db.session.get(User, add_user(ctx).id)
    secret = mfa.start_enrollment(user)
    assert not user.has_totp
    assert mfa.verify_second_factor(user, totp_code(secret)) is None


def test_recovery_codes_work_once_and_regeneration_voids_the_old(enrolled):
    user, _ = enrolled
    codes = mfa.new_recovery_codes(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert mfa.verify_second_factor(user, codes[0]) == "recovery"
    assert mfa.verify_second_factor(user, codes[0]) is None
    assert mfa.verify_second_factor(user, codes[1].upper().replace("-", " ")) == "recovery"
    assert mfa.recovery_codes_left(user) == 8
    fresh = mfa.new_recovery_codes(user)
    assert mfa.verify_second_factor(user, codes[2]) is None
    assert mfa.verify_second_factor(user, fresh[0]) == "recovery"


def test_recovery_codes_are_stored_hashed(enrolled):
    from idp.models import RecoveryCode

    codes = mfa.new_recovery_codes(enrolled[0])
    stored = db.session.scalars(db.select(RecoveryCode.code_hash)).all()
    assert not any(code.replace("-", "") in h or code in h for code in codes for h in stored)


def test_wrong_codes_lock_the_account_until_the_window_ends(ctx, enrolled):
    user, secret = enrolled
    limit = ctx.config["MFA_MAX_FAILURES"]
    for _ in range(limit):
        assert mfa.count_attempt(user)
    assert not mfa.count_attempt(user)  # locked: the next attempt is refused unchecked
    assert not mfa.count_attempt(user)
    counter = db.session.get(RateLimitCounter, f"mfa:user:{user.id}")
    counter.window_start -= __import__("datetime").timedelta(
        seconds=ctx.config["MFA_WINDOW_SECONDS"] + 1)
    db.session.commit()
    assert mfa.count_attempt(user)  # a new window


def test_a_correct_code_resets_the_count(ctx, enrolled):
    user, _ = enrolled
    for _ in range(ctx.config["MFA_MAX_FAILURES"] - 1):
        mfa.count_attempt(user)
    mfa.reset_attempts(user)
    for _ in range(ctx.config["MFA_MAX_FAILURES"]):
        assert mfa.count_attempt(user)


def test_provisioning_uri_names_the_issuer_and_the_account(enrolled):
    user, secret = enrolled
    uri = mfa.provisioning_uri(secret, user)
    assert uri.startswith("otpauth://totp/127.0.0.1:alice?")
    assert f"secret={secret}" in uri and "issuer=127.0.0.1" in uri
    svg = mfa.qr_code_svg(uri)
    assert svg.startswith("<svg") and "viewBox" in svg and secret not in svg
