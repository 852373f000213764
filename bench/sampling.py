"""Where a gunicorn worker's time goes under load (`bench/run --profile`): py-spy samples every
worker of a server while wrk drives one of its endpoints, and each sample is put down to the
layer that spent it. In-process profiles miss what the server itself costs: parsing, sockets
and the access log.

Samples are of time on a CPU (or ready for one): what a worker is blocked in (waiting for a
connection, or for the client to close) costs the machine nothing, as the other processes run
meanwhile. The share of time the workers were on a CPU at all is read from /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
RATE = 200  # samples a second per worker

SIGNING = "RS256 signing and verification (joserfc, cryptography)"
DATABASE = "database (SQLAlchemy, sqlite3, psycopg)"
FLASK = "Flask, Werkzeug, Flask-WTF"
GUNICORN = "gunicorn: HTTP parsing, sockets, access log"
PROVIDER = "the provider (idp)"
REFERENCE_APP = "the reference app (bench/)"
OTHER = "other"
# A frame's layer, by the top-level package its file belongs to. The standard library has no
# layer of its own: its frames count for whoever called them (json for Flask, logging for
# gunicorn's access log), except sqlite3, which is the database.
PACKAGE_LAYERS = {
    "joserfc": SIGNING, "cryptography": SIGNING,
    "sqlalchemy": DATABASE, "flask_sqlalchemy": DATABASE, "psycopg": DATABASE,
    "psycopg_binary": DATABASE, "sqlite3": DATABASE,
    "authlib": "Authlib",
    "flask": FLASK, "werkzeug": FLASK, "flask_wtf": FLASK, "wtforms": FLASK,
    "itsdangerous": FLASK, "blinker": FLASK, "jinja2": FLASK, "markupsafe": FLASK,
    "gunicorn": GUNICORN, "config": GUNICORN,  # config/gunicorn.py: the access logger
    "idp": PROVIDER, "bench": REFERENCE_APP,
}
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Where a frame's file can live: the project, the installed packages, the standard library.
ROOTS = [Path(__file__).resolve().parent.parent, Path(sysconfig.get_paths()["purelib"]),
         Path(sysconfig.get_paths()["platlib"]), STDLIB]


def _root_of(path: Path) -> Path | None:
    """The deepest of ROOTS holding `path` (site-packages of a venv inside the project, say)."""
    roots = [root for root in ROOTS if path.is_absolute() and path.is_relative_to(root)]
    return max(roots, key=lambda root: len(root.parts)) if roots else None


def package_of(filename: str) -> str | None:
    """The top-level package of a frame's file ('werkzeug' for .../site-packages/werkzeug/x.py),
    'stdlib' for the standard library, None when it cannot be told ('<frozen os>')."""
    path = Path(filename)
    root = _root_of(path)
    if root is None:
        return None
    package = path.relative_to(root).parts[0].removesuffix(".py")
    return "stdlib" if root == STDLIB and package != "sqlite3" else package


def frame_parts(frame: str) -> tuple[str, str]:
    """py-spy's 'function (filename)' as (function, filename)."""
    function, _, filename = frame.rpartition(" (")
    return function, filename.removesuffix(")")


def layer_of(stack: tuple[str, ...]) -> str:
    """The layer a sample's stack (outermost frame first) is put down to."""
    for frame in reversed(stack):
        package = package_of(frame_parts(frame)[1])
        if package in PACKAGE_LAYERS:
            return PACKAGE_LAYERS[package]
        if package not in ("stdlib", None):  # None: a frozen module of the standard library
            return OTHER
    return OTHER


def read_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """py-spy's raw output: one 'frame;frame;...;frame count' line a distinct stack."""
    samples: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples[tuple(stack.split(";"))] += int(count)
    return samples


@dataclass
class Profile:
    samples: Counter[tuple[str, ...]]
    # The workers' CPU time over the wall time sampled (from /proc); the rest they were
    # blocked: waiting for a connection, for the client, or for the database.
    on_cpu: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def layers(self) -> list[tuple[str, float]]:
        """Each layer's share of the samples, largest first."""
        shares: Counter[str] = Counter()
        for stack, count in self.samples.items():
            shares[layer_of(stack)] += count
        return [(layer, count / self.total) for layer, count in shares.most_common()]

    def functions(self, limit: int = 12) -> list[tuple[str, str, float]]:
        """The functions samples were taken in (own time), largest first, each with the layer
        most of its samples were put down to (json.dumps serves Flask and joserfc alike)."""
        own: Counter[str] = Counter()
        layers: dict[str, Counter[str]] = {}
        for stack, count in self.samples.items():
            function, filename = frame_parts(stack[-1])
            name = f"{function} ({short(filename)})"
            own[name] += count
            layers.setdefault(name, Counter())[layer_of(stack)] += count
        return [(name, layers[name].most_common(1)[0][0], count / self.total)
                for name, count in own.most_common(limit)]


def short(filename: str) -> str:
    """A frame's file relative to its package's root ('werkzeug/local.py')."""
    path = Path(filename)
    root = _root_of(path)
    return str(path.relative_to(root)) if root else filename


def record(pids: list[int], seconds: int, output_dir: Path) -> Profile:
    """Sample each process for `seconds`, all at once, without pausing them (--nonblocking)."""
    runs = []
    for pid in pids:
        output = output_dir / f"py-spy-{pid}.txt"
        runs.append((output, subprocess.Popen(
            [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds),
             "--rate", str(RATE), "--format", "raw", "--output", str(output),
             "--nonblocking", "--nolineno", "--full-filenames"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
    cpu_before, wall_before = sum(map(cpu_seconds, pids)), time.monotonic()
    samples: Counter[tuple[str, ...]] = Counter()
    for output, process in runs:
        _, errors = process.communicate(timeout=seconds + 30)
        if process.returncode != 0:
            sys.exit(f"py-spy failed on pid {process.args[3]}: {errors.strip()}")
        samples += read_collapsed(output.read_text())
    cpu = sum(map(cpu_seconds, pids)) - cpu_before
    return Profile(samples, cpu / (len(pids) * (time.monotonic() - wall_before)))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unavailable() -> str | None:
    """Why the profile cannot be taken here, or None."""
    if not PY_SPY.exists():
        return f"py-spy is not installed in {PY_SPY.parent} (bench/run installs it)"
    return None
