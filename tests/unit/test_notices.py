"""How the notices reach the mail server: TLS unless it is on this host, credentials decoded."""

from urllib.parse import urlsplit

import pytest

from idp.security.notices import _secure_and_log_in


class RecordingSmtp:
    def __init__(self):
        self.calls = []

    def starttls(self, context):
        self.calls.append("starttls")

    def login(self, user, password):
        self.calls.append(("login", user, password))


@pytest.mark.parametrize("url, calls", [
    # STARTTLS before the password crosses a network
    ("smtp://relay%40example.com:p%2Fw@mail.example.com:587",
     ["starttls", ("login", "relay@example.com", "p/w")]),
    ("smtp://mail.example.com", ["starttls"]),
    ("smtps://u:p@mail.example.com", [("login", "u", "p")]),  # TLS from the first byte
    ("smtp://127.0.0.1:25", []),  # a relay on this host
    ("smtp://[::1]:25", []),
])
def test_tls_unless_the_relay_is_on_this_host(url, calls):
    smtp = RecordingSmtp()
    _secure_and_log_in(smtp, urlsplit(url))
    assert smtp.calls == calls
