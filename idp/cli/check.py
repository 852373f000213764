"""`idp check`: what in the settings and the registered clients weakens the deployment
(idp/posture.py). Exits 1 when something is not fit for production, so a deploy script can
stop on it."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from .. import posture
from . import emit
from . import json_option


@click.command("check")
@json_option
@with_appcontext
def check(as_json):
    """Review the settings and clients against RFC 9700 and ASVS; exit 1 on an error."""
    found = posture.findings()
    text = "\n".join(f"{f.severity}: {f.subject}: {f.message}" for f in found)
    emit([f.as_dict() for f in found], as_json, text or "nothing to report")
    if any(f.severity == posture.ERROR for f in found):
        sys.exit(1)
