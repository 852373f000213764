"""A client's logo (`logo_uri`, OIDC Dynamic Registration §2), shown on the consent page so
that a user sees which app asks.

The consent page loads nothing from other sites (RFC 9700 §4.2.4: its Content-Security-Policy
allows images from itself and `data:` URLs only), so the image is not linked: it is fetched
when the client is registered, and again at each change to its registration, through
outbound.fetch_from_outside (https, public addresses only, MAX_BYTES within TIMEOUT_SECONDS),
and kept as a `data:` URL. What it is, is told by its first bytes, whatever the server's
Content-Type says: PNG, JPEG, GIF or WebP. SVG is refused, as it can carry script.

Its size in pixels is read from the format's header, and must be at most MAX_SIDE on each
side: a file of a few KiB can claim 60,000 x 60,000 pixels, which the user's browser would
try to decode on the consent page (14 GB). The server reads only the header; it never
decodes the image.
"""

from __future__ import annotations

import base64
import struct

from . import outbound

MAX_BYTES = 48 * 1024
MAX_SIDE = 2048  # pixels; a logo is drawn at 48
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
    size = size_of(image, media_type)
    if size is None or 0 in size:
        raise LogoUnusable(f"serves a {media_type.removeprefix('image/').upper()} whose size "
                           "cannot be read")
    if max(size) > MAX_SIDE:
        raise LogoUnusable(f"serves an image of {size[0]} x {size[1]} pixels; it may be at "
                           f"most {MAX_SIDE} on each side")
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


def size_of(image: bytes, media_type: str) -> tuple[int, int] | None:
    """(width, height) in pixels as the image's header states them, or None when the header
    is cut short or is not what the format defines."""
    try:
        return _SIZE_READERS[media_type](image)
    except (struct.error, IndexError):
        return None


def _png_size(image: bytes) -> tuple[int, int] | None:
    # The signature, then IHDR, which the PNG specification requires first (§5.6).
    if image[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", image[16:24])


def _gif_size(image: bytes) -> tuple[int, int]:
    # The logical screen descriptor, after the 6-byte signature: what the browser allocates.
    return struct.unpack("<HH", image[6:10])


# JPEG start-of-frame markers, which carry the size: SOF0-SOF15 but for DHT (C4), JPG (C8)
# and DAC (CC).
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, with no length after them: TEM, RST0-RST7, SOI.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(image: bytes) -> tuple[int, int] | None:
    """Walk the segments after SOI to the first frame header (ITU T.81 §B.2)."""
    position = 2
    while position < len(image):
        if image[position] != 0xFF:
            return None
        while image[position] == 0xFF:  # fill bytes before the marker
            position += 1
        marker = image[position]
        position += 1
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # the end of the image, or its data, before any frame
            return None
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", image[position + 3:position + 7])
            return width, height
        position += struct.unpack(">H", image[position:position + 2])[0]
    return None


def _webp_size(image: bytes) -> tuple[int, int] | None:
    """The first chunk of a WebP file says its size: VP8 (lossy), VP8L (lossless) or VP8X
    (extended: the canvas). RFC 9649 §2.5-2.7."""
    if len(image) < 30:  # shorter than any of the three headers
        return None
    kind = image[12:16]
    if kind == b"VP8 ":  # a key frame: start code, then 14-bit width and height
        if image[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", image[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":  # signature 0x2f, then width - 1 and height - 1 in 14 bits each
        if image[20] != 0x2F:
            return None
        bits = int.from_bytes(image[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":  # canvas width - 1 and height - 1, 24 bits each
        return (int.from_bytes(image[24:27], "little") + 1,
                int.from_bytes(image[27:30], "little") + 1)
    return None


_SIZE_READERS = {"image/png": _png_size, "image/gif": _gif_size, "image/jpeg": _jpeg_size,
                 "image/webp": _webp_size}
