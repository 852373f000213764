"""docs/conformance/plan.py: the clients it registers work, and the browser tasks it writes for
the conformance suite's headless browser get through this provider's real pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from ..helpers import basic_auth
from ..helpers import pkce_pair
from ..helpers import query_of
from .conftest import page_server

pytestmark = pytest.mark.browser

PLAN_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "plan.py"
TEST_USER_PASSWORD = "a passphrase only the suite types"


@pytest.fixture
def suite_posts() -> list:
    return []


@pytest.fixture
def suite(suite_posts):
    """A stand-in for the suite on a loopback port (a route in the browser would not see the
    provider's redirects to it). It marks a finished callback with id=submission_complete, and
    keeps what the Form Post plan's responses POST to it."""
    with page_server(b"<p id='submission_complete'>done</p>", suite_posts) as origin:
        yield origin


@pytest.fixture
def plan(live_server, suite):
    config = live_server.app.config
    env = {**os.environ, "IDP_ENV": "development", "IDP_ISSUER": live_server.url,
           "IDP_KEYS_DIR": config["KEYS_DIR"], "IDP_DATABASE_URL": config["DATABASE_URL"]}
    done = subprocess.run(
        [sys.executable, str(PLAN_SCRIPT), "--suite", suite, "--issuer", live_server.url,
         "--password-stdin"], input=TEST_USER_PASSWORD + "\n", env=env, capture_output=True,
        text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_browser_tasks(page, entry: dict, url: str) -> None:
    """The suite's interpretation of a plan's browser entry, as far as this plan uses it."""
    assert fnmatch(url, entry["match"])
    page.goto(url)
    selectors = {"name": "[name={}]", "id": "#{}", "css": "{}"}
    for task in entry["tasks"]:
        if not fnmatch(page.url, task["match"]):
            if task.get("optional"):
                continue
            page.wait_for_url(lambda now, glob=task["match"]: fnmatch(now, glob), timeout=10_000)
        for action, kind, target, *arguments in task.get("commands", []):
            locator = page.locator(selectors[kind].format(target))
            if action == "text":
                locator.fill(arguments[0])
            elif action == "click":
                with page.expect_navigation():
                    locator.click()
            else:
                assert action == "wait"
                locator.wait_for(timeout=arguments[0] * 1000)


def test_the_plan_registers_what_the_suite_needs(live_server, plan):
    assert plan["server"] == {"discoveryUrl": f"{live_server.url}/.well-known/openid-configuration",
                              "login_hint": "conformance"}
    assert plan["client"]["client_id"] != plan["client2"]["client_id"]
    discovery = requests.get(plan["server"]["discoveryUrl"], timeout=10).json()
    assert discovery["issuer"] == live_server.url
    runner = live_server.app.test_cli_runner()
    for client in (plan["client"], plan["client2"]):  # the back-channel logout plan's URI too
        shown = json.loads(runner.invoke(args=["clients", "show", client["client_id"],
                                               "--json"]).output)
        assert shown["backchannel_logout_uri"].endswith("/test/a/idp/backchannel_logout")


def test_the_browser_tasks_sign_in_and_consent_and_the_secret_redeems_the_code(
        live_server, suite, plan, page):
    client = plan["client"]
    verifier, challenge = pkce_pair()
    callback = f"{suite}/test/a/idp/callback"
    url = f"{live_server.url}/authorize?" + urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": callback,
        "scope": "openid profile email", "state": "s1", "nonce": "n1",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    run_browser_tasks(page, plan["browser"][0], url)
    response = query_of(page.url)
    assert page.url.startswith(callback) and response["state"] == "s1"

    tokens = requests.post(f"{live_server.url}/token", data={
        "grant_type": "authorization_code", "code": response["code"], "redirect_uri": callback,
        "code_verifier": verifier}, headers=basic_auth(client["client_id"],
                                                       client["client_secret"]), timeout=10)
    assert tokens.status_code == 200, tokens.text

    # RP-initiated logout, to the post-logout page registered for the suite
    run_browser_tasks(page, plan["browser"][1], f"{live_server.url}/end_session?" + urlencode({
        "id_token_hint": tokens.json()["id_token"], "state": "s2",
        "post_logout_redirect_uri": f"{suite}/test/a/idp/post_logout_redirect"}))
    assert query_of(page.url) == {"state": "s2"}


def test_the_browser_tasks_get_a_form_post_response_to_the_suite(live_server, suite, plan,
                                                                  page, suite_posts):
    """oidcc-formpost-basic-certification-test-plan: the same tasks, the response POSTed."""
    callback = f"{suite}/test/a/idp/callback"
    run_browser_tasks(page, plan["browser"][0], f"{live_server.url}/authorize?" + urlencode({
        "response_type": "code", "client_id": plan["client"]["client_id"],
        "redirect_uri": callback, "scope": "openid", "state": "s3", "nonce": "n3",
        "code_challenge": pkce_pair()[1], "code_challenge_method": "S256",
        "response_mode": "form_post"}))
    assert page.url == callback
    [(path, fields)] = suite_posts
    assert path == "/test/a/idp/callback" and fields["state"] == "s3" and "code" in fields


def test_the_sign_out_confirmation_task_gets_through_the_question(live_server, plan, page):
    """Without an id_token_hint the provider asks before it signs the user out."""
    run_browser_tasks(page, {**plan["browser"][1], "tasks": plan["browser"][1]["tasks"][:1]},
                      f"{live_server.url}/end_session")
    assert page.locator("#logged-out").is_visible()
