"""Load benchmark: the provider under gunicorn with the shipped config/gunicorn.py, on
127.0.0.1, driven by wrk from a separate process for a bounded time.

Measured in the same run, so that the ratios hold on a shared, noisy machine:
- how many RS256 signatures a second one core makes, and all cores together (a client
  credentials token costs one signature: that is the ceiling of the token endpoint);
- per endpoint and concurrency: requests/s, p50 and p99 latency, errors (non-2xx responses and
  socket errors).

Run it with `bench/run` (installs wrk and the provider first); `bench/run --help` for options.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
API = "https://api.example.com/bench"


@dataclass
class Target:
    name: str
    path: str
    body: str | None = None  # a form body makes it a POST
    basic_auth: tuple[str, str] | None = None


@dataclass
class Result:
    target: str
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- the signing limit -------------------------------------------------------------------

def signatures_per_second(seconds: float, key_size: int = 2048) -> float:
    """RS256 (RSASSA-PKCS1-v1_5, SHA-256) of an access-token-sized input, on one core."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    signing_input = b"e" * 400
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        count += 20
    return count / (time.perf_counter() - start)


def signing_limits(seconds: float, key_size: int) -> tuple[float, float]:
    """(one core, all cores): one process, then one process per core at once."""
    one = signatures_per_second(seconds, key_size)
    cores = os.cpu_count() or 1
    with multiprocessing.Pool(cores) as pool:
        every = sum(pool.starmap(signatures_per_second, [(seconds, key_size)] * cores))
    return one, every


# --- the provider under gunicorn ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Provider:
    """A provider on a scratch database and key folder, started as bin/serve starts it."""

    def __init__(self, workdir: Path, database_url: str | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "IDP_ENV": "development",  # an http loopback issuer; nothing else differs
            "IDP_ISSUER": self.url,
            "IDP_BIND": f"127.0.0.1:{self.port}",
            "IDP_KEYS_DIR": str(workdir / "keys"),
            "IDP_DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        }
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def idp(self, *args: str) -> dict:
        done = subprocess.run([str(BIN / "idp"), *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"idp {' '.join(args)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout) if "--json" in args else {}

    def start(self) -> None:
        self.idp("db", "upgrade")
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/.well-known/openid-configuration", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"the provider did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def worker_settings(self) -> str:
        return (f"{os.environ.get('IDP_WORKERS', os.cpu_count())} "
                f"{os.environ.get('IDP_WORKER_CLASS', 'sync')} workers")


def post_form(url: str, body: str, basic_auth: tuple[str, str]) -> dict:
    request = urllib.request.Request(url, data=body.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic_header(*basic_auth)})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def basic_header(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def targets(provider: Provider) -> list[Target]:
    """The client and resource server are registered through the admin CLI, as an operator
    would; the introspected token is a real one."""
    service = provider.idp("clients", "create", "--name", "bench service", "--grant-type",
                           "client_credentials", "--scope", "bench:read bench:write",
                           "--audience", API, "--json")
    api = provider.idp("clients", "create", "--name", "bench API", "--grant-type",
                       "client_credentials", "--introspect-any", "--json")
    service_auth = (service["client_id"], service["client_secret"])
    api_auth = (api["client_id"], api["client_secret"])
    token = post_form(f"{provider.url}/token", "grant_type=client_credentials", service_auth)
    return [
        Target("token (client credentials)", "/token", "grant_type=client_credentials",
               service_auth),
        Target("introspection (JWT)", "/introspect", f"token={token['access_token']}", api_auth),
        Target("JWKS", "/jwks.json"),
        Target("discovery", "/.well-known/openid-configuration"),
    ]


# --- wrk ---------------------------------------------------------------------------------

def wrk_script(target: Target, workdir: Path) -> Path:
    lines = []
    if target.body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = {json.dumps(target.body)}",
                  'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"']
    if target.basic_auth:
        lines.append(f'wrk.headers["Authorization"] = "{basic_header(*target.basic_auth)}"')
    path = workdir / (re.sub(r"\W+", "_", target.name) + ".lua")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict:
    done = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "--latency",
         "-s", str(script), url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(match.group(1)) * UNITS_MS[match.group(2)] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return {"rps": float(rate.group(1)) if rate else 0.0, "p50": latency("50"),
            "p99": latency("99"), "errors": errors}


# --- the run -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a scratch SQLite file)")
    parser.add_argument("--only", help="run only targets whose name contains this")
    args = parser.parse_args()
    key_size = int(os.environ.get("IDP_KEY_SIZE", 2048))

    print(f"# {os.cpu_count()} cores; signing limit measured for 3 s ...", flush=True)
    one_core, all_cores = signing_limits(3, key_size)

    with tempfile.TemporaryDirectory(prefix="idp-bench-") as scratch:
        workdir = Path(scratch)
        provider = Provider(workdir, args.database)
        provider.start()
        try:
            results = []
            for target in targets(provider):
                if args.only and args.only not in target.name:
                    continue
                script = wrk_script(target, workdir)
                run_wrk(provider.url + target.path, script, 16, 2)  # warm-up, not counted
                for concurrency in args.concurrency:
                    measured = run_wrk(provider.url + target.path, script, concurrency,
                                       args.duration)
                    results.append(Result(target.name, concurrency, measured["rps"],
                                          measured["p50"], measured["p99"], measured["errors"]))
                    print(f"#   {target.name} c={concurrency}: {measured['rps']:.0f}/s",
                          flush=True)
        finally:
            provider.stop()

    print()
    print(f"RS256 ({key_size}-bit) signatures/s: {one_core:,.0f} on one core, "
          f"{all_cores:,.0f} on all {os.cpu_count()} cores")
    print(f"gunicorn: config/gunicorn.py, {provider.worker_settings()}; wrk -t1, "
          f"{args.duration:g} s per run")
    print()
    print("| endpoint | concurrency | requests/s | p50 ms | p99 ms | errors | share of signing "
          "limit (1 core / all cores) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        share = ""
        if r.target.startswith("token"):
            share = (f"{r.requests_per_second / one_core:.0%} / "
                     f"{r.requests_per_second / all_cores:.0%}")
        print(f"| {r.target} | {r.concurrency} | {r.requests_per_second:,.0f} | {r.p50_ms:.1f} "
              f"| {r.p99_ms:.1f} | {r.errors} | {share} |")


if __name__ == "__main__":
    main()
