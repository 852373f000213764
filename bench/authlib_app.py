"""A reference for the bench: the smallest client-credentials endpoint Flask and Authlib make,
served by the same gunicorn settings as the provider. One client held in memory (no database,
no audit log, no throttling), a secret compared in constant time, an RS256 JWT as the token. The
provider's /token against this shows what the provider adds to the stack it is built on."""

import hmac
import secrets
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import grants
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"  # the bench sends these
KEY = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


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
