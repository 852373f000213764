"""/health/live and /health/ready, for load balancers and orchestrators."""

from __future__ import annotations

import pytest

from idp import create_app

from ..conftest import free_port


def test_a_working_provider_is_live_and_ready(http):
    for path in ("/health/live", "/health/ready"):
        response = http.get(path)
        assert response.status_code == 200
        assert response.get_json()["status"] == "ok"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers
    assert http.get("/health/ready").get_json()["checks"] == {"database": "ok",
                                                              "signing_keys": "ok"}
    assert http.head("/health/ready").status_code == 200


@pytest.fixture
def provider_without_its_database(tmp_path):
    return create_app({
        "ENV": "development", "ISSUER": "http://127.0.0.1:5000", "KEYS_DIR": str(tmp_path / "k"),
        "DATABASE_URL": f"postgresql+psycopg://idp@127.0.0.1:{free_port()}/idp"})


def test_without_its_database_the_provider_is_live_but_not_ready(provider_without_its_database):
    """Not a 500 at any probe, however often it asks: an orchestrator keeps the process and
    sends it no traffic until the database is back."""
    http = provider_without_its_database.test_client()
    for _ in range(3):
        assert http.get("/health/live").status_code == 200
        ready = http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.get_json() == {"status": "unavailable",
                                    "checks": {"database": "unavailable",
                                               "signing_keys": "unavailable"}}
