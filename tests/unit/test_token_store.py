"""token_store.AccessToken: what Authlib's endpoints ask of a verified access token."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6750 import InvalidTokenError

from idp.oauth.token_store import AccessToken

from ..conftest import add_client


def test_the_client_of_a_token_is_read_when_asked_and_a_deleted_one_is_an_invalid_token(app):
    added = add_client(app)
    with app.test_request_context():
        assert AccessToken({"client_id": added.client_id}, family=None).get_client().name == (
            added.name)
        # Deleted between the token's check and /userinfo's question: 401, never a 500.
        with pytest.raises(InvalidTokenError):
            AccessToken({"client_id": "deleted-client"}, family=None).get_client()
