"""A client's logo_uri (OIDC Dynamic Registration §2, oidcc-registration-logo-uri): fetched
when the client is registered or changed, checked to be an image, and shown on the consent
page from the provider's own page, never linked (oauth/logos.py)."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from types import SimpleNamespace

import pytest
from PIL import Image

from idp.models import Client
from idp.models import db
from idp.models.client import RegisteredClient
from idp.oauth import logos

from ..conftest import add_user
from ..conftest import make_app
from ..helpers import Browserless
from ..helpers import page_text
from .test_registration import assert_refused
from .test_registration import register
from .test_registration import registered

WEB_APP = {"client_name": "Notes", "redirect_uris": ["https://notes.example/cb"]}


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG: opaque blue pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + b"\x1a\x56\xdb" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def pillow_image(image_format: str, width: int = 37, height: int = 21, mode: str = "RGB",
                 **options) -> bytes:
    """An image in `image_format` made by Pillow, a library that is not ours."""
    out = io.BytesIO()
    Image.new(mode, (width, height), "#1a56db").save(out, image_format, **options)
    return out.getvalue()


LOGO = png()
DATA_URL = "data:image/png;base64," + base64.b64encode(LOGO).decode()


@pytest.fixture
def app(tmp_path, signing_keys_dir):
    # The logos are served on loopback, which only an operator's setting allows.
    return make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open",
                    OUTBOUND_PRIVATE_NETWORKS="127.0.0.1/32")


def publish(documents, image: bytes, path="/logo.png", content_type="image/png") -> str:
    documents.answers[path] = (200, {"Content-Type": content_type}, image)
    return documents.url(path)


def consent_page(http, client) -> str:
    flow = Browserless(http, client)
    flow.authorize()
    return flow.follow(flow.login()).get_data(as_text=True)


def test_oidcc_registration_logo_uri(app, http, documents):
    add_user(app)
    logo_uri = publish(documents, LOGO)
    client = registered(http, {**WEB_APP, "logo_uri": logo_uri})
    assert client.body["logo_uri"] == logo_uri
    assert documents.requests == ["/logo.png"]
    html = consent_page(http, client)
    assert f'<img src="{DATA_URL}" alt="" id="client-logo" class="client-logo">' in html
    assert "its name and logo are its own claims" in page_text(html)
    assert logo_uri not in html  # nothing on the page is loaded from the client's site
    assert documents.requests == ["/logo.png"]  # fetched once, at registration


def test_a_client_without_a_logo_shows_none(app, http):
    add_user(app)
    html = consent_page(http, registered(http, WEB_APP))
    assert "id=\"client-logo\"" not in html
    assert "its name is its own claim" in page_text(html)


@pytest.mark.parametrize("image, media_type", [
    (LOGO, "image/png"),
    (pillow_image("JPEG"), "image/jpeg"),
    (pillow_image("GIF"), "image/gif"),
    (pillow_image("WEBP"), "image/webp"),
])
def test_the_image_is_known_by_its_first_bytes_not_its_content_type(app, http, documents,
                                                                   image, media_type):
    logo_uri = publish(documents, image, content_type="application/octet-stream")
    client = registered(http, {**WEB_APP, "logo_uri": logo_uri})
    with app.app_context():
        assert RegisteredClient.find(client.client_id).logo == (
            f"data:{media_type};base64,{base64.b64encode(image).decode()}")


@pytest.mark.parametrize("answer, message", [
    # SVG can carry script: refused whatever it is called.
    ((200, {"Content-Type": "image/svg+xml"},
      b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
     "PNG, JPEG, GIF or WebP"),
    ((200, {"Content-Type": "image/png"}, b"<html>not an image</html>"), "PNG, JPEG, GIF or WebP"),
    ((200, {"Content-Type": "image/png"}, b""), "PNG, JPEG, GIF or WebP"),
    ((200, {"Content-Type": "image/png"}, LOGO + b"\x00" * logos.MAX_BYTES), "more than"),
    ((404, {}, b""), "HTTP 404"),
])
def test_a_logo_uri_that_serves_no_usable_image_is_refused(app, http, documents, answer,
                                                           message):
    documents.answers["/logo.png"] = answer
    description = assert_refused(register(http, {**WEB_APP,
                                                 "logo_uri": documents.url("/logo.png")}))
    assert description.startswith("logo_uri ") and message in description
    with app.app_context():
        assert db.session.execute(db.select(Client)).first() is None


@pytest.mark.parametrize("image, media_type", [
    (pillow_image("PNG"), "image/png"),
    (pillow_image("JPEG"), "image/jpeg"),
    (pillow_image("JPEG", progressive=True), "image/jpeg"),
    (pillow_image("JPEG", exif=Image.Exif(), icc_profile=b"\x00" * 300), "image/jpeg"),
    (pillow_image("GIF"), "image/gif"),
    (pillow_image("WEBP"), "image/webp"),  # lossy: VP8
    (pillow_image("WEBP", lossless=True), "image/webp"),  # VP8L
    (pillow_image("WEBP", mode="RGBA"), "image/webp"),  # with alpha: VP8X
    (pillow_image("WEBP", width=2048, height=1), "image/webp"),
])
def test_the_size_is_read_from_the_header_as_pillow_reads_it(image, media_type):
    assert logos.media_type_of(image) == media_type
    assert logos.size_of(image, media_type) == Image.open(io.BytesIO(image)).size


def test_a_logo_larger_than_max_side_is_refused_and_the_largest_allowed_is_kept(app, http,
                                                                               documents):
    """A few KiB can claim an image the browser would spend gigabytes decoding."""
    claims_huge = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"
                   + struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0) + b"\x00" * 20)
    too_wide = pillow_image("PNG", width=logos.MAX_SIDE + 1, height=1)
    for image, size in ((claims_huge, "60000 x 60000"), (too_wide, "2049 x 1")):
        description = assert_refused(register(http, {**WEB_APP,
                                                     "logo_uri": publish(documents, image)}))
        assert description == (f"logo_uri serves an image of {size} pixels; it may be at most "
                               "2048 on each side.")
    largest = pillow_image("PNG", width=logos.MAX_SIDE, height=logos.MAX_SIDE)
    assert len(largest) <= logos.MAX_BYTES
    client = registered(http, {**WEB_APP, "logo_uri": publish(documents, largest)})
    with app.app_context():
        assert RegisteredClient.find(client.client_id).logo.startswith("data:image/png;base64,")


@pytest.mark.parametrize("image", [
    LOGO[:20],  # cut inside the header
    LOGO[:12] + b"IDAT" + LOGO[16:],  # IHDR not first
    png(width=0),
    b"\xff\xd8\xff\xd9",  # SOI, then at once EOI: no frame
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",  # cut before any frame
    b"\xff\xd8\xff\xe0\x00\x02\x00",  # not a marker after a segment
    b"\xff\xd8\xff\xe0\x00\x00\xff\xc0",  # a segment of length 0
    b"GIF89a\x01\x00",
    b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    b"RIFF\x24\x00\x00\x00WEBPVP8 \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"RIFF\x24\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"RIFF\x24\x00\x00\x00WEBPVP8X\x00\x00",  # cut short
    b"RIFF\x24\x00\x00\x00WEBPALPH\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
])
def test_a_logo_whose_size_cannot_be_read_is_refused(app, http, documents, image):
    description = assert_refused(register(http, {**WEB_APP,
                                                 "logo_uri": publish(documents, image)}))
    assert description.startswith("logo_uri serves a ") and description.endswith(
        " whose size cannot be read.")


@pytest.mark.parametrize("logo_uri", ["http://notes.example/logo.png",
                                      "javascript:alert(1)", "https://notes.example/l.png#x"])
def test_a_logo_uri_must_be_an_https_url(http, logo_uri):
    assert_refused(register(http, {**WEB_APP, "logo_uri": logo_uri}))


def test_a_logo_uri_that_leads_inside_is_not_fetched(tmp_path, signing_keys_dir, documents):
    """Without OUTBOUND_PRIVATE_NETWORKS, loopback is no client's to name."""
    http = make_app(tmp_path, signing_keys_dir, CLIENT_REGISTRATION="open").test_client()
    description = assert_refused(register(http, {**WEB_APP,
                                                 "logo_uri": publish(documents, LOGO)}))
    assert "cannot be fetched" in description
    assert documents.requests == []


def test_rfc7592_update_fetches_the_logo_again_or_removes_it(app, http, documents):
    created = register(http, {**WEB_APP, "logo_uri": publish(documents, LOGO)}).get_json()
    manage = {"Authorization": f"Bearer {created['registration_access_token']}"}
    client_uri = f"/register/{created['client_id']}"
    described = {**WEB_APP, "client_id": created["client_id"]}
    gif = b"GIF89a\x01\x00\x01\x00"
    new_uri = publish(documents, gif, path="/new.gif", content_type="image/gif")
    updated = http.put(client_uri, json={**described, "logo_uri": new_uri}, headers=manage)
    assert updated.status_code == 200 and updated.get_json()["logo_uri"] == new_uri
    with app.app_context():
        assert RegisteredClient.find(created["client_id"]).logo.startswith("data:image/gif;")
    # Each call turns the registration access token (RFC 7592 §3).
    manage = {"Authorization": f"Bearer {updated.get_json()['registration_access_token']}"}
    removed = http.put(client_uri, json=described, headers=manage)
    assert removed.status_code == 200 and "logo_uri" not in removed.get_json()
    with app.app_context():
        client = RegisteredClient.find(created["client_id"])
        assert client.logo_uri is None and client.logo is None


def test_the_logo_is_not_read_with_the_client_on_every_request(app, http, documents):
    """The token endpoint reads the client row on every request: not its largest column."""
    client = registered(http, {**WEB_APP, "logo_uri": publish(documents, LOGO)})
    with app.app_context():
        found = RegisteredClient.find(client.client_id)
        assert "logo" not in vars(found) and found.logo_uri is not None
        assert found.logo == DATA_URL  # read when asked for


def test_a_metadata_document_logo_is_not_fetched(tmp_path, signing_keys_dir, documents):
    """A document is fetched as a sign-in starts: a logo would be one fetch more, and one that
    failed would refuse the client."""
    metadata_app = make_app(tmp_path, signing_keys_dir, CLIENT_METADATA_DOCUMENTS=True,
                            OUTBOUND_PRIVATE_NETWORKS="127.0.0.1/32")
    add_user(metadata_app)
    http = metadata_app.test_client()
    client_id = documents.publish(logo_uri=publish(documents, LOGO))
    html = consent_page(http, SimpleNamespace(client_id=client_id, secret=None,
                                              redirect_uris=["https://agent.example/callback"]))
    assert "Allow" in html and "id=\"client-logo\"" not in html
    assert documents.requests == ["/client.json"]


def test_the_cli_fetches_the_logo_when_it_is_set(app, documents):
    runner = app.test_cli_runner()

    def idp(*args):
        return runner.invoke(args=[*args, "--json"])

    logo_uri = publish(documents, LOGO)
    created = idp("clients", "create", "--name", "Notes", "--redirect-uri",
                  "https://notes.example/cb", "--logo-uri", logo_uri)
    assert created.exit_code == 0, created.output
    client_id = json.loads(created.output)["client_id"]
    assert json.loads(created.output)["logo_uri"] == logo_uri
    with app.app_context():
        assert RegisteredClient.find(client_id).logo == DATA_URL
    # Other changes leave the logo as it is, unfetched.
    assert idp("clients", "update", client_id, "--name", "Notes 2").exit_code == 0
    assert documents.requests == ["/logo.png"]

    documents.answers["/logo.png"] = (200, {"Content-Type": "image/svg+xml"}, b"<svg/>")
    refused = idp("clients", "update", client_id, "--logo-uri", logo_uri)
    assert refused.exit_code != 0 and "--logo-uri must serve a PNG" in refused.output
    with app.app_context():
        assert RegisteredClient.find(client_id).logo == DATA_URL  # the change was not made
    removed = idp("clients", "update", client_id, "--logo-uri", "")
    assert json.loads(removed.output)["logo_uri"] is None
    plain_http = idp("clients", "create", "--name", "Bad", "--redirect-uri",
                     "https://notes.example/cb", "--logo-uri", "http://127.0.0.1/logo.png")
    assert plain_http.exit_code != 0 and "https" in plain_http.output
    with app.app_context():
        assert RegisteredClient.find(client_id).logo is None


@pytest.mark.parametrize("value", [None, True, 0, 1e308, "", "x", "\x00", "\ud800", "é☃", [],
                                   ["https://a.example/l.png"], {}, "https://" + "x" * 3000,
                                   "https://127.0.0.1:1/logo.png", "https://[::1]/logo.png",
                                   "https://a.example:99999/l.png", "https://a.example:x/l.png",
                                   "https://[zz]/l.png", "https:///l.png", "https://a.example\\@b/",
                                   "https://\u0430.example/l.png", "https://a.example/\x7f"])
def test_no_logo_uri_makes_a_500(http, value):
    response = register(http, {**WEB_APP, "logo_uri": value})
    if value is None:
        assert response.status_code == 201
    else:
        assert_refused(response)
