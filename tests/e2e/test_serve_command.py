"""The README's first command, `bin/serve`: it installs the provider into .venv, creates the
schema and serves it under gunicorn on the embedded defaults, with its signing keys created at
the first start. Here on a scratch database and key folder, so the checkout's are untouched."""

from __future__ import annotations

import os
import subprocess
import time

import requests

from ..conftest import free_port
from .test_key_rotation import ROOT


def test_bin_serve_runs_the_provider_on_the_embedded_defaults(tmp_path):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("IDP_")}
    env.update({"IDP_BIND": f"127.0.0.1:{port}", "IDP_KEYS_DIR": str(tmp_path / "keys"),
                "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}"})
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(["bash", "bin/serve"], cwd=ROOT, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        metadata = None
        deadline = time.monotonic() + 240  # a first run installs into .venv
        while metadata is None and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                metadata = requests.get(f"{issuer}/.well-known/openid-configuration",
                                        timeout=5).json()
            except requests.RequestException:
                time.sleep(0.5)
        assert metadata is not None, log.read_text()
        assert metadata["issuer"] == issuer
        keys = requests.get(metadata["jwks_uri"], timeout=5).json()["keys"]
        assert keys and all(key["kty"] == "RSA" for key in keys)
        assert (tmp_path / "keys").is_dir()  # the generated passphrase and secrets
        assert f"Issuer:     {issuer}" in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
