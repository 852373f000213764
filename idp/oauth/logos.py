"""A client's logo (`logo_uri`, OIDC Dynamic Registration §2), shown on the consent page so
that a user sees which app asks.

The consent page loads nothing from other sites (RFC 9700 §4.2.4: its Content-Security-Policy
allows images from itself and `data:` URLs only), so the image is not linked: it is fetched
when the client is registered, and again at each change to its registration, through
outbound.fetch_from_outside (https, public addresses only, MAX_BYTES within TIMEOUT_SECONDS),
and kept as a `data:` URL. What it is, is told by its first bytes, whatever the server's
Content-Type says: PNG, JPEG, GIF or WebP. SVG is refused, as it can carry script.
"""

from __future__ import annotations

import base64

from . import outbound

MAX_BYTES = 48 * 1024
TIMEOUT_SECONDS = 5
ACCEPT = "image/png, image/jpeg, image/gif, image/webp"


class LogoUnusable(Exception):
    """Why a logo_uri gives no logo, after "logo_uri"."""


def fetch_logo(uri: str) -> str:
    """The image at `uri` as a data: URL; LogoUnusable says why there is none."""
    try:
        image = outbound.fetch_from_outside(uri, max_bytes=MAX_BYTES, timeout=TIMEOUT_SECONDS,
                                            accept=ACCEPT).body
    except outbound.FetchFailed as error:
        raise LogoUnusable(f"cannot be fetched: {error}") from None
    media_type = media_type_of(image)
    if media_type is None:
        raise LogoUnusable("must serve a PNG, JPEG, GIF or WebP image")
    return f"data:{media_type};base64,{base64.b64encode(image).decode()}"


def media_type_of(image: bytes) -> str | None:
    """The image format its first bytes name, or None."""
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if image.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    return None
