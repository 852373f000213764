"""RS256 signing keys that rotate without breaking anyone (RFC 7517, RFC 7638, OIDC Core §10.1.1).

The keys live in the database (`signing_keys`, idp/models/signing_key.py), so every worker and
every host sharing it signs with the same key and publishes the same JWKS. Each worker keeps the
key set in memory and never queries to sign or verify: before a request, a copy older than
KEYS_REFRESH_SECONDS is re-read (one small query; a key not seen before is decrypted once), so a
rotation made by any worker, host or `idp keys rotate` is in use everywhere within that delay.

Safe by construction: a key signs only after it has been published for longer than relying
parties may cache the JWKS, and a retired key stays published until every token it signed has
expired. Of several workers or hosts that notice a due rotation, the database lets one win.
"""

from .material import ALGORITHM
from .material import SigningKey
from .material import read_key_files
from .policy import JWKS_ORDER
from .policy import KeyInfo
from .policy import KeyPolicy
from .policy import Rotation
from .policy import RotationError
from .store import KeyStore
from .store import init_app

__all__ = ["ALGORITHM", "JWKS_ORDER", "KeyInfo", "KeyPolicy", "KeyStore", "Rotation",
           "RotationError", "SigningKey", "init_app", "read_key_files"]
