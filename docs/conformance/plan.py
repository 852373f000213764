"""Prepare a run of the OpenID Foundation conformance suite against this provider.

    IDP_... settings of the provider in the environment, then
    .venv/bin/python docs/conformance/plan.py --suite https://suite.example:8443 \
        --issuer https://id.example.com --password-stdin < password > plan.json

registers, through the `idp` admin CLI, the two static clients the suite's plans need (with
the suite's callback and post-logout URIs for --alias) and a test user without a second
factor, then prints the plan configuration to paste into the suite: the discovery URL, the
clients with their secrets, and the browser tasks that sign in and consent on this provider's
pages. Keep the output as secret as the client secrets it holds.

Plans to run (README of this folder): oidcc-basic-certification-test-plan,
oidcc-config-certification-test-plan, oidcc-rp-initiated-logout-certification-test-plan and
oidcc-formpost-basic-certification-test-plan, with server_metadata=discovery,
client_registration=static_client, client_auth_type=client_secret_basic, response_type=code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

USERNAME = "conformance"
SCOPE = "openid profile email offline_access"


def idp(*args: str, stdin: str | None = None) -> dict:
    """One `idp ... --json` command of the admin CLI beside this interpreter."""
    command = [str(Path(sys.executable).parent / "idp"), *args, "--json"]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"idp {' '.join(args[:2])}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def register(suite: str, alias: str, password: str) -> tuple[dict, dict]:
    """The test user (unless it exists) and two new clients; returns the clients."""
    if not any(user["username"] == USERNAME for user in idp("users", "list")):
        idp("users", "create", USERNAME, "--email", "conformance@example.com",
            "--name", "Conformance Tester", "--password-stdin", stdin=password + "\n")
    base = f"{suite.rstrip('/')}/test/a/{alias}"
    return tuple(idp(
        "clients", "create", "--name", f"OpenID conformance suite, client {n}",
        "--redirect-uri", f"{base}/callback",
        "--post-logout-redirect-uri", f"{base}/post_logout_redirect",
        "--backchannel-logout-uri", f"{base}/backchannel_logout",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", SCOPE) for n in (1, 2))


def browser_tasks(issuer: str, password: str) -> list[dict]:
    """What the suite's headless browser does on this provider's pages: sign in and consent
    on the way to the suite's callback; confirm a sign-out on the way to its post-logout page.
    The selectors are the pages' stable names (templates/auth, templates/oauth)."""
    return [
        {"match": f"{issuer}/authorize*", "tasks": [
            {"task": "Sign in", "optional": True, "match": f"{issuer}/login*", "commands": [
                ["text", "name", "username", USERNAME],
                ["text", "name", "password", password],
                ["click", "css", "form button[type=submit]"]]},
            # the consent page is served at /authorize itself (it posts to /consent)
            {"task": "Consent", "optional": True, "match": f"{issuer}/authorize*", "commands": [
                ["click", "css", "button[name=decision][value=allow]"]]},
            {"task": "Verify Complete", "match": "*/test/*/callback*", "commands": [
                ["wait", "id", "submission_complete", 10]]},
        ]},
        {"match": f"{issuer}/end_session*", "tasks": [
            {"task": "Confirm sign-out", "optional": True, "match": f"{issuer}/end_session*",
             "commands": [["click", "css", "button[name=confirm][value=yes]"]]},
            {"task": "Verify Complete", "match": "*/test/*/post_logout_redirect*"},
        ]},
    ]


def plan(suite: str, issuer: str, alias: str, password: str) -> dict:
    first, second = register(suite, alias, password)
    issuer = issuer.rstrip("/")
    return {
        "alias": alias,
        "description": "idp: a small OpenID Connect provider",
        "server": {"discoveryUrl": f"{issuer}/.well-known/openid-configuration",
                   "login_hint": USERNAME},
        "client": {"client_id": first["client_id"], "client_secret": first["client_secret"]},
        "client2": {"client_id": second["client_id"], "client_secret": second["client_secret"]},
        "browser": browser_tasks(issuer, password),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", required=True, help="the suite's base URL")
    parser.add_argument("--issuer", required=True, help="this provider's IDP_ISSUER")
    parser.add_argument("--alias", default="idp", help="the plan's alias on the suite")
    parser.add_argument("--password-stdin", action="store_true", required=True,
                        help="read the test user's password from standard input")
    args = parser.parse_args()
    password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    print(json.dumps(plan(args.suite, args.issuer, args.alias, password), indent=2))


if __name__ == "__main__":
    main()
