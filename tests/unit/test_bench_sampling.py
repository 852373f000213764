"""`bench/run --profile` (bench/sampling.py): how py-spy's samples are read and put down to the
layer that spent them, and one real recording of a gunicorn worker under load."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bench import load
from bench import sampling

SITE = sysconfig.get_paths()["purelib"]
STDLIB = sysconfig.get_paths()["stdlib"]
ROOT = Path(__file__).resolve().parents[2]


def frame(function: str, filename: str) -> str:
    return f"{function} ({filename})"


GUNICORN_HANDLE = frame("SyncWorker.handle", f"{SITE}/gunicorn/workers/sync.py")
FLASK_CALL = frame("Flask.__call__", f"{SITE}/flask/app.py")


@pytest.mark.parametrize(("stack", "layer"), [
    # Standard library frames count for their caller: json under Flask is Flask's.
    ((GUNICORN_HANDLE, FLASK_CALL, frame("dumps", f"{STDLIB}/json/__init__.py")), sampling.FLASK),
    ((GUNICORN_HANDLE, FLASK_CALL, frame("token", f"{ROOT}/idp/views/oauth.py"),
      frame("info", f"{STDLIB}/logging/__init__.py"), frame("getpid", "<frozen os>")),
     sampling.PROVIDER),
    ((GUNICORN_HANDLE, frame("sign", f"{SITE}/joserfc/jws.py")), sampling.SIGNING),
    ((GUNICORN_HANDLE, frame("execute", f"{STDLIB}/sqlite3/dbapi2.py")), sampling.DATABASE),
    ((GUNICORN_HANDLE, frame("AccessLogger.atoms", f"{ROOT}/config/gunicorn.py")),
     sampling.GUNICORN),
    ((GUNICORN_HANDLE, frame("app", f"{ROOT}/bench/sign_app.py")), sampling.REFERENCE_APP),
    ((GUNICORN_HANDLE, frame("close_graceful", f"{SITE}/gunicorn/util.py"),
      frame("socket.close", f"{STDLIB}/socket.py")), sampling.GUNICORN),
    ((GUNICORN_HANDLE, frame("anything", f"{SITE}/somepackage/module.py")), sampling.OTHER),
    ((frame("<module>", "<string>"),), sampling.OTHER),
])
def test_a_sample_is_put_down_to_the_innermost_layer_that_is_not_the_standard_library(
        stack, layer):
    assert sampling.layer_of(stack) == layer


def test_py_spy_raw_output_is_read_into_stacks_and_counts():
    raw = (f"{GUNICORN_HANDLE};{FLASK_CALL} 7\n"
           f"{GUNICORN_HANDLE} 2\n"
           f"{GUNICORN_HANDLE};{FLASK_CALL} 1\n"
           "\n"
           "a line without a count\n")
    assert sampling.read_collapsed(raw) == {(GUNICORN_HANDLE, FLASK_CALL): 8,
                                            (GUNICORN_HANDLE,): 2}


def test_a_function_called_from_several_layers_is_shown_in_the_one_it_served_most():
    dumps = frame("dumps", f"{STDLIB}/json/__init__.py")
    signing = frame("encode", f"{SITE}/joserfc/jwt.py")
    profile = sampling.Profile({(GUNICORN_HANDLE, FLASK_CALL, dumps): 1, (dumps,): 1,
                                (GUNICORN_HANDLE, signing, dumps): 2})
    assert profile.functions() == [("dumps (json/__init__.py)", sampling.SIGNING, 1.0)]


def test_a_profile_gives_each_layer_and_function_its_share_largest_first():
    signing = (GUNICORN_HANDLE, frame("sign", f"{SITE}/joserfc/jws.py"))
    profile = sampling.Profile({(GUNICORN_HANDLE, FLASK_CALL): 1, signing: 3}, on_cpu=0.5)
    assert profile.total == 4
    assert profile.layers() == [(sampling.SIGNING, 0.75), (sampling.FLASK, 0.25)]
    assert profile.functions() == [("sign (joserfc/jws.py)", sampling.SIGNING, 0.75),
                                   ("Flask.__call__ (flask/app.py)", sampling.FLASK, 0.25)]


def test_the_workers_of_a_loaded_gunicorn_are_sampled_and_their_cpu_time_read(tmp_path):
    """py-spy on the real workers of the bench's empty route, under load."""
    server = load.Gunicorn("bench.empty_app:app", tmp_path, ready_path="/empty")
    stop = threading.Event()

    def load_it():
        while not stop.is_set():
            urllib.request.urlopen(server.url + "/empty", timeout=5).read()

    with server:
        pids = server.worker_pids()
        assert pids and all(Path(f"/proc/{pid}").exists() for pid in pids)
        clients = [threading.Thread(target=load_it) for _ in range(2)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            profile = sampling.record(pids, 1, tmp_path)
        finally:
            stop.set()
            for client in clients:
                client.join()
    assert profile.total > 0
    assert 0 < profile.on_cpu <= 1.05  # clock ticks are coarse
    layers = dict(profile.layers())
    assert layers.get(sampling.FLASK, 0) > 0 and layers.get(sampling.GUNICORN, 0) > 0
    assert sampling.OTHER not in layers or layers[sampling.OTHER] < 0.2


def test_without_py_spy_the_bench_refuses_to_profile_and_says_why(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import sys; from bench import load, sampling; "
                           f"sampling.PY_SPY = sampling.Path({str(tmp_path / 'py-spy')!r}); "
                           "sys.argv = ['load.py', '--profile']; load.main()"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "--profile: py-spy is not installed" in done.stderr
