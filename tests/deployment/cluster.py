"""A multi-host Pitlane deployment on one machine, started from the files in deploy/ as an operator would.

Hosts (each a process tree in its own bubblewrap mount namespace):

- ``proxy``: nginx with ``deploy/nginx/pitlane.conf`` and a TLS certificate made for the run;
- ``web``: ``deploy/systemd/pitlane-setup.service`` once, then ``pitlane-web.service`` (gunicorn);
- ``worker-1``, ``worker-2``: ``pitlane-worker.service`` (Dramatiq and the evaluation sandbox).

A host sees the machine's files read-only (the code, the virtualenv), an empty private ``/tmp``, ``/dev/shm`` and
``/srv``, and its own writable data folder at ``/srv/pitlane``; it has its own host name. So a hidden dependency on a
path another host wrote (a shared media folder, a file in the checkout) fails here as it would across machines. The
hosts share only network services started for the run: a PostgreSQL cluster, Redis or a RabbitMQ node, and an S3
object store (moto's server). Each unit's ``ExecStart``/``Environment``/``EnvironmentFile`` is read from the unit
file; ``/opt/pitlane`` (the checkout), ``/var/lib/pitlane`` (the data folder), ``/etc/pitlane`` and the example
names and ports are the only substitutions. The hosts run as root (the units' ``User=pitlane`` is not applied).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg
import requests
from botocore.config import Config

from tests.evaluator.processes import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HOST_DATA = "/srv/pitlane"  # where a host's own folder is mounted, inside its namespace
BUCKET = "pitlane-test-uploads"
# Generous: only guards against a hang. A loaded 2-core machine gets all the time it needs.
START_TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- systemd units -------------------------------------------------------------------------------------------

@dataclass
class Unit:
    """What systemd would run for a unit: its commands, folder and environment (defaults, then the file)."""

    commands: list[list[str]]
    working_directory: str
    environment: dict[str, str]


def read_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def read_unit(path: Path, substitutions: dict[str, str]) -> Unit:
    """Parse the [Service] section of ``path`` the way systemd does for the keys our units use."""
    text = path.read_text()
    for old, new in substitutions.items():
        text = text.replace(old, new)
    environment: dict[str, str] = {}
    files: list[str] = []
    commands: list[str] = []
    folder = "/"
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            environment.update(item.split("=", 1) for item in shlex.split(value))
        elif key == "EnvironmentFile":
            files.append(value)
        elif key == "ExecStart":
            commands.append(value)
        elif key == "WorkingDirectory":
            folder = value
    for name in files:  # systemd: settings from the files override Environment=
        environment.update(read_env_file(Path(name).read_text()))

    def expand(argument: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda match: environment[match.group(1)], argument)

    return Unit([[expand(arg) for arg in shlex.split(command)] for command in commands], folder, environment)


# --- hosts -----------------------------------------------------------------------------------------------------

def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def kill_tree(root: int) -> None:
    """kill -9 a whole process tree: freeze it first (so nothing forks meanwhile), then kill every process."""
    frozen: list[int] = []
    for _ in range(5):  # a process may fork before it is stopped: go round until the tree is stable
        tree = process_tree(root)
        new = [pid for pid in tree if pid not in frozen]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen += new
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Host:
    """One machine of the deployment: a bubblewrap mount namespace over the read-only root with its own
    ``/srv/pitlane`` (``self.dir`` outside), private ``/tmp``, ``/dev/shm`` and ``/srv``, its own host name."""

    def __init__(self, name: str, parent: Path) -> None:
        self.name = name
        self.dir = parent / name
        (self.dir / "etc").mkdir(parents=True)
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def inside(self, path: str) -> Path:
        """The outside path of a path under /srv/pitlane inside the host."""
        return self.dir / Path(path).relative_to(HOST_DATA)

    def bwrap(self, argv: list[str], chdir: str = "/") -> list[str]:
        hidden = [arg for name in ("data", "staticfiles", "media") if (REPO / name).exists()
                  for arg in ("--tmpfs", str(REPO / name))]  # the checkout's own data is another machine's
        return ["bwrap", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--tmpfs", "/dev/shm",
                "--bind", "/proc", "/proc",  # the evaluation sandbox mounts its own proc: it needs the real one
                "--tmpfs", "/tmp", "--tmpfs", "/srv",
                "--ro-bind", str(REPO), str(REPO),  # the installed code, also when the checkout lives under /tmp
                "--bind", str(self.dir), HOST_DATA, *hidden,
                "--unshare-uts", "--hostname", self.name, "--die-with-parent", "--chdir", chdir, *argv]

    def run(self, argv: list[str], env: dict[str, str], chdir: str = "/", timeout: float = START_TIMEOUT) -> str:
        """Run a command to completion inside the host; its output, or an error with it."""
        done = subprocess.run(self.bwrap(argv, chdir), env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, argv: list[str], env: dict[str, str], chdir: str = "/") -> None:
        self.starts += 1
        log = (self.dir / f"{self.name}-{self.starts}.log").open("w")
        self.process = subprocess.Popen(self.bwrap(argv, chdir), env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()

    def log(self) -> str:
        path = self.dir / f"{self.name}-{self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the host's processes (as systemctl stop), then kill -9 what is left after ``timeout``."""
        if not self.alive():
            return
        for pid in reversed(process_tree(self.process.pid)[1:2]):  # the service's main process, under bwrap
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """kill -9 of the host's whole process tree (a power cut, as far as its processes go)."""
        if self.process is not None:
            kill_tree(self.process.pid)
            self.process.wait(30)


def systemd_environment(unit: Unit) -> dict[str, str]:
    """systemd starts services with a clean environment: PATH, LANG and the unit's variables only."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"} | unit.environment


# --- shared services -------------------------------------------------------------------------------------------

class ObjectStore:
    """moto's S3 server (tests/deployment/object_store.py): ``outage()`` stops it serving, ``restore()`` resumes."""

    region = "us-east-1"
    access_key = "pitlane-test"
    secret_key = "pitlane-test-secret"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "object-store.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.deployment.object_store", str(self.port)],
                                        cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: port_open(self.port), 60, "the object store")
        self.client().create_bucket(Bucket=BUCKET)

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name=self.region, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))

    def keys(self) -> dict[str, int]:
        """Every object in the bucket: key -> size."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def outage(self) -> None:
        # Seen once in a full suite run (never alone): the store still served 30 s after the signal. Ask again once,
        # and if it still serves, fail with its log, which says what it was doing.
        for attempt in (1, 2):
            self.process.send_signal(signal.SIGUSR1)
            try:
                wait_for(lambda: not port_open(self.port), 30, "the object store to stop")
                return
            except TimeoutError:
                if attempt == 2:
                    tail = (self.workdir / "object-store.log").read_text(errors="replace")[-2000:]
                    raise TimeoutError(f"the object store still serves 60 s after two stop signals; its log:\n"
                                       f"{tail}") from None

    def restore(self) -> None:
        self.process.send_signal(signal.SIGUSR2)
        wait_for(lambda: port_open(self.port), 30, "the object store to serve again")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


class RabbitmqNode:
    """A RabbitMQ node of the run's own (Debian's rabbitmq-server, its own name, ports and folder), so restarting it
    leaves the machine's broker alone. Debian's script runs the node as the ``rabbitmq`` user."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"pitlane_test_{os.getpid()}_{self.port}@localhost"
        self.workdir = Path(tempfile.mkdtemp(prefix="pitlane-rabbitmq-"))  # owned by rabbitmq, outside pytest's
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        folder = str(self.workdir)
        return os.environ | {
            "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log", "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_FEATURE_FLAGS_FILE": f"{folder}/feature_flags", "RABBITMQ_PID_FILE": f"{folder}/pid",
            "RABBITMQ_CONFIG_FILE": f"{folder}/none",
        }

    def start(self) -> None:
        self.workdir.mkdir(exist_ok=True)  # after ``kill``, a node with no memory of queues or messages
        (self.workdir / "enabled_plugins").write_text("[].\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.workdir)], check=True)
        self.process = subprocess.Popen(["rabbitmq-server"], env=self._env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: port_open(self.port), 120, "the RabbitMQ node")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(["rabbitmqctl", "-n", self.name, "stop"], env=self._env(), capture_output=True, timeout=60)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            kill_tree(self.process.pid)
            self.process.wait(10)

    def kill(self) -> None:
        """Stop the node and forget everything it held (its queues and their messages): ``start`` is then a node
        that restarts empty, as a Redis server without persistence does."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- the deployment ------------------------------------------------------------------------------------------

@dataclass
class Deployment:
    broker: str  # "redis" or "rabbitmq"
    workdir: Path
    workers: int = 2
    worker_processes: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http_port, self.https_port, self.web_port = free_port(), free_port(), free_port()
        self.postgres = PostgresServer()
        self.store = ObjectStore(self.workdir)
        self.queue = RedisServer(self.workdir) if self.broker == "redis" else RabbitmqNode(self.workdir)
        self.proxy = Host("proxy", self.workdir)
        self.web = Host("web", self.workdir)
        self.worker_hosts = [Host(f"worker-{i}", self.workdir) for i in range(1, self.workers + 1)]
        self.certificate = self.workdir / "ca.pem"  # the client trusts this CA only

    # -- addresses
    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def session(self) -> requests.Session:
        """An HTTPS client that trusts the run's certificate and nothing else."""
        client = requests.Session()
        client.trust_env = False  # else REQUESTS_CA_BUNDLE of this shell would replace the run's CA
        client.verify = str(self.certificate)
        return client

    # -- life cycle
    def start(self) -> None:
        if self.postgres.unavailable:
            raise RuntimeError(self.postgres.unavailable)
        self.postgres.create()
        self.queue.start()
        self.store.start()
        self._write_env_file()
        for host in (self.web, *self.worker_hosts):
            (host.dir / "etc" / "pitlane.env").write_text(self.env_file)
        # As systemd would: the worker unit does not wait for the set-up (workers retry until the tables exist).
        for host in self.worker_hosts:
            self.start_worker(host)
        setup = self.unit(self.web, "pitlane-setup.service")
        for command in setup.commands:
            self.web.run(command, systemd_environment(setup), chdir=setup.working_directory)
        self.start_web()
        self._start_proxy()
        wait_for(lambda: self.health().get("status") == "ok", START_TIMEOUT, "/healthz through the proxy")

    def stop(self) -> None:
        for host in (self.proxy, self.web, *self.worker_hosts):
            with contextlib.suppress(Exception):
                host.kill()
        self.store.kill()
        self.queue.kill()
        self.postgres.destroy()

    def unit(self, host: Host, name: str) -> Unit:
        return read_unit(DEPLOY / "systemd" / name, {
            "/opt/pitlane": str(REPO),
            "/var/lib/pitlane": HOST_DATA,
            "/etc/pitlane": str(host.dir / "etc"),  # read by this process, as systemd reads it before the start
            "PITLANE_BIND=127.0.0.1:8000": f"PITLANE_BIND=127.0.0.1:{self.web_port}",
            "PITLANE_WORKER_PROCESSES=2": f"PITLANE_WORKER_PROCESSES={self.worker_processes}",
        })

    def start_web(self) -> None:
        unit = self.unit(self.web, "pitlane-web.service")
        (command,) = unit.commands
        self.web.start(command, systemd_environment(unit), chdir=unit.working_directory)
        wait_for(lambda: port_open(self.web_port) or not self.web.alive(), START_TIMEOUT, "gunicorn")
        assert self.web.alive(), self.web.log()

    def start_worker(self, host: Host) -> None:
        unit = self.unit(host, "pitlane-worker.service")
        (command,) = unit.commands
        host.start(command, systemd_environment(unit), chdir=unit.working_directory)

    def _write_env_file(self) -> None:
        """deploy/pitlane.env.example with the run's values (every variable of the example must be given one)."""
        broker_url = self.queue.url
        values = {
            "PITLANE_DATABASE_URL": self.postgres.url,
            "PITLANE_BROKER_URL": broker_url,
            "PITLANE_STORAGE": "s3",
            "PITLANE_S3_BUCKET": BUCKET,
            "PITLANE_S3_ENDPOINT_URL": self.store.url,
            "PITLANE_S3_REGION": self.store.region,
            "PITLANE_S3_ACCESS_KEY_ID": self.store.access_key,
            "PITLANE_S3_SECRET_ACCESS_KEY": self.store.secret_key,
            "PITLANE_SECRET_KEY": secrets.token_urlsafe(64),
            "PITLANE_LOG_LEVEL": "INFO",
            "PITLANE_ALLOWED_HOSTS": "127.0.0.1",
            "PITLANE_CSRF_TRUSTED_ORIGINS": self.origin,
            "PITLANE_HTTPS": "true",
            "PITLANE_BEHIND_PROXY": "true",
            "PITLANE_MAX_UPLOAD_MB": "200",
            # A dead worker's evaluation comes back within a minute, not two (heartbeats every 10 s).
            "PITLANE_EVAL_LEASE_S": "20",
            "PITLANE_EVAL_STALE_PENDING_S": "10",
            "PITLANE_EVAL_REAP_EVERY_S": "5",
        }
        example = read_env_file((DEPLOY / "pitlane.env.example").read_text())
        missing = set(example) - set(values)
        assert not missing, f"the test gives no value to {sorted(missing)} of deploy/pitlane.env.example"
        values |= {"PITLANE_DEMO_BASELINE": "false"} | self.extra_env  # no 20 s of training in set-up
        self.env_file = "".join(f"{name}={value}\n" for name, value in values.items())

    def _start_proxy(self) -> None:
        self._make_certificate()
        site = (DEPLOY / "nginx" / "pitlane.conf").read_text()
        for old, new in {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{self.web_port};",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
            "server_name pitlane.example.org;": "server_name 127.0.0.1;",
            "/etc/ssl/pitlane/": f"{HOST_DATA}/",
        }.items():
            assert old in site, f"deploy/nginx/pitlane.conf no longer has {old!r}"
            site = site.replace(old, new)
        (self.proxy.dir / "pitlane.conf").write_text(site)
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.proxy.dir / folder).mkdir(mode=0o777)
            (self.proxy.dir / folder).chmod(0o777)  # nginx's workers are not root
        # Debian's /etc/nginx/nginx.conf, reduced to what a site needs, with every path in the host's folder.
        (self.proxy.dir / "nginx.conf").write_text(f"""
worker_processes 1;
pid {HOST_DATA}/nginx.pid;
error_log {HOST_DATA}/error.log info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {HOST_DATA}/access.log;
    client_body_temp_path {HOST_DATA}/body;
    proxy_temp_path {HOST_DATA}/proxy;
    fastcgi_temp_path {HOST_DATA}/fastcgi;
    uwsgi_temp_path {HOST_DATA}/uwsgi;
    scgi_temp_path {HOST_DATA}/scgi;
    include {HOST_DATA}/pitlane.conf;
}}
""")
        self.proxy.run(["nginx", "-t", "-c", f"{HOST_DATA}/nginx.conf"], {"PATH": "/usr/sbin:/usr/bin:/bin"})
        self.proxy.start(["nginx", "-c", f"{HOST_DATA}/nginx.conf", "-g", "daemon off;"],
                         {"PATH": "/usr/sbin:/usr/bin:/bin"})
        wait_for(lambda: port_open(self.https_port) or not self.proxy.alive(), 60, "nginx")
        assert self.proxy.alive(), self.proxy.log()

    def _make_certificate(self) -> None:
        """A certificate authority of the run's own (what the client trusts) and the proxy's certificate for
        127.0.0.1 signed by it."""
        folder = self.workdir / "tls"
        folder.mkdir()
        (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Pitlane test CA",
                "-keyout", "ca.key", "-out", str(self.certificate))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                "-keyout", str(self.proxy.dir / "privkey.pem"), "-out", "server.csr")
        openssl("x509", "-req", "-in", "server.csr", "-CA", str(self.certificate), "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "server.ext",
                "-out", str(self.proxy.dir / "fullchain.pem"))

    # -- observation
    def health(self, timeout: float = 10) -> dict:
        """/healthz through the proxy over plain HTTP, as a load balancer probes it ({} when unreachable)."""
        try:
            return requests.get(self.http_url("/healthz"), timeout=timeout, allow_redirects=False).json()
        except (requests.RequestException, ValueError):
            return {}

    def sql(self, query: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://"), connect_timeout=5) as db:
            return db.execute(query, params).fetchall()

    def postgres_pid(self) -> int | None:
        """The PostgreSQL server's main process (its backends are its children)."""
        pidfile = self.postgres.datadir / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None

    def logs(self) -> str:
        return "\n".join(f"--- {host.name}\n{host.log()[-3000:]}"
                         for host in (self.proxy, self.web, *self.worker_hosts))
