"""config/gunicorn.py: the access logger computes only the fields the shipped format prints, and
must print exactly what gunicorn's own logger would."""

from __future__ import annotations

import datetime
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

CONFIG = runpy.run_path(str(Path(__file__).resolve().parent.parent / "config" / "gunicorn.py"))


def access_line(logger_class, log_format: str) -> str:
    cfg = Config()
    cfg.set("access_log_format", log_format)
    logger = logger_class(cfg)
    response = SimpleNamespace(status="200 OK", sent=812, headers=[])
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Basic c2VjcmV0"), ("X-PROBE", "p1")])
    environ = {"REMOTE_ADDR": "203.0.113.9", "REQUEST_METHOD": "POST", "PATH_INFO": "/token",
               "QUERY_STRING": "", "RAW_URI": "/token", "SERVER_PROTOCOL": "HTTP/1.1"}
    atoms = logger.atoms_wrapper_class(
        logger.atoms(response, request, environ, datetime.timedelta(microseconds=2_345)))
    return log_format % atoms


def test_the_shipped_format_prints_what_gunicorn_prints():
    shipped = CONFIG["access_log_format"]
    line = access_line(CONFIG["AccessLogger"], shipped)
    assert line == access_line(Logger, shipped) == '203.0.113.9 "POST /token" 200 812 2ms'
    assert "c2VjcmV0" not in line  # no header, hence no credential, in the shipped line


@pytest.mark.parametrize("log_format", ['%(h)s "%(r)s" %(a)s %(D)s', "%(p)s %({x-probe}i)s"])
def test_any_other_format_gets_every_field(log_format):
    assert access_line(CONFIG["AccessLogger"], log_format) == access_line(Logger, log_format)
