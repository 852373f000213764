"""An https server of client ID metadata documents on 127.0.0.1, with a certificate the
provider is made to trust (SSL_CERT_FILE), for tests of oauth/metadata_documents.py."""

from __future__ import annotations

import http.server
import ipaddress
import json
import ssl
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Names the certificate holds besides 127.0.0.1: tests resolve them to it themselves.
CERTIFIED_NAMES = ("client.test",)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and CERTIFIED_NAMES, its own issuer; (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "metadata documents")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             *(x509.DNSName(dns) for dns in CERTIFIED_NAMES)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class DocumentServer:
    """Serves what `answers` holds for each path: (status, headers, body). `requests` lists
    the paths asked for, in order; `posts` what was POSTed, answered 200."""

    def __init__(self, cert_file: Path, key_file: Path):
        self.answers: dict[str, tuple[int, dict, bytes]] = {}
        self.requests: list[str] = []
        self.posts: list[tuple[str, str, str]] = []  # path, Content-Type, body
        self.delay = 0.0  # seconds between the headers and each byte of the body
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                status, headers, body = server.answers.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                for byte in ([body[i:i + 1] for i in range(len(body))] if server.delay
                             else [body]):
                    time.sleep(server.delay)
                    try:
                        self.wfile.write(byte)
                        self.wfile.flush()
                    except OSError:  # the provider gave up
                        return

            def do_POST(self):  # a back-channel logout call
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.posts.append((self.path, self.headers["Content-Type"], body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/client.json", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def publish(self, path: str = "/client.json", document: dict | None = None,
                status: int = 200, headers: dict | None = None, host: str = "127.0.0.1",
                **metadata) -> str:
        """Serve a document at `path`; by default one whose client_id is its own URL, with
        `metadata`. Returns that URL."""
        url = self.url(path, host)
        if document is None:
            document = {"client_id": url, "client_name": "Agent",
                        "redirect_uris": ["https://agent.example/callback"],
                        "token_endpoint_auth_method": "none", **metadata}
        self.answers[path] = (status, headers or {}, json.dumps(document).encode())
        return url

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
