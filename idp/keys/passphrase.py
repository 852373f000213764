"""Changing IDP_KEYS_PASSPHRASE without a moment when a host cannot read its keys:

1. every host gets the new passphrase in IDP_KEYS_PASSPHRASE and the old one in
   IDP_KEYS_PREVIOUS_PASSPHRASE, and restarts: keys open with either, new keys are sealed
   under the new one;
2. `idp keys reseal` seals every key under the new passphrase;
3. IDP_KEYS_PREVIOUS_PASSPHRASE is removed everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..config import ConfigError
from ..models import db
from ..models.signing_key import SigningKeyRecord
from ..security import audit
from .material import SigningKey
from .policy import KeyPolicy


def reseal(policy: KeyPolicy) -> list[str]:
    """Seal under IDP_KEYS_PASSPHRASE every key that only the previous passphrase opens;
    returns their kids. Each row is replaced only if nobody changed it meanwhile."""
    record = SigningKeyRecord
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(record.kid, record.encrypted_private_key)).all()
    resealed = []
    for kid, sealed in rows:
        try:
            SigningKey.unsealed(kid, sealed, (policy.passphrase,))
            continue  # already under the current passphrase
        except ConfigError:
            key = SigningKey.unsealed(kid, sealed, policy.passphrases)
        update = (sa.update(record)
                  .where(record.kid == kid, record.encrypted_private_key == sealed)
                  .values(encrypted_private_key=key.sealed(policy.passphrase)))
        with db.engine.begin() as conn:
            if conn.execute(update).rowcount == 1:
                resealed.append(kid)
    if resealed:
        audit.log("keys.resealed", kids=resealed)
    return resealed
