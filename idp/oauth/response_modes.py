"""How the authorization response reaches the client: `response_mode` (OAuth 2.0 Multiple
Response Type Encoding Practices §2.1, and OAuth 2.0 Form Post Response Mode).

- `query`, the default for `response_type=code`: a redirect with the parameters in the query.
- `fragment`: a redirect with them in the fragment, which the browser never sends to a
  server (single-page apps read it from `location.hash`).
- `form_post`: a page that POSTs them to the redirect URI, so they stay out of the browser's
  history, the client's access logs and any Referer (ASP.NET Core and others ask for it by
  default).

- `jwt`, `query.jwt`, `fragment.jwt`, `form_post.jwt` (JARM, the JWT Secured Authorization
  Response Mode; FAPI 2.0 Message Signing): the same, carrying one parameter, `response`, a
  JWT the provider signs with its active key, holding the parameters with `iss`, `aud` (the
  client) and `exp` (RESPONSE_JWT_SECONDS). The client can check that the response comes from
  this provider, for it, unaltered. `jwt` is `query.jwt` for `response_type=code`.

The response is built once, by Authlib, as a query redirect with `iss` added (RFC 9207);
`deliver` re-encodes it. Errors follow the mode too, except an error about the mode itself,
which goes the default way.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Response
from flask import current_app
from flask import redirect
from flask import render_template

_PLAIN_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]+)?|http://\[::1\](:[0-9]+)?")
DEFAULT = "query"
SUPPORTED = ("query", "fragment", "form_post", "jwt", "query.jwt", "fragment.jwt",
             "form_post.jwt")
RESPONSE_JWT_SECONDS = 60  # JARM §2.1: short-lived, as the code it carries

# The form_post page's one script: submit the form on load. It is allowed by its hash, so the
# page's Content-Security-Policy admits no other script (and no inline handler).
SUBMIT_SCRIPT = 'document.getElementById("response").submit();'
SUBMIT_SCRIPT_HASH = "sha256-" + base64.b64encode(
    hashlib.sha256(SUBMIT_SCRIPT.encode()).digest()).decode()


def requested(params, redirect_uri: str | None) -> str:
    """The mode the request asks for, where it is one this redirect URI can take; otherwise
    the default, the way an error about it is sent."""
    mode = params.get("response_mode") or DEFAULT
    if mode not in SUPPORTED or (_base(mode) == "form_post" and not _is_web(redirect_uri)):
        return DEFAULT
    return mode


def validate(params, redirect_uri: str) -> None:
    """Part of checking an authorization request, at /authorize and /par."""
    mode = params.get("response_mode") or DEFAULT
    if mode not in SUPPORTED:
        raise InvalidRequestError(
            "response_mode must be one of: " + ", ".join(SUPPORTED) + ".",
            redirect_uri=redirect_uri, state=params.get("state"))
    if _base(mode) == "form_post" and not _is_web(redirect_uri):
        # A browser cannot POST a form to an app's own URI scheme.
        raise InvalidRequestError(
            f"response_mode={mode} needs an https or http redirect_uri.",
            redirect_uri=redirect_uri, state=params.get("state"))


def deliver(response: Response, redirect_uri: str, mode: str, client_id: str) -> Response:
    """Authlib's query redirect to `redirect_uri`, sent the way `mode` says instead."""
    if mode == DEFAULT or not response.location:
        return response
    params = response_parameters(response.location, redirect_uri)
    if mode != _base(mode):  # JARM: the parameters in a JWT, sent the base mode's way
        params = [("response", _signed(params, client_id))]
        if _base(mode) == DEFAULT:
            return redirect(_with_query(redirect_uri, params), code=302)
    if _base(mode) == "fragment":
        return redirect(f"{redirect_uri}#{urlencode(params)}", code=302)
    page = Response(render_template("oauth/form_post.html", action=redirect_uri, params=params,
                                    submit_script=SUBMIT_SCRIPT))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect_uri))
    # An origin of anything but host characters is left out rather than written into the
    # header (without form-action, CSP does not restrict the form).
    form_action = f"form-action {origin}; " if _PLAIN_ORIGIN.fullmatch(origin) else ""
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src '{SUBMIT_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
        f"{form_action}frame-ancestors 'none'; base-uri 'none'")
    return page


def _base(mode: str) -> str:
    """How a mode's parameters travel: `query.jwt` as `query` does; `jwt` is `query.jwt`."""
    return DEFAULT if mode == "jwt" else mode.removesuffix(".jwt")


def _signed(params: list[tuple[str, str]], client_id: str) -> str:
    """JARM §2.1: the response parameters (`iss` among them) as claims of a JWT for the
    client."""
    now = int(time.time())
    return current_app.extensions["idp.keys"].sign(
        {**dict(params), "aud": client_id, "exp": now + RESPONSE_JWT_SECONDS})


def _with_query(redirect_uri: str, params: list[tuple[str, str]]) -> str:
    """The redirect URI with `params` after its own query (RFC 6749 §3.1.2)."""
    return f"{redirect_uri}{'&' if urlsplit(redirect_uri).query else '?'}{urlencode(params)}"


def response_parameters(location: str, redirect_uri: str) -> list[tuple[str, str]]:
    """The parameters a query redirect added to the redirect URI: Authlib appends them after
    the URI's own query parameters, which a registered URI may have (RFC 6749 §3.1.2)."""
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    return parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own):]


def _is_web(redirect_uri: str | None) -> bool:
    return bool(redirect_uri) and urlsplit(redirect_uri).scheme in ("https", "http")
