"""The bench's arithmetic (bench/load.py): how wrk's report is read, and how rounds pair each
endpoint with the reference measured right before it. Nothing here times anything."""

from __future__ import annotations

import math
import os

import pytest
import sqlalchemy as sa

from bench import load
from bench.load import Result
from bench.load import Target

TEST_DATABASE_URL = os.environ.get("IDP_TEST_DATABASE_URL")

WRK_REPORT = """\
Running 3s test @ http://127.0.0.1:5000/token
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.41ms    2.10ms  31.20ms   80.00%
    Req/Sec     1.48k   120.00     1.70k    70.00%
  Latency Distribution
     50%   10.40ms
     75%   11.20ms
     90%   12.90ms
     99%   15.20ms
  4452 requests in 3.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1484.00
Transfer/sec:      1.03MB
"""


def test_a_wrk_report_gives_rate_latencies_and_every_kind_of_error():
    report = load.parse_wrk(WRK_REPORT)
    assert report == {"rps": 1484.0, "p50": 10.4, "p99": 15.2, "errors": 7, "requests": 4452}


def test_latencies_in_microseconds_and_seconds_are_converted_to_milliseconds():
    report = load.parse_wrk(WRK_REPORT.replace("10.40ms", "950.00us").replace("15.20ms", "1.50s"))
    assert report["p50"] == pytest.approx(0.95)
    assert report["p99"] == pytest.approx(1500.0)


def test_a_report_without_a_distribution_has_no_latencies_rather_than_wrong_ones():
    report = load.parse_wrk("Requests/sec:   10.00\n")
    assert report["rps"] == 10.0 and report["errors"] == 0
    assert math.isnan(report["p50"]) and math.isnan(report["p99"])


def test_each_round_measures_the_reference_first_then_every_contender(monkeypatch, tmp_path):
    calls = []
    endpoint_rates = iter([600.0, 800.0, 700.0])  # provider, one per round
    companion_rates = iter([1000.0, 1000.0, 1000.0])
    reference_rates = iter([2000.0, 2000.0, 1000.0])

    def fake_wrk(address, script, concurrency, seconds):
        calls.append((address, concurrency, seconds))
        if seconds == 2:  # warm-up
            return {"rps": 0.0, "p50": 0.0, "p99": 0.0, "errors": 0, "requests": 0}
        rate = next(endpoint_rates if "provider" in address else companion_rates)
        return {"rps": rate, "p50": rate / 100, "p99": rate / 10, "errors": 1, "requests": 1}

    def reference(concurrency, seconds):
        calls.append(("reference", concurrency, seconds))
        return next(reference_rates)

    monkeypatch.setattr(load, "run_wrk", fake_wrk)
    endpoint = Target("token (client credentials)", "/token", "grant_type=client_credentials",
                      reference="signing", target=0.6)
    companion = Target("RS256 JWT, no framework", "/token", reference="signing")
    results = load.measure([("http://provider", endpoint), ("http://companion", companion)],
                           tmp_path, [16], 9.0, reference, rounds=3)

    measured = [call for call in calls if call[2] != 2]
    assert measured == [("reference", 16, 3.0), ("http://provider/token", 16, 3.0),
                        ("http://companion/token", 16, 3.0)] * 3
    token, signer = results
    assert (token.target, token.concurrency) == (endpoint, 16)
    assert token.requests_per_second == 700.0  # the median round, not the mean
    assert (token.p50_ms, token.p99_ms, token.errors) == (7.0, 70.0, 3)
    assert token.reference == 2000.0
    # Each round against its own reference: 600/2000, 800/2000, 700/1000.
    assert token.ratios == pytest.approx([0.3, 0.4, 0.7])
    assert token.ratio() == "40% (30-70%)"
    assert signer.ratio() == "50% (50-100%)"


def test_a_single_round_shows_its_ratio_alone_and_no_reference_shows_none():
    run = {"rps": 900.0, "p50": 1.0, "p99": 2.0, "errors": 0}
    target = Target("JWKS", "/jwks.json", target=0.85)
    assert Result.of_rounds(target, 16, [run], [1000.0]).ratio() == "90%"
    assert Result.of_rounds(target, 16, [run], []).ratio() == ""


def test_scratch_database_is_sqlite_in_the_scratch_folder_by_default(tmp_path):
    with load.scratch_database(None, tmp_path) as url:
        assert url == f"sqlite:///{tmp_path / 'bench.sqlite3'}"


@pytest.mark.skipif(not (TEST_DATABASE_URL or "").startswith("postgresql"),
                    reason="the PostgreSQL run of the suite covers it")
def test_scratch_database_on_postgresql_is_a_schema_dropped_at_the_end(tmp_path):
    """A second run on the same database must not meet the first one's keys and clients."""
    with load.scratch_database(TEST_DATABASE_URL, tmp_path) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE probe (id integer)"))
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        engine.dispose()
        assert schema.startswith("idp_bench_")
    engine = sa.create_engine(TEST_DATABASE_URL)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"),
                            {"name": schema}).scalar_one()
    engine.dispose()
    assert left == 0


def _fake_node(directory, version: str) -> None:
    node = directory / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)


@pytest.mark.parametrize(("version", "installed", "reason"), [
    (None, True, "no Node.js on the PATH"),
    ("v18.19.0", True, "Node.js v18.19.0 is older than v20.19"),
    ("v20.18.3", True, "Node.js v20.18.3 is older than v20.19"),
    ("v20.20.2", False, "not installed (bench/run installs it with npm)"),
    ("v20.20.2", True, None),
    ("v24.1.0", True, None),
])
def test_node_oidc_provider_runs_only_where_node_and_its_packages_allow(
        monkeypatch, tmp_path, version, installed, reason):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if version:
        _fake_node(bin_dir, version)
    monkeypatch.setenv("PATH", str(bin_dir))
    package_dir = tmp_path / "node_oidc_provider"
    if installed:
        (package_dir / "node_modules" / "oidc-provider").mkdir(parents=True)
    monkeypatch.setattr(load, "NODE_DIR", package_dir)
    assert load.NodeOidcProvider.unavailable() == reason


def test_without_node_the_references_leave_node_oidc_provider_out(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    references = load.References(tmp_path)
    assert references.node is None
    assert all(not isinstance(server, load.NodeOidcProvider) for server in references.servers)
    assert "node-oidc-provider 9: left out, no Node.js on the PATH" in capsys.readouterr().out


def test_the_report_names_the_node_oidc_provider_and_node_versions(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_node(bin_dir, "v22.12.0")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("IDP_WORKERS", "3")
    package = tmp_path / "node_oidc_provider" / "node_modules" / "oidc-provider"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"name": "oidc-provider", "version": "9.13.3"}')
    monkeypatch.setattr(load, "NODE_DIR", tmp_path / "node_oidc_provider")
    node = load.NodeOidcProvider(tmp_path, tmp_path / "key.pem")
    assert node.describe() == "oidc-provider 9.13.3 on Node.js v22.12.0, 3 worker processes"
