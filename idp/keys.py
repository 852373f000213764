"""RS256 signing keys on disk and the JWKS that publishes them (RFC 7517, OIDC Core §10.1).

Each key is one PKCS#8 PEM file `<kid>.pem` (mode 0600) in KEYS_DIR; the kid is the RFC 7638
thumbprint of the public key, so it is unique and stable. The newest key signs; every key in
the folder is published.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from jwcrypto import jwk

from .config import ConfigError

ALGORITHM = "RS256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    created_at: datetime
    private: RSAKey  # joserfc key, used to sign
    public_jwk: dict[str, Any]  # what the JWKS publishes


class KeyStore:
    """The provider's signing keys. Loaded once per process; `ensure_key` creates the first."""

    def __init__(self, keys_dir: str | Path, key_size: int = 2048):
        self.keys_dir = Path(keys_dir)
        self.key_size = key_size
        self._keys: list[SigningKey] = []
        self._jwks_body = b""
        self._verify_set: KeySet | None = None

    def load(self) -> None:
        """Read every key file; a file that cannot be read or parsed stops start-up."""
        self.ensure_key()
        keys = [_read_key(path) for path in sorted(self.keys_dir.glob("*.pem"))]
        keys.sort(key=lambda k: k.created_at)
        self._keys = keys
        jwks = {"keys": [k.public_jwk for k in reversed(keys)]}
        self._jwks_body = json.dumps(jwks, separators=(",", ":")).encode()
        self._verify_set = KeySet([k.private for k in keys])

    def ensure_key(self) -> None:
        """Generate the first RSA key if the folder holds none. An exclusive lock makes racing
        workers agree on one key instead of each writing its own."""
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)  # private keys: no one else may even list them
        with open(self.keys_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not any(self.keys_dir.glob("*.pem")):
                generate_key(self.keys_dir, self.key_size)

    def signing_key(self) -> SigningKey:
        return self._keys[-1]

    def jwks_body(self) -> bytes:
        """The serialized public JWKS, built once per load."""
        return self._jwks_body

    def public_jwks(self) -> dict[str, Any]:
        return json.loads(self._jwks_body)

    def sign(self, claims: dict[str, Any], typ: str | None = None) -> str:
        key = self.signing_key()
        header = {"alg": ALGORITHM, "kid": key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, key.private, algorithms=[ALGORITHM])

    def verify(self, token: str) -> jwt.Token:
        """Check the signature of a JWT this provider issued; claims are the caller's to check.

        Only RS256 and only our own keys: a token's `jku`, `x5u` or embedded `jwk` header is
        never followed (ASVS 9.1.3). Raises joserfc's JoseError (or ValueError on garbage).
        """
        if not isinstance(token, str) or token.count(".") != 2:
            raise ValueError("not a compact JWS")
        return jwt.decode(token, self._verify_set, algorithms=[ALGORITHM])


def generate_key(keys_dir: Path, key_size: int) -> Path:
    """Write a new RSA private key atomically as `<kid>.pem`, mode 0600."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = jwk.JWK.from_pem(pem).thumbprint()
    fd, tmp = tempfile.mkstemp(dir=keys_dir, prefix=".tmp-", suffix=".pem")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        final = keys_dir / f"{kid}.pem"
        os.link(tmp, final)  # fails if it exists: never overwrite a key
    finally:
        os.unlink(tmp)
    return final


def _read_key(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
        key = jwk.JWK.from_pem(pem)
    except OSError as exc:
        raise ConfigError(f"cannot read signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError, jwk.JWException) as exc:
        raise ConfigError(f"signing key {path} is not a valid PEM private key") from exc
    if key.get("kty") != "RSA" or not key.has_private:
        raise ConfigError(f"signing key {path} is not an RSA private key")
    kid = key.thumbprint()
    public = key.export_public(as_dict=True)
    public.update(kid=kid, use="sig", alg=ALGORITHM)
    try:
        private = RSAKey.import_key(pem, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    except JoseError as exc:  # pragma: no cover - jwcrypto already parsed it
        raise ConfigError(f"signing key {path} cannot be used: {exc}") from exc
    created = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    return SigningKey(kid=kid, created_at=created, private=private, public_jwk=public)
