"""Calls this provider makes to other servers: back-channel logout (backchannel.py) and a
client's keys at its jwks_uri (remote_jwks.py). Each has a timeout, and none follows a
redirect: the server registered is the one called, and a redirect is an answer other than 200.
"""

from __future__ import annotations

import urllib.request


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_RefuseRedirects())
