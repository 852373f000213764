"""A reference for the bench: the smallest client-credentials and introspection endpoints Flask
and Authlib make, served by the same gunicorn settings as the provider. One client held in
memory (no database, no audit log, no throttling), a secret compared in constant time, an RS256
JWT as the token, checked by its signature and expiry alone (no revocation). The provider's
endpoints against these show what the provider adds to the stack it is built on."""

import hmac
import os
import secrets
import time
from pathlib import Path

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"  # the bench sends these
# Every worker must sign with the same key for introspection to work: the bench passes a file.
KEY = RSAKey.import_key(Path(os.environ["BENCH_KEY_FILE"]).read_bytes()
                        if os.environ.get("BENCH_KEY_FILE")
                        else rsa.generate_private_key(public_exponent=65537, key_size=2048))


class Client(ClientMixin):
    client_id = CLIENT_ID

    def get_client_id(self):
        return self.client_id

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic"

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope):
        return scope or ""


def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                   include_refresh_token=True):
    now = int(time.time())
    claims = {"iss": "http://127.0.0.1", "sub": client.client_id, "aud": "bench",
              "client_id": client.client_id, "scope": scope or "",
              "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 600}
    token = jwt.encode({"alg": "RS256", "typ": "at+jwt"}, claims, KEY)
    return {"access_token": token, "token_type": "Bearer", "expires_in": 600}


app = Flask(__name__)
server = AuthorizationServer(app, query_client=lambda cid: Client() if cid == CLIENT_ID else None,
                             save_token=lambda token, request: None)
server.register_token_generator("default", generate_token)
server.register_grant(grants.ClientCredentialsGrant)


@app.post("/token")
def token():
    return server.create_token_response()


class Token(dict):
    def is_expired(self):
        return self["exp"] <= time.time()

    def is_revoked(self):
        return False


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic"]

    def query_token(self, token_string, token_type_hint):
        try:
            claims = jwt.decode(token_string, KEY, algorithms=["RS256"]).claims
        except (JoseError, ValueError):
            return None
        return Token(claims)

    def check_permission(self, token, client, request):
        return token["client_id"] == client.client_id

    def introspect_token(self, token):
        return {"active": True, **token}


server.register_endpoint(Introspection)


@app.post("/introspect")
def introspect():
    return server.create_endpoint_response("introspection")

