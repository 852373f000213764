"""PKCE (RFC 7636), S256 only and required for every client (RFC 9700 §2.1.1).

Authlib's CodeChallenge defaults a missing method to `plain` and lets a request without a
challenge through /authorize; neither is acceptable here.
"""

from __future__ import annotations

import hmac

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636 import create_s256_code_challenge


def s256_matches(code_verifier: str, code_challenge: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    return hmac.compare_digest(create_s256_code_challenge(code_verifier), code_challenge)


class S256CodeChallenge(CodeChallenge):
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": s256_matches}

    def __init__(self):
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        # Every code carries a challenge, so every exchange needs a verifier, whatever the
        # client type (the base class asks only public clients).
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)
