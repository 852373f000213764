"""A reference for the bench: a WSGI app with no framework, no client check and no database that
answers every request with a freshly signed RS256 JWT, served by the same gunicorn settings as
the provider. It is the ceiling of any token endpoint on this machine and server: one signature,
plus what gunicorn and the operating system cost per request."""

import json
import secrets
import time

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

KEY = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
HEADER = {"alg": "RS256", "typ": "at+jwt", "kid": KEY.thumbprint()}


def app(environ, start_response):
    environ["wsgi.input"].read()
    now = int(time.time())
    claims = {"iss": "http://127.0.0.1", "sub": "bench", "aud": "https://api.example.com/bench",
              "client_id": "bench", "scope": "bench:read bench:write",
              "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 600}
    body = json.dumps({"access_token": jwt.encode(HEADER, claims, KEY), "token_type": "Bearer",
                       "expires_in": 600, "scope": claims["scope"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                              ("Content-Length", str(len(body)))])
    return [body]
