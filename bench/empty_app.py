"""The reference for the bench: an empty Flask route, served by the same gunicorn settings as
the provider, so that the ratio of an endpoint to it measures the endpoint's own work."""

from flask import Flask

app = Flask(__name__)


@app.get("/empty")
def empty():
    return "ok"
