"""Key material: an RS256 key pair with its RFC 7638 `kid`, sealed (encrypted PKCS#8) for the
database; the key set as it is published (JWKS body, ETag, verification keys); and the PEM
files of file-based releases, imported once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey

from ..config import ConfigError
from ..models.signing_key import ACTIVE
from .policy import JWKS_ORDER
from .policy import KeyInfo

ALGORITHM = "RS256"
MINIMUM_KEY_SIZE = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: RSAKey  # joserfc key, used to sign
    public_jwk: dict[str, Any]  # what the JWKS publishes

    @classmethod
    def from_private(cls, private: rsa.RSAPrivateKey) -> SigningKey:
        key = RSAKey.import_key(private, parameters={"alg": ALGORITHM, "use": "sig"})
        key.ensure_kid()  # the RFC 7638 thumbprint
        return cls(key.kid, key, key.as_dict(private=False))

    @classmethod
    def generate(cls, key_size: int) -> SigningKey:
        return cls.from_private(rsa.generate_private_key(public_exponent=65537, key_size=key_size))

    def sealed(self, passphrase: bytes) -> str:
        """Encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) for the database."""
        return self.private.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase)).decode()

    @classmethod
    def unsealed(cls, kid: str, sealed: str, passphrases: tuple[bytes, ...]) -> SigningKey:
        """Opened with the first of `passphrases` that fits (the current one, then the
        previous one while IDP_KEYS_PASSPHRASE changes)."""
        private = None
        for passphrase in passphrases:
            try:
                private = serialization.load_pem_private_key(sealed.encode(), passphrase)
                break
            except (ValueError, TypeError):
                continue
        if private is None:
            raise ConfigError(f"signing key {kid} in the database cannot be decrypted "
                              "with IDP_KEYS_PASSPHRASE" + " or IDP_KEYS_PREVIOUS_PASSPHRASE"
                              * (len(passphrases) > 1))
        key = cls.from_private(private) if isinstance(private, rsa.RSAPrivateKey) else None
        if key is None or key.kid != kid:  # a row copied over another: never sign with it
            raise ConfigError(f"signing key {kid} in the database does not hold that key")
        return key


@dataclass(frozen=True)
class Published:
    """One consistent view of the key set, replaced whole when the database says otherwise."""

    infos: tuple[KeyInfo, ...]
    signing: SigningKey
    keyset: KeySet
    jwks_body: bytes
    etag: str

    @classmethod
    def build(cls, infos: tuple[KeyInfo, ...], keys: dict[str, SigningKey]) -> Published:
        active = [info.kid for info in infos if info.state == ACTIVE]
        if len(active) != 1:
            # Every `idp` command starts the app too, so the way out is the database itself.
            raise ConfigError("the signing_keys table holds keys but no active one: restore its "
                              "row from a backup (SELECT kid, state FROM signing_keys shows "
                              "what is there)")
        ordered = [keys[info.kid] for info in sorted(infos, key=lambda i: JWKS_ORDER[i.state])]
        body = json.dumps({"keys": [key.public_jwk for key in ordered]},
                          separators=(",", ":")).encode()
        return cls(infos, keys[active[0]], KeySet([key.private for key in ordered]), body,
                   '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def read_key_files(keys_dir: Path) -> list[tuple[SigningKey, datetime]]:
    """The PKCS#8 PEM files `<kid>.pem` of file-based releases, oldest first, with the time each
    was written. A file that cannot be read or parsed stops start-up."""
    keys = []
    for path in sorted(keys_dir.glob("*.pem")):
        try:
            pem = path.read_bytes()
            written = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        except OSError as exc:
            raise ConfigError(f"cannot read signing key {path}: {exc.strerror}") from exc
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"signing key {path} is not a valid PEM private key") from None
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ConfigError(f"signing key {path} is not an RSA private key")
        if private.key_size < MINIMUM_KEY_SIZE:  # as IDP_KEY_SIZE allows (NIST SP 800-131A)
            raise ConfigError(f"signing key {path} has {private.key_size} bits: at least "
                              f"{MINIMUM_KEY_SIZE} are needed")
        keys.append((SigningKey.from_private(private), written))
    return sorted(keys, key=lambda pair: pair[1])
