"""The `sub` a client knows a user by (OIDC Core §8).

A client registered with subject_type `public` (the default) gets the user's own identifier,
the same for every client. One registered `pairwise` gets an identifier of its own sector (the
host of its redirect URIs, or of its sector_identifier_uri: sectors.py), so that clients of
different sectors cannot match their users up by `sub`: in ID tokens, userinfo, access tokens,
introspection and logout tokens alike.

A pairwise subject is HMAC-SHA-256 of the sector and the user's identifier under
IDP_HASH_KEY: stable, nothing stored, and not computable by a client that learns the user's
public identifier elsewhere. Changing IDP_HASH_KEY changes every pairwise subject (besides
invalidating client secrets and refresh tokens, as the README says).
"""

from __future__ import annotations

from ..models.client import PAIRWISE_SUBJECTS
from ..security.hashing import hash_secret


def subject_for(user, client) -> str:
    """The `sub` by which `client` knows `user`."""
    if client.subject_type == PAIRWISE_SUBJECTS:
        return pairwise_subject(client.sector_identifier, user.subject)
    return user.subject


def pairwise_subject(sector: str, public_subject: str) -> str:
    return hash_secret(f"pairwise-sub\x00{sector}\x00{public_subject}")


class UserAsKnownBy:
    """A user with the `sub` one client knows them by: where Authlib turns a user into claims
    (ID tokens, userinfo), `subject` is that client's."""

    def __init__(self, user, subject: str):
        self._user = user
        self.subject = subject

    def __getattr__(self, name):
        return getattr(self._user, name)
