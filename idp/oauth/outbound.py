"""Calls this provider makes to other servers. None follows a redirect: the server named is
the one called, and a redirect is an answer other than 200.

- To URLs the operator registered (back-channel logout in backchannel.py, a client's keys at
  the jwks_uri the operator gave, client_keys.py): OPENER, with a timeout.
- To URLs anyone may name (a client ID metadata document, metadata_documents.py; the
  jwks_uri of a client that registered itself, client_keys.py; a request object by
  reference, request_objects.py; a sector_identifier_uri, sectors.py): fetch_from_outside;
  and the back-channel logout URI of a client that registered itself: post_form_outside.
  Without them, a client_id of https://169.254.169.254/... or https://db.internal/... would
  make the provider call into its own network (SSRF). They resolve the host once, refuse it
  unless every address is public (or in a network the operator allows,
  OUTBOUND_PRIVATE_NETWORKS), and connect to the address checked, so that a second
  resolution cannot point elsewhere (DNS rebinding). TLS is still verified against the
  host's name, and the whole fetch, not each read, has the time limit.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask import current_app


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_RefuseRedirects())

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchFailed(Exception):
    """Why a fetch gave nothing usable, in words safe to log and to show the client.
    `transient`: the server could not be reached or answered 5xx or 429, which may pass;
    otherwise the URL, or what it serves, is refused as such."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.transient = transient


def parse_networks(text: str) -> tuple[Network, ...]:
    """Space-separated CIDR networks (OUTBOUND_PRIVATE_NETWORKS); ValueError names a bad one."""
    networks = []
    for item in text.split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network such as 10.0.0.0/8") from None
    return tuple(networks)


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in its last 32 bits


def may_call(address: str, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether a URL anyone may name can lead here: a public unicast address, or one in
    `allowed`. An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4, Teredo) is
    judged by the IPv4 address it leads to."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone index names an interface
    if isinstance(ip, ipaddress.IPv6Address):
        ip = (ip.ipv4_mapped or ip.sixtofour or (ip.teredo or (None, None))[1]
              or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else ip))
    if any(ip in network for network in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def fetch_from_outside(url: str, *, max_bytes: int, timeout: float,
                       accept: str = "application/json") -> http.client.HTTPResponse:
    """GET an https `url` that anyone may have named; the 200 response, its body read (at
    most `max_bytes`) into `response.body`. FetchFailed says why there is none."""
    deadline = time.monotonic() + timeout
    allowed = parse_networks(current_app.config["OUTBOUND_PRIVATE_NETWORKS"])
    with _connection_outside(url, timeout, allowed) as (connection, target):
        connection.request("GET", target, headers={"Accept": accept, "User-Agent": "idp"})
        response = connection.getresponse()
        if response.status != 200:
            raise FetchFailed(f"HTTP {response.status}",
                              transient=response.status >= 500 or response.status == 429)
        response.body = _read_until(response, max_bytes, deadline)
        return response


def post_form_outside(url: str, form: dict, *, timeout: float,
                      allowed: tuple[Network, ...]) -> int:
    """POST `form` to an https `url` that anyone may have named (a back-channel logout URI a
    client registered itself); the status of the answer, whose body is not read.
    FetchFailed says why there is none. `allowed`: OUTBOUND_PRIVATE_NETWORKS, parsed by the
    caller, which may run outside the app (after the response)."""
    with _connection_outside(url, timeout, allowed) as (connection, target):
        connection.request("POST", target, body=urlencode(form), headers={
            "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "idp"})
        return connection.getresponse().status


@contextmanager
def _connection_outside(url: str, timeout: float, allowed: tuple[Network, ...]):
    """An HTTPS connection to the host of `url`, at an address it resolved to that may be
    called, and the request target; failures to connect or read as FetchFailed."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:  # a port that is no number, or out of range
        raise FetchFailed("the URL is not valid") from None
    if parts.scheme != "https" or not parts.hostname:
        raise FetchFailed("the URL must be https with a host")
    address = _checked_address(parts.hostname, port, allowed)
    connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                             context=ssl.create_default_context())
    # Connect to the address checked above; TLS still names, and verifies, the host.
    connection._create_connection = lambda _, timeout_, source: socket.create_connection(
        (address, port), timeout_, source)
    try:
        yield connection, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    except ssl.SSLError:
        raise FetchFailed("the TLS connection failed (is the certificate valid?)",
                          transient=True) from None
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, garbled
        raise FetchFailed(f"the server could not be read ({type(error).__name__})",
                          transient=True) from None
    finally:
        connection.close()


def _checked_address(host: str, port: int, allowed: tuple[Network, ...]) -> str:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed("the host name does not resolve", transient=True) from None
    addresses = [info[4][0] for info in found]
    # Every address, not just the first: a name that also leads inside is refused outright.
    if not addresses or not all(may_call(address, allowed) for address in addresses):
        raise FetchFailed("the host is not on the public internet")
    return addresses[0]


def _read_until(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """The body, read in pieces so that a server sending a byte a second is cut off at the
    deadline rather than at a timeout per read."""
    if response.length is not None and response.length > max_bytes:  # its Content-Length
        raise FetchFailed(f"more than {max_bytes} bytes")
    body = b""
    while chunk := response.read1(1024):
        body += chunk
        if len(body) > max_bytes:
            raise FetchFailed(f"more than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchFailed("the server is too slow", transient=True)
    return body
