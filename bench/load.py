"""Load benchmark: the provider under gunicorn with the shipped config/gunicorn.py, on
127.0.0.1, driven by wrk from a separate process for a bounded time.

Everything a ratio needs is measured in the same run, back to back, because the machine is
shared and noisy:
- how many RS256 signatures a second all cores make together: a client-credentials token costs
  one signature, so that is the token endpoint's ceiling;
- an empty Flask route served by the same gunicorn settings: the ceiling of any endpoint on
  this stack, and the reference for JWKS, discovery and introspection;
- beside the token and introspection endpoints, the same endpoint in reference apps under the
  same settings: a framework-less WSGI app that only signs a JWT (the ceiling of any token
  endpoint behind gunicorn here), and the smallest client-credentials and introspection
  endpoints Flask and Authlib make (the stack the provider is built on, with nothing of the
  provider's own);
- per endpoint and concurrency, in rounds (reference first, then the endpoint, then its
  reference-app versions): requests/s, p50 and p99 latency, errors (non-2xx responses and
  socket errors), and the median and range of the rounds' ratios;
- the resident size of each worker after 1,000 and after 100,000 token requests;
- whole authorization code flows a second (authorize, sign-in with argon2id, consent, token,
  userinfo), and the cost of one password verification with the shipped argon2id settings.

Run it with `bench/run` (installs wrk and the provider first); `bench/run --help` for options.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from statistics import median

import sqlalchemy as sa

from bench import sampling

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
API = "https://api.example.com/bench"
MEMORY_REQUESTS = (1_000, 100_000)
# The client the reference apps know (bench/authlib_app.py, bench/node_oidc_provider).
REFERENCE_CLIENT = ("bench", "bench-secret")


@dataclass
class Target:
    name: str
    path: str
    body: str | None = None  # a form body makes it a POST
    basic_auth: tuple[str, str] | None = None
    reference: str = "empty route"  # or "signing"
    target: float = 0.0  # the ratio to reach, from issue 6


@dataclass
class Result:
    """One endpoint at one concurrency: the median of its rounds, errors summed."""

    target: Target
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # With a reference measured right before each round: its median, and the median, lowest
    # and highest of the rounds' ratios.
    reference: float | None = None
    ratios: list[float] = field(default_factory=list)

    @classmethod
    def of_rounds(cls, target: Target, concurrency: int, runs: list[dict],
                  references: list[float]) -> Result:
        return cls(target, concurrency, median(r["rps"] for r in runs),
                   median(r["p50"] for r in runs), median(r["p99"] for r in runs),
                   sum(r["errors"] for r in runs), median(references) if references else None,
                   [run["rps"] / ref for run, ref in zip(runs, references, strict=True)]
                   if references else [])

    def ratio(self) -> str:
        """'59% (52-63%)': the median ratio, and the range of the rounds when there are more."""
        if not self.ratios:
            return ""
        text = f"{median(self.ratios):.0%}"
        if len(self.ratios) > 1:
            text += f" ({min(self.ratios) * 100:.0f}-{max(self.ratios):.0%})"
        return text


# --- the signing limit and the password cost ----------------------------------------------

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


def all_cores_signatures_per_second(seconds: float, key_size: int) -> float:
    """One signing process per core, all at once."""
    cores = os.cpu_count() or 1
    with multiprocessing.Pool(cores) as pool:
        return sum(pool.starmap(signatures_per_second, [(seconds, key_size)] * cores))


def password_verification_ms() -> float:
    """One argon2id verification with the parameters in config/default.toml."""
    import tomllib

    from argon2 import PasswordHasher

    settings = tomllib.loads((ROOT / "config" / "default.toml").read_text())
    hasher = PasswordHasher(time_cost=settings["ARGON2_TIME_COST"],
                            memory_cost=settings["ARGON2_MEMORY_COST_KIB"],
                            parallelism=settings["ARGON2_PARALLELISM"])
    stored = hasher.hash("correct horse battery staple")
    start = time.perf_counter()
    for _ in range(5):
        hasher.verify(stored, "correct horse battery staple")
    return (time.perf_counter() - start) / 5 * 1000


# --- servers under gunicorn ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process on a free loopback port, up once `ready_path` answers."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str] | None = None,
                 ready_path: str = "/"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.env = {**os.environ, **(env or {})}
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with self.log_path.open("w") as log:  # the server keeps its own copy
            self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + self.ready_path, timeout=1)
                return
            except urllib.error.HTTPError:  # answering, if only to refuse a GET
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.log_path.stem} did not start; see {self.log_path}")

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Gunicorn(Server):
    """A WSGI app under gunicorn with config/gunicorn.py."""

    def __init__(self, app: str, workdir: Path, env: dict[str, str] | None = None,
                 ready_path: str = "/"):
        super().__init__(app.split(":")[0].replace(".", "_"), workdir, env, ready_path)
        self.app = app
        self.env["IDP_BIND"] = f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", self.app]

    def worker_pids(self) -> list[int]:
        """The workers: the master's children, from /proc."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def worker_rss_mib(self) -> list[float]:
        """Resident size of each worker, from /proc."""
        sizes = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # gone meanwhile
                continue
            rss_kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
            sizes.append(rss_kib / 1024)
        return sorted(sizes)


class Provider(Gunicorn):
    """The provider on a scratch database and key folder, started as bin/serve starts it."""

    def __init__(self, workdir: Path, database_url: str):
        super().__init__("wsgi:app", workdir, ready_path="/.well-known/openid-configuration")
        self.env.update({
            "IDP_ENV": "development",  # an http loopback issuer; nothing else differs
            "IDP_ISSUER": self.url,
            "IDP_KEYS_DIR": str(workdir / "keys"),
            "IDP_DATABASE_URL": database_url,
        })

    def idp(self, *args: str, stdin: str | None = None) -> dict:
        done = subprocess.run([str(BIN / "idp"), *args], env=self.env, cwd=ROOT, input=stdin,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"idp {' '.join(args)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout) if "--json" in args else {}

    def start(self) -> None:
        self.idp("db", "upgrade")
        super().start()


NODE_DIR = ROOT / "bench" / "node_oidc_provider"
NODE_MINIMUM = (20, 19)  # oidc-provider 9's engines field


class NodeOidcProvider(Server):
    """node-oidc-provider v9, configured like the provider (bench/node_oidc_provider/server.mjs):
    issue 6 sets the provider against it. One process per core, as gunicorn has one worker per
    core. bench/run installs it with npm where a recent enough Node.js is on the PATH."""

    def __init__(self, workdir: Path, key_file: Path):
        super().__init__("node_oidc_provider", workdir, ready_path="/jwks")
        self.env.update({
            "PORT": str(self.port), "BENCH_KEY_FILE": str(key_file), "BENCH_AUDIENCE": API,
            "BENCH_CLIENT_ID": REFERENCE_CLIENT[0], "BENCH_CLIENT_SECRET": REFERENCE_CLIENT[1],
            "WORKERS": os.environ.get("IDP_WORKERS", str(os.cpu_count() or 1)),
        })

    def command(self) -> list[str]:
        return ["node", str(NODE_DIR / "server.mjs")]

    def describe(self) -> str:
        """What ran, for the report: the package's version, Node.js's, the process count."""
        package = json.loads((NODE_DIR / "node_modules" / "oidc-provider" / "package.json")
                             .read_text())
        return (f"oidc-provider {package['version']} on Node.js {_node_version()}, "
                f"{self.env['WORKERS']} worker processes")

    @staticmethod
    def unavailable() -> str | None:
        """Why it cannot run here, or None."""
        try:
            version = _node_version()
        except (OSError, subprocess.CalledProcessError):
            return "no Node.js on the PATH"
        found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
        if found < NODE_MINIMUM:
            return f"Node.js {version} is older than v{'.'.join(map(str, NODE_MINIMUM))}"
        if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
            return "not installed (bench/run installs it with npm)"
        return None


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


@contextlib.contextmanager
def scratch_database(url: str | None, workdir: Path) -> Iterator[str]:
    """The provider's database for one run, so that no run meets an earlier run's keys (whose
    passphrase died with its scratch folder) or clients: a SQLite file in the scratch folder,
    or, for --database, a PostgreSQL schema of its own, dropped at the end."""
    if url is None:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    server = sa.engine.make_url(url)
    schema = f"idp_bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(server)
    try:
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as exc:
            sys.exit(f"--database {server.render_as_string()}: {exc.orig}")
        try:
            yield server.update_query_dict({"options": f"-csearch_path={schema}"}) \
                .render_as_string(hide_password=False)
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


def worker_settings() -> str:
    return (f"{os.environ.get('IDP_WORKERS', os.cpu_count())} "
            f"{os.environ.get('IDP_WORKER_CLASS', 'sync')} workers"
            + (f" x {os.environ['IDP_THREADS']} threads" if os.environ.get("IDP_THREADS") else ""))


def basic_header(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_form(url: str, body: str, basic_auth: tuple[str, str]) -> dict:
    request = urllib.request.Request(url, data=body.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic_header(*basic_auth)})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


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
               service_auth, reference="signing", target=0.60),
        Target("introspection (JWT)", "/introspect", f"token={token['access_token']}", api_auth,
               target=0.60),
        Target("JWKS", "/jwks.json", target=0.85),
        Target("discovery", "/.well-known/openid-configuration", target=0.85),
    ]


EMPTY_ROUTE = "empty Flask route"
SIGNING_ONLY = "RS256 JWT, no framework"
FLASK_AUTHLIB = "Flask + Authlib, minimal"
FLASK_AUTHLIB_INTROSPECTION = "Flask + Authlib, minimal introspection"
NODE_OIDC_PROVIDER = "node-oidc-provider 9"


class References:
    """The reference servers, all kept up for the whole run: the empty route, the
    framework-less signer, the minimal Flask + Authlib endpoints and, where Node.js allows,
    node-oidc-provider. Each is measured in the same rounds as the provider's endpoint it
    explains."""

    def __init__(self, workdir: Path):
        key_file = workdir / "reference-key.pem"
        key_file.write_bytes(rsa_private_pem())
        self.empty = Gunicorn("bench.empty_app:app", workdir, ready_path="/empty")
        self.signing_only = Gunicorn("bench.sign_app:app", workdir, ready_path="/token")
        self.flask_authlib = Gunicorn("bench.authlib_app:app", workdir, ready_path="/token",
                                      env={"BENCH_KEY_FILE": str(key_file)})
        self.servers: list[Server] = [self.empty, self.signing_only, self.flask_authlib]
        self.node: NodeOidcProvider | None = None
        if reason := NodeOidcProvider.unavailable():
            print(f"# {NODE_OIDC_PROVIDER}: left out, {reason}", flush=True)
        else:
            self.node = NodeOidcProvider(workdir, key_file)
            self.servers.append(self.node)
        self.companions: dict[str, list[tuple[str, Target]]] = {}

    def start(self) -> None:
        for server in self.servers:
            server.start()
        auth = REFERENCE_CLIENT
        token_request = "grant_type=client_credentials"
        token = post_form(f"{self.flask_authlib.url}/token", token_request, auth)["access_token"]
        self.companions = {
            "token": [(self.signing_only.url, Target(SIGNING_ONLY, "/token", token_request,
                                                     reference="signing")),
                      (self.flask_authlib.url, Target(FLASK_AUTHLIB, "/token", token_request,
                                                      auth, reference="signing"))],
            "introspection": [(self.flask_authlib.url, Target(
                FLASK_AUTHLIB_INTROSPECTION, "/introspect", f"token={token}", auth))],
        }
        if self.node:
            # Its JWT access tokens are not stored, so it cannot introspect them: no
            # introspection row. It grants no scope unless asked; the provider, all allowed.
            node_token_request = f"{token_request}&scope=bench%3Aread%20bench%3Awrite"
            self.companions["token"].append((self.node.url, Target(
                NODE_OIDC_PROVIDER, "/token", node_token_request, auth,
                reference="signing")))
            self.companions["JWKS"] = [(self.node.url, Target(f"{NODE_OIDC_PROVIDER} JWKS",
                                                              "/jwks"))]
            self.companions["discovery"] = [(self.node.url, Target(
                f"{NODE_OIDC_PROVIDER} discovery", "/.well-known/openid-configuration"))]

    def companions_of(self, target: Target) -> list[tuple[str, Target]]:
        """The reference apps' version of the provider's endpoint, if they have one."""
        return self.companions.get(target.name.split()[0], [])

    def gunicorn_at(self, url: str) -> Gunicorn | None:
        return next((s for s in self.servers if isinstance(s, Gunicorn) and s.url == url), None)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def rsa_private_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


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
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
         "--latency", "-s", str(script), url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(match.group(1)) * UNITS_MS[match.group(2)] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return {"rps": float(rate.group(1)) if rate else 0.0, "p50": latency("50"),
            "p99": latency("99"), "errors": errors,
            "requests": int(total.group(1)) if total else 0}


def measure(contenders: list[tuple[str, Target]], workdir: Path, concurrencies: list[int],
            seconds: float, reference: Callable[[int, float], float] | None = None,
            rounds: int = 1) -> list[Result]:
    """Each (server URL, target) of `contenders`, at each concurrency, in `rounds` rounds
    sharing `seconds`. A round measures the `reference` (requests or signatures a second,
    given the concurrency and seconds) first, then each contender in turn, so each round gives
    each contender a ratio. A shared machine drifts by more than 5% over the minutes a whole
    bench takes, and as much between two runs a few seconds apart: figures taken back to back,
    and the median of the rounds, are what hold still."""
    runs = [(url + target.path, wrk_script(target, workdir), target)
            for url, target in contenders]
    for address, script, _ in runs:
        run_wrk(address, script, 16, 2)  # warm-up, not counted
    results = []
    for concurrency in concurrencies:
        references, measured = [], {target.name: [] for _, _, target in runs}
        for _ in range(rounds):
            if reference:
                references.append(reference(concurrency, seconds / rounds))
            for address, script, target in runs:
                measured[target.name].append(run_wrk(address, script, concurrency,
                                                     seconds / rounds))
        for _, _, target in runs:
            result = Result.of_rounds(target, concurrency, measured[target.name], references)
            results.append(result)
            print(f"#   {target.name} c={concurrency}: {result.requests_per_second:.0f}/s "
                  f"{result.ratio()}", flush=True)
    return results


def empty_route(server: Gunicorn, workdir: Path) -> Callable[[int, float], float]:
    """The empty route's requests a second, as a reference measured on demand."""
    script = wrk_script(Target(EMPTY_ROUTE, "/empty"), workdir)
    return lambda concurrency, seconds: run_wrk(server.url + "/empty", script, concurrency,
                                                 seconds)["rps"]


def signing(key_size: int) -> Callable[[int, float], float]:
    """All-core signatures a second, as a reference measured on demand."""
    return lambda _concurrency, seconds: all_cores_signatures_per_second(seconds, key_size)


def memory_growth(provider: Provider, token_target: Target, workdir: Path) -> tuple:
    """Worker RSS after 1,000 token requests, and again once 100,000 have been served."""
    script = wrk_script(token_target, workdir)
    served = 0
    while served < MEMORY_REQUESTS[0]:
        served += run_wrk(provider.url + token_target.path, script, 16, 1)["requests"]
    early = provider.worker_rss_mib()
    while served < MEMORY_REQUESTS[1]:
        served += run_wrk(provider.url + token_target.path, script, 16, 10)["requests"]
    return early, provider.worker_rss_mib(), served


# --- where the workers' time goes (--profile) ---------------------------------------------

def profile_under_load(server: Gunicorn, target: Target, workdir: Path, concurrency: int,
                       seconds: int) -> sampling.Profile:
    """py-spy on every worker of `server` while wrk drives `target`, once the load is steady."""
    script = wrk_script(target, workdir)
    load = subprocess.Popen(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds + 2}s", "-s",
                             str(script), server.url + target.path], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        return sampling.record(server.worker_pids(), seconds, workdir)
    finally:
        load.wait()


def profile_targets(chosen: list[Target], provider: Provider, references: References,
                    workdir: Path, concurrency: int,
                    seconds: int) -> list[tuple[str, sampling.Profile]]:
    """Each endpoint in the provider, then in each reference app under gunicorn (py-spy cannot
    see into node-oidc-provider)."""
    profiles = []
    for target in chosen:
        contenders = [(provider, target)]
        contenders += [(references.gunicorn_at(url), companion)
                       for url, companion in references.companions_of(target)]
        for server, contender in contenders:
            if server is not None:
                print(f"# profiling {contender.name} ...", flush=True)
                profiles.append((contender.name, profile_under_load(server, contender, workdir,
                                                                    concurrency, seconds)))
    return profiles


def print_profile(name: str, concurrency: int, profile: sampling.Profile) -> None:
    print(f"Where the workers' CPU time goes: {name}, c={concurrency}. They were on a CPU "
          f"{profile.on_cpu:.0%} of the time; {profile.total:,} samples of it.")
    print()
    print("| layer | share |")
    print("|---|---:|")
    for layer, share in profile.layers():
        print(f"| {layer} | {share:.1%} |")
    print()
    print("| function (own time) | layer | share |")
    print("|---|---|---:|")
    for function, layer, share in profile.functions():
        print(f"| {function} | {layer} | {share:.1%} |")
    print()


# --- whole authorization code flows --------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def one_flow(base: str, client: tuple[str, str], redirect_uri: str) -> None:
    """What a browser and its relying party do: authorize, sign in, consent, redeem the code,
    call userinfo. Raises on any unexpected answer."""
    import hashlib
    import http.cookiejar
    import secrets
    from urllib.error import HTTPError
    from urllib.parse import parse_qs
    from urllib.parse import urlencode
    from urllib.parse import urlsplit

    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect)

    def call(path_or_url, data=None, headers=None):
        url = path_or_url if path_or_url.startswith("http") else base + path_or_url
        body = urlencode(data).encode() if data is not None else None
        try:
            with browser.open(urllib.request.Request(url, body, headers or {}), timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except HTTPError as redirect_or_error:
            if redirect_or_error.code not in (302, 303):
                raise
            return redirect_or_error.code, redirect_or_error.headers, ""

    def csrf(html):
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    authorize = "/authorize?" + urlencode({
        "response_type": "code", "client_id": client[0], "redirect_uri": redirect_uri,
        "scope": "openid profile", "state": "s", "nonce": secrets.token_urlsafe(8),
        "prompt": "consent", "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256"})
    call(authorize)
    _, _, login_page = call("/login")
    status, headers, _ = call("/login", {"username": "bench", "password": "bench password 1",
                                         "csrf_token": csrf(login_page)})
    _, _, consent_page = call(headers["Location"])
    _, headers, _ = call("/consent", {"decision": "allow", "csrf_token": csrf(consent_page)})
    _, headers, _ = call(headers["Location"])
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    _, _, tokens = call("/token", {"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri, "code_verifier": verifier},
                        {"Authorization": basic_header(*client)})
    access_token = json.loads(tokens)["access_token"]
    status, _, _ = call("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert status == 200


def _flows_for(seconds: float, base: str, client: tuple[str, str], redirect_uri: str) -> tuple:
    done = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            one_flow(base, client, redirect_uri)
            done += 1
        except Exception:
            failed += 1
    return done, failed


def code_flows(provider: Provider, seconds: float) -> tuple[float, int]:
    """(flows/s, failures) with two browsers per core running flows back to back."""
    provider.idp("users", "create", "bench", "--email", "bench@example.com", "--name", "Bench",
                 "--password-stdin", stdin="bench password 1\n")
    redirect_uri = "http://127.0.0.1:9/callback"
    client = provider.idp("clients", "create", "--name", "bench web app", "--redirect-uri",
                          redirect_uri, "--json")
    auth = (client["client_id"], client["client_secret"])
    one_flow(provider.url, auth, redirect_uri)  # fails loudly if the flow is broken
    browsers = 2 * (os.cpu_count() or 1)
    start = time.monotonic()
    with multiprocessing.Pool(browsers) as pool:
        counts = pool.starmap(_flows_for, [(seconds, provider.url, auth, redirect_uri)] * browsers)
    elapsed = time.monotonic() - start
    return sum(done for done, _ in counts) / elapsed, sum(failed for _, failed in counts)


# --- the run -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="reference/endpoint pairs per "
                        "endpoint and concurrency, sharing --duration; ratios are their median")
    parser.add_argument("--database", help="a PostgreSQL URL (postgresql+psycopg://...): the "
                        "run gets a schema of its own there, dropped at the end (default: a "
                        "scratch SQLite file)")
    parser.add_argument("--only", help="run only targets whose name contains this")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100,000-request "
                        "memory run")
    parser.add_argument("--skip-flows", action="store_true", help="skip the code-flow run")
    parser.add_argument("--profile", action="store_true", help="then sample the workers of "
                        "each gunicorn server with py-spy while wrk drives its endpoint, and "
                        "print where their time goes")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration / args.rounds < 1:
        parser.error("--rounds must be at least 1, and each round needs a second of --duration")
    if args.database and not args.database.startswith("postgresql"):
        parser.error("--database takes a PostgreSQL URL")
    if args.profile and (reason := sampling.unavailable()):
        parser.error(f"--profile: {reason}")
    key_size = int(os.environ.get("IDP_KEY_SIZE", 2048))
    cores = os.cpu_count() or 1

    with (tempfile.TemporaryDirectory(prefix="idp-bench-") as scratch,
          scratch_database(args.database, Path(scratch)) as database_url):
        print(f"# {cores} cores; signing limit and argon2id cost ...", flush=True)
        one_core = signatures_per_second(3, key_size)
        all_cores = all_cores_signatures_per_second(3, key_size)
        argon2_ms = password_verification_ms()
        workdir = Path(scratch)
        references = References(workdir)
        provider = Provider(workdir, database_url)
        try:
            references.start()
            provider.start()
            results, memory, flows, profiles = [], None, None, []
            chosen = [t for t in targets(provider) if not args.only or args.only in t.name]
            if not args.skip_memory and chosen and chosen[0].reference == "signing":
                print("# memory: 100,000 token requests ...", flush=True)
                memory = memory_growth(provider, chosen[0], workdir)
            for target in chosen:
                reference = (signing(key_size) if target.reference == "signing"
                             else empty_route(references.empty, workdir))
                results += measure([(provider.url, target), *references.companions_of(target)],
                                   workdir, args.concurrency, args.duration, reference,
                                   args.rounds)
            if not args.skip_flows:
                print("# whole code flows ...", flush=True)
                flows = code_flows(provider, args.duration)
            if args.profile:
                profiles = profile_targets(chosen, provider, references, workdir,
                                           args.concurrency[0], max(1, round(args.duration)))
        finally:
            provider.stop()
            references.stop()

    print()
    print(f"RS256 ({key_size}-bit) signatures/s at the start: {one_core:,.0f} on one core, "
          f"{all_cores:,.0f} on all {cores} cores.")
    print(f"gunicorn: config/gunicorn.py, {worker_settings()}; wrk -t1 on the same machine, "
          f"{args.duration:g} s per endpoint and concurrency, in {args.rounds} rounds. A round "
          "measures the reference first (all-core signing for token endpoints, the empty "
          "route for the others), then the provider's endpoint, then the reference apps' "
          "version of it.")
    if references.node:
        print(f"{NODE_OIDC_PROVIDER}: {references.node.describe()}.")
    print()
    print("| endpoint | concurrency | requests/s | p50 ms | p99 ms | errors | reference, "
          "median | ratio, median (range) | target |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    for r in results:
        kind = "signatures" if r.target.reference == "signing" else "empty route"
        target = f"{r.target.target:.0%}" if r.target.target else ""
        print(f"| {r.target.name} | {r.concurrency} | {r.requests_per_second:,.0f} "
              f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {kind}, {r.reference:,.0f}/s "
              f"| {r.ratio()} | {target} |")
    print()
    measured = {(r.target.name, r.concurrency): r.requests_per_second for r in results}
    for r in results:
        if r.target.name.startswith("token"):
            ceiling = measured[SIGNING_ONLY, r.concurrency]
            stack = measured[FLASK_AUTHLIB, r.concurrency]
            node = measured.get((NODE_OIDC_PROVIDER, r.concurrency))
            print(f"Token endpoint at c={r.concurrency}: {r.requests_per_second / ceiling:.0%} of "
                  f"'{SIGNING_ONLY}', {r.requests_per_second / stack:.2f}x '{FLASK_AUTHLIB}'"
                  + (f", {r.requests_per_second / node:.2f}x '{NODE_OIDC_PROVIDER}'."
                     if node else "."))
        elif r.target.name.startswith("introspection"):
            stack = measured[FLASK_AUTHLIB_INTROSPECTION, r.concurrency]
            print(f"Introspection at c={r.concurrency}: {r.requests_per_second / stack:.2f}x "
                  f"'{FLASK_AUTHLIB_INTROSPECTION}'.")
        elif node := measured.get((f"{NODE_OIDC_PROVIDER} {r.target.name}", r.concurrency)):
            print(f"{r.target.name} at c={r.concurrency}: {r.requests_per_second / node:.2f}x "
                  f"'{NODE_OIDC_PROVIDER}'.")
    if memory:
        early, late, served = memory
        growth = max((b - a) / a for a, b in zip(early, late, strict=False)) if early else 0
        print(f"Worker RSS after {MEMORY_REQUESTS[0]:,} token requests: "
              f"{', '.join(f'{m:.1f}' for m in early)} MiB; after {served:,}: "
              f"{', '.join(f'{m:.1f}' for m in late)} MiB (largest growth {growth:+.1%}; "
              f"target within 10%).")
    if flows:
        rate, failed = flows
        print(f"Authorization code flows (authorize, sign-in, consent, token, userinfo): "
              f"{rate:.1f}/s, {rate / cores:.1f}/s per core, {failed} failed.")
    print(f"One argon2id password verification with the shipped parameters: {argon2_ms:.0f} ms.")
    if profiles:
        print()
    for name, profile in profiles:
        print_profile(name, args.concurrency[0], profile)


if __name__ == "__main__":
    main()
