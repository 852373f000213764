"""The lifecycle's rules, as pure functions of the key list and the settings: when a rotation
is due, how long a retired key stays published, which key is which."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple

from ..models.signing_key import ACTIVE
from ..models.signing_key import NEXT
from ..models.signing_key import RETIRED

# Relying parties commonly accept a token a few minutes past its `exp` to allow for clock skew.
CLOCK_SKEW = timedelta(minutes=5)
# The JWKS lists the signing key first: a client that ignores `kid` takes the first key.
JWKS_ORDER = {ACTIVE: 0, NEXT: 1, RETIRED: 2}


class KeyInfo(NamedTuple):
    """Where a key is in its lifecycle: a row of signing_keys without its private half."""

    kid: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None


class Rotation(NamedTuple):
    activated: str
    retired: str
    published: str  # the new next key


class RotationError(Exception):
    """A rotation that was not made; the message is one line for the operator."""


@dataclass(frozen=True)
class KeyPolicy:
    """The settings that govern the lifecycle, as durations."""

    key_size: int
    passphrase: bytes = field(repr=False)
    refresh_seconds: int
    rotation_period: timedelta
    publication_lead: timedelta
    jwks_cache: timedelta  # how long an old JWKS may be served by a worker, then cached
    retention: timedelta  # how long a retired key stays published
    automatic: bool
    # Opens keys sealed before IDP_KEYS_PASSPHRASE changed, until `idp keys reseal` has run.
    previous_passphrase: bytes | None = field(default=None, repr=False)

    @property
    def passphrases(self) -> tuple[bytes, ...]:
        """What opens a sealed key: the current passphrase first."""
        return (self.passphrase, self.previous_passphrase) if self.previous_passphrase else (
            self.passphrase,)

    @classmethod
    def from_config(cls, config: Any) -> KeyPolicy:
        def seconds(name: str) -> timedelta:
            return timedelta(seconds=config[name])

        refresh = seconds("KEYS_REFRESH_SECONDS")
        longest_token = max(seconds("ACCESS_TOKEN_TTL_SECONDS"), seconds("ID_TOKEN_TTL_SECONDS"))
        return cls(
            key_size=config["KEY_SIZE"],
            passphrase=config["KEYS_PASSPHRASE"].encode(),
            refresh_seconds=config["KEYS_REFRESH_SECONDS"],
            rotation_period=seconds("KEY_ROTATION_PERIOD_SECONDS"),
            publication_lead=seconds("KEY_PUBLICATION_LEAD_SECONDS"),
            jwks_cache=refresh + seconds("JWKS_MAX_AGE_SECONDS"),
            # A worker that has not refreshed yet may sign with a just-retired key a little longer.
            retention=refresh + longest_token + CLOCK_SKEW,
            automatic=config["KEY_AUTO_ROTATE"],
            previous_passphrase=config["KEYS_PREVIOUS_PASSPHRASE"].encode() or None,
        )

    def rotation_due_at(self, active: KeyInfo, next_key: KeyInfo) -> datetime:
        """A rotation period after the active key started signing, and never before the next
        key has been published for the lead time."""
        return max(active.activated_at + self.rotation_period,
                   next_key.created_at + self.publication_lead)

    def removable_at(self, retired: KeyInfo) -> datetime:
        return retired.retired_at + self.retention


def active_and_next(infos: tuple[KeyInfo, ...]) -> tuple[KeyInfo, KeyInfo]:
    by_state = {info.state: info for info in infos if info.state != RETIRED}
    if ACTIVE not in by_state or NEXT not in by_state:
        raise RotationError("there is no active and next key to rotate: see `idp keys list`")
    return by_state[ACTIVE], by_state[NEXT]
