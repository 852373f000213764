"""Key rotation seen from outside: relying parties and resource servers validating with the JWKS
over HTTP, the admin CLI, and the provider as deployed (gunicorn, config/gunicorn.py, two
workers, the CLI as a separate process) following rotations without a restart."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import requests
from jwcrypto import jwk
from jwcrypto import jwt

from ..conftest import _fresh_database
from ..conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def kid_of(token: str) -> str:
    return jwt.JWT.from_jose_token(token).token.jose_header["kid"]


def jwks(url: str) -> requests.Response:
    response = requests.get(f"{url}/jwks.json", timeout=5)
    assert response.status_code == 200
    return response


def validate_with_jwks(url: str, token: str) -> dict:
    """What a relying party does: fetch the JWKS, pick the key by kid, check RS256."""
    keyset = jwk.JWKSet.from_json(jwks(url).text)
    return json.loads(jwt.JWT(jwt=token, key=keyset, algs=["RS256"]).claims)


def key_list(provider) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for key in provider.idp("keys", "list"):
        states.setdefault(key["state"], []).append(key["kid"])
    return states


# --- one provider on a live server, rotated through the admin CLI ---------------------------

def test_tokens_issued_before_a_rotation_still_validate_after_it(provider, alice, web_app,
                                                                 service, resource_server):
    user_tokens = provider.user_tokens(web_app)
    service_token = provider.client_credentials(service).json()["access_token"]
    old_kid = kid_of(service_token)
    assert kid_of(user_tokens["id_token"]) == kid_of(user_tokens["access_token"]) == old_kid

    rotation = provider.idp("keys", "rotate", "--force")
    assert rotation["retired"] == old_kid

    for token in (user_tokens["id_token"], user_tokens["access_token"], service_token):
        assert validate_with_jwks(provider.url, token)["iss"] == provider.metadata["issuer"]
    assert provider.introspect(resource_server, service_token)["active"] is True
    assert provider.userinfo(user_tokens["access_token"]).json()["sub"] == alice.subject
    # the retired key's tokens are alive: prune keeps it published
    assert provider.idp("keys", "prune") == {"pruned": []}
    assert old_kid in {key["kid"] for key in jwks(provider.url).json()["keys"]}


def test_new_tokens_carry_the_new_kid(provider, alice, web_app, service):
    rotation = provider.idp("keys", "rotate", "--force")
    service_token = provider.client_credentials(service).json()["access_token"]
    user_tokens = provider.user_tokens(web_app)
    for token in (service_token, user_tokens["id_token"], user_tokens["access_token"]):
        assert kid_of(token) == rotation["activated"]
        assert validate_with_jwks(provider.url, token)["iss"] == provider.metadata["issuer"]


def test_next_key_is_in_the_jwks_before_it_signs(provider, service):
    next_kid = key_list(provider)["next"][0]
    published = [key["kid"] for key in jwks(provider.url).json()["keys"]]
    assert next_kid in published
    assert kid_of(provider.client_credentials(service).json()["access_token"]) != next_kid
    assert published[0] == key_list(provider)["active"][0]  # the signing key comes first

    provider.idp("keys", "rotate", "--force")
    assert kid_of(provider.client_credentials(service).json()["access_token"]) == next_kid


def test_rotation_refuses_a_key_younger_than_the_jwks_cache_unless_forced(provider):
    before = key_list(provider)
    refused = provider.app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert refused.exit_code != 0
    assert refused.stderr.strip().count("\n") == 0
    assert "--force" in refused.stderr and before["next"][0] in refused.stderr
    assert key_list(provider) == before
    forced = provider.idp("keys", "rotate", "--force")
    assert forced["activated"] == before["next"][0]


def test_rotate_if_due_does_nothing_before_the_rotation_period(provider):
    before = key_list(provider)
    result = provider.idp("keys", "rotate", "--if-due")
    assert result["rotated"] is False and result["due_at"]
    assert key_list(provider) == before
    both = provider.app.test_cli_runner().invoke(args=["keys", "rotate", "--if-due", "--force"])
    assert both.exit_code != 0 and "not both" in both.stderr


def test_jwks_etag_and_max_age_follow_rotations(provider):
    first = jwks(provider.url)
    max_age = int(re.search(r"max-age=(\d+)", first.headers["Cache-Control"]).group(1))
    assert 0 < max_age <= provider.app.config["KEY_PUBLICATION_LEAD_SECONDS"]
    etag = first.headers["ETag"]
    unchanged = requests.get(f"{provider.url}/jwks.json", headers={"If-None-Match": etag},
                             timeout=5)
    assert unchanged.status_code == 304

    rotation = provider.idp("keys", "rotate", "--force")
    changed = requests.get(f"{provider.url}/jwks.json", headers={"If-None-Match": etag},
                           timeout=5)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert rotation["published"] in {key["kid"] for key in changed.json()["keys"]}


# --- the provider as deployed: gunicorn with two workers, the CLI in its own process --------

REFRESH_SECONDS = 2


class Deployment:
    """gunicorn with config/gunicorn.py and two sync workers on a scratch database and keys
    folder, as bench/load.py starts it. The access log names, for each request, the worker
    (pid) that served it and the probe id the test sent, so answers can be told apart."""

    def __init__(self, tmp_path: Path, **settings):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.access_log = tmp_path / "access.log"
        self.server_log = tmp_path / "server.log"
        self.env = {
            **os.environ,
            "IDP_ENV": "development",
            "IDP_ISSUER": self.url,
            "IDP_BIND": f"127.0.0.1:{port}",
            "IDP_WORKERS": "2",
            "IDP_KEYS_DIR": str(tmp_path / "keys"),
            "IDP_DATABASE_URL": _fresh_database(tmp_path),
            "IDP_ACCESS_LOG": str(self.access_log),
            "IDP_KEYS_REFRESH_SECONDS": str(REFRESH_SECONDS),
            **{f"IDP_{name}": str(value) for name, value in settings.items()},
        }
        self.process: subprocess.Popen | None = None

    def idp(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "idp"), *args], env={**self.env, **env}, cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)

    def idp_json(self, *args: str) -> dict:
        done = self.idp(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self) -> None:
        assert self.idp("db", "upgrade").returncode == 0
        with self.server_log.open("w") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "config/gunicorn.py",
                 "--access-logformat", "%(p)s %({x-probe}i)s", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/jwks.json", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            assert self.process.poll() is None, self.server_log.read_text()
            time.sleep(0.2)
        pytest.fail(f"gunicorn did not start: {self.server_log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def service(self) -> tuple[str, str]:
        created = self.idp_json("clients", "create", "--name", "Service",
                                "--grant-type", "client_credentials", "--scope", "")
        return created["client_id"], created["client_secret"]

    def signing_kids(self, client: tuple[str, str], requests_count: int = 16) -> list:
        """(worker pid, kid) of concurrent requests, in the order each worker served them:
        the kid of a new access token, or of the first key of the JWKS (the signing key)."""
        def ask(index: int) -> tuple[str, str]:
            probe = secrets.token_hex(8)
            headers = {"X-Probe": probe}
            if index % 2:
                key = requests.get(f"{self.url}/jwks.json", headers=headers, timeout=5)
                return probe, key.json()["keys"][0]["kid"]
            token = requests.post(f"{self.url}/token", auth=client, headers=headers, timeout=5,
                                  data={"grant_type": "client_credentials"})
            return probe, kid_of(token.json()["access_token"])

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = dict(pool.map(ask, range(requests_count)))
        served = [line.split() for line in self.access_log.read_text().splitlines()]
        return [(pid, answers[probe]) for pid, probe in served if probe in answers]


@pytest.fixture
def deployment(tmp_path):
    started: list[Deployment] = []

    def deploy(**settings) -> Deployment:
        started.append(Deployment(tmp_path, **settings))
        started[-1].start()
        return started[-1]

    yield deploy
    for running in started:
        running.stop()


def until_both_workers(deployed: Deployment, client, done, seconds: float) -> list:
    """Sample until `done(answers)` holds for both workers; returns every answer seen."""
    seen: list = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen += deployed.signing_kids(client)
        if len({pid for pid, _ in seen}) == 2 and done(seen):
            return seen
    pytest.fail(f"after {seconds} s the workers answered {sorted(set(seen))}")


def last_kid_by_worker(answers: list) -> dict[str, str]:
    return dict(answers)  # later answers of a worker replace earlier ones


def test_two_gunicorn_workers_agree_on_the_signing_key_right_after_a_cli_rotation(deployment):
    deployed = deployment()
    client = deployed.service()
    before = until_both_workers(deployed, client, lambda seen: True, seconds=15)
    old_kid = before[0][1]
    assert {kid for _, kid in before} == {old_kid}

    rotated = deployed.idp_json("keys", "rotate", "--force")
    assert rotated["retired"] == old_kid
    new_kid = rotated["activated"]

    after = until_both_workers(
        deployed, client,
        lambda seen: set(last_kid_by_worker(seen).values()) == {new_kid},
        seconds=REFRESH_SECONDS + 8)  # within seconds, on a shared 2-core machine
    switched = set()  # once a worker uses the new key, it never goes back
    for pid, kid in after:
        assert kid in (old_kid, new_kid)
        if kid == new_kid:
            switched.add(pid)
        assert not (pid in switched and kid == old_kid)
    assert set(last_kid_by_worker(deployed.signing_kids(client)).values()) == {new_kid}


def test_gunicorn_workers_rotate_a_due_key_without_cron_or_restart(deployment):
    period, lead = 4, 3
    deployed = deployment(KEY_ROTATION_PERIOD_SECONDS=period, KEY_PUBLICATION_LEAD_SECONDS=lead,
                          JWKS_MAX_AGE_SECONDS=1)
    client = deployed.service()
    first = until_both_workers(deployed, client, lambda seen: True, seconds=15)[0][1]

    def rotated_and_agreed(seen):
        signing = set(last_kid_by_worker(seen).values())
        return len(signing) == 1 and first not in signing

    until_both_workers(deployed, client, rotated_and_agreed, seconds=period + REFRESH_SECONDS + 10)
    deployed.stop()
    listed = deployed.idp_json("keys", "list")
    assert [key["state"] for key in listed].count("active") == 1
    for key in listed:
        if key["activated_at"] and key["kid"] != first:  # published for the lead time first
            assert seconds_between(key["created_at"], key["activated_at"]) >= lead
        if key["state"] == "retired":  # both workers saw each due rotation; one made it
            assert seconds_between(key["activated_at"], key["retired_at"]) >= period


def test_a_key_that_cannot_be_decrypted_stops_the_cli_and_gunicorn_in_one_line(deployment):
    deployed = deployment()
    deployed.stop()
    wrong = {"IDP_KEYS_PASSPHRASE": "not the passphrase the keys were encrypted with"}
    listed = deployed.idp("keys", "list", **wrong)
    assert listed.returncode != 0
    assert listed.stderr.strip().count("\n") == 0
    assert "cannot be decrypted with IDP_KEYS_PASSPHRASE" in listed.stderr
    server = subprocess.run([str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "wsgi:app"],
                            cwd=ROOT, env={**deployed.env, **wrong}, capture_output=True,
                            text=True, timeout=60, check=False)
    assert server.returncode != 0
    assert re.search(r"idp: signing key \S+ in the database cannot be decrypted", server.stdout
                     + server.stderr)


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
