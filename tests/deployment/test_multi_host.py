"""Pitlane deployed on separate hosts that share no disk, tested through its nginx TLS proxy only.

The deployment (tests/deployment/cluster.py) is started from deploy/'s nginx site, systemd units and environment
example: nginx, one web host (gunicorn), two worker hosts (Dramatiq + the sandbox), each in its own mount namespace
with its own data folder; shared only PostgreSQL, the broker (Redis, then a RabbitMQ node) and an S3 object store.
Racers talk HTTPS to the proxy only. Checks look behind it where they must: plain HTTP to the proxy (the redirect
and the health probe), gunicorn directly (who may set X-Forwarded-Proto), the database (to count runs and attempts),
the bucket (to find the uploads there) and the hosts' folders (to find them nowhere else).
"""

from __future__ import annotations

import functools
import hashlib
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from tests.deployment.cluster import Deployment, Host, free_port, systemd_environment, wait_for
from tests.deployment.league_client import Racer

pytestmark = pytest.mark.slow
FINAL = ("scored", "failed", "disqualified")
# Only guards against a hang: every wait below polls for a state, never sleeps for a guessed CPU time.
DRAIN_TIMEOUT = 600


@pytest.fixture(scope="module")
def league(deployment: Deployment, lapping_archive: bytes) -> SimpleNamespace:
    """Two racers signed up through the proxy, a race created by one and joined by the other, a model each."""
    ada, bob = Racer(deployment, "Ada"), Racer(deployment, "Bob")
    race = ada.create_race("Deployment Cup")
    bob.join(race["invite_code"])
    models = {racer.alias: racer.upload("clone", lapping_archive) for racer in (ada, bob)}
    return SimpleNamespace(racers=[ada, bob], race=race["slug"], models=models, archive=lapping_archive)


def submit_round(league: SimpleNamespace, per_racer: int) -> list[tuple[Racer, int]]:
    return [(racer, racer.submit(league.race, league.models[racer.alias]["id"])["id"])
            for _ in range(per_racer) for racer in league.racers]


def wait_until_final(deployment: Deployment, submissions: list[tuple[Racer, int]]) -> dict[int, dict]:
    def statuses():
        seen = {pk: racer.submission(pk) for racer, pk in submissions}
        return seen if all(item["status"] in FINAL for item in seen.values()) else None

    try:
        return wait_for(statuses, DRAIN_TIMEOUT, "every submission to be final", every=1)
    except TimeoutError:
        print(deployment.logs())
        raise


def results_per_submission(deployment: Deployment, race: str) -> dict[int, tuple[str, int, int]]:
    """submission id -> (status, runs, succeeded attempts), for every submission of the race, from the database."""
    rows = deployment.sql("""
        SELECT s.id, s.status,
               (SELECT count(*) FROM races_run r WHERE r.submission_id = s.id),
               (SELECT count(*) FROM evaluator_evaluationattempt a
                 WHERE a.target_kind = 'submission' AND a.target_id = s.id AND a.status = 'succeeded')
        FROM races_submission s JOIN races_race race ON race.id = s.race_id WHERE race.slug = %s""", race)
    return {pk: (status, runs, succeeded) for pk, status, runs, succeeded in rows}


def attempt_errors(deployment: Deployment) -> list[tuple]:
    """Every attempt that did not succeed: for the message of a failing test."""
    return deployment.sql("SELECT target_id, number, status, worker_id, error FROM evaluator_evaluationattempt "
                          "WHERE status <> 'succeeded' ORDER BY target_id, number")


def worker_hosts_of(deployment: Deployment, race: str, since: float | None = None) -> set[str]:
    """The host names of the workers whose attempts succeeded (worker ids are ``host:thread``)."""
    rows = deployment.sql("""
        SELECT a.worker_id, extract(epoch FROM a.finished_at) FROM evaluator_evaluationattempt a
        JOIN races_submission s ON a.target_kind = 'submission' AND a.target_id = s.id
        JOIN races_race race ON race.id = s.race_id WHERE race.slug = %s AND a.status = 'succeeded'""", race)
    return {worker.split(":")[0] for worker, finished in rows if since is None or finished >= since}


# --- the league, across hosts --------------------------------------------------------------------------------

def test_every_submission_is_scored_exactly_once_by_the_worker_hosts(deployment, league):
    submissions = submit_round(league, per_racer=2)
    final = wait_until_final(deployment, submissions)

    assert {item["status"] for item in final.values()} == {"scored"}, final
    results = results_per_submission(deployment, league.race)
    assert set(results) == {pk for _, pk in submissions}
    assert all(result == ("scored", 1, 1) for result in results.values()), results
    assert worker_hosts_of(deployment, league.race) <= {"worker-1", "worker-2"}


def test_uploads_pictures_and_traces_live_in_the_object_store_only(deployment, league):
    ada = league.racers[0]
    (submission_id,) = [pk for (pk,) in deployment.sql(
        "SELECT s.id FROM races_submission s JOIN auth_user u ON u.id = s.user_id "
        "WHERE u.username = 'ada' AND s.status = 'scored' ORDER BY s.id LIMIT 1")]
    keys = deployment.store.keys()

    # The model archive: stored in the bucket under the name the database holds, byte for byte what was uploaded.
    (archive_key,) = [key for (key,) in deployment.sql(
        "SELECT archive FROM races_racermodel WHERE id = %s", league.models["Ada"]["id"])]
    assert archive_key in keys
    assert hashlib.sha256(deployment.store.read(archive_key)).hexdigest() == league.models["Ada"]["sha256"]
    assert league.models["Ada"]["sha256"] == hashlib.sha256(league.archive).hexdigest()

    # The trajectory picture: rendered by the web host on first request into the bucket, served from there.
    picture = ada.web.get(ada.url(f"/submissions/{submission_id}/trajectory.png"), timeout=60)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert deployment.store.read(f"trajectories/{submission_id}.png") == picture.content

    # The simtrace: written by a worker host into the bucket, downloaded through the web host.
    (simtrace_key,) = [key for (key,) in deployment.sql(
        "SELECT simtrace FROM races_run WHERE submission_id = %s", submission_id)]
    trace = ada.web.get(ada.url(f"/submissions/{submission_id}/simtrace.csv"), timeout=60)
    assert trace.status_code == 200 and trace.content == deployment.store.read(simtrace_key)
    assert trace.content.count(b"\n") > 10

    # And nowhere on the hosts' disks (the web host's folder holds its static files, secret and admin password).
    for host in (deployment.web, *deployment.worker_hosts):
        stored = [path.name for path in host.dir.rglob("*") if path.suffix in {".gz", ".png", ".csv", ".safetensors"}
                  and "static" not in path.parts]
        assert stored == [], f"{host.name} keeps uploads on its own disk: {stored}"


def test_the_leaderboard_ranks_each_racer_by_their_best_run(deployment, league):
    board = league.racers[1].call("GET", f"/api/races/{league.race}/leaderboard/", 200)["results"]

    best = deployment.sql("""
        SELECT p.alias, min(r.ranking_score_ms) FROM races_run r
        JOIN races_submission s ON s.id = r.submission_id JOIN races_race race ON race.id = s.race_id
        JOIN league_racerprofile p ON p.user_id = s.user_id
        WHERE race.slug = %s AND r.qualified GROUP BY p.alias ORDER BY min(r.ranking_score_ms), p.alias""",
        league.race)
    assert [(row["rank"], row["racer"]) for row in board] == [(i, alias) for i, (alias, _) in enumerate(best, 1)]
    assert {row["racer"] for row in board} == {"Ada", "Bob"}


# --- the proxy ------------------------------------------------------------------------------------------------

def proxy_check(test):
    """The proxy does not depend on the broker: its checks run once, in the Redis deployment."""

    def once(deployment, *args, **kwargs):
        if deployment.broker != "redis":
            pytest.skip("proxy checks run in the Redis deployment only")
        return test(deployment, *args, **kwargs)

    return functools.wraps(test)(once)


@proxy_check
def test_plain_http_is_redirected_to_https_except_the_health_probe(deployment):
    page = requests.get(deployment.http_url("/races/"), allow_redirects=False, timeout=30)
    assert page.status_code == 301
    assert page.headers["Location"].startswith("https://127.0.0.1") and page.headers["Location"].endswith("/races/")

    # A client claiming HTTPS on port 80 is not believed: nginx overwrites X-Forwarded-Proto.
    spoofed = requests.get(deployment.http_url("/races/"), headers={"X-Forwarded-Proto": "https"},
                           allow_redirects=False, timeout=30)
    assert spoofed.status_code == 301

    probe = requests.get(deployment.http_url("/healthz"), allow_redirects=False, timeout=30)
    assert probe.status_code == 200 and probe.json()["status"] == "ok"
    assert deployment.session().get(deployment.url("/healthz"), timeout=30).json()["status"] == "ok"


@proxy_check
def test_https_answers_carry_hsts_and_cookies_are_secure(deployment, league):
    page = deployment.session().get(deployment.url("/accounts/login/"), timeout=30)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "secure" in page.headers["Set-Cookie"].lower()  # the CSRF cookie
    cookies = {cookie.name: cookie for cookie in league.racers[0].web.cookies}
    assert cookies["sessionid"].secure and cookies["csrftoken"].secure


@proxy_check
def test_forwarded_proto_is_trusted_only_with_behind_proxy(deployment, tmp_path_factory):
    """Straight to gunicorn, as only the proxy can: with PITLANE_BEHIND_PROXY=true (the deployment) the header makes
    the request secure; a web host started without it redirects the same request, whatever the header says."""
    claimed = {"X-Forwarded-Proto": "https", "Host": "127.0.0.1"}
    trusted = requests.get(f"http://127.0.0.1:{deployment.web_port}/races/", headers=claimed,
                           allow_redirects=False, timeout=30)
    assert trusted.status_code == 200

    untrusting = Host("web-untrusting", tmp_path_factory.mktemp("hosts"))
    (untrusting.dir / "etc" / "pitlane.env").write_text(
        deployment.env_file.replace("PITLANE_BEHIND_PROXY=true", "PITLANE_BEHIND_PROXY=false"))
    unit = deployment.unit(untrusting, "pitlane-web.service")
    port = free_port()
    untrusting.start(unit.commands[0], systemd_environment(unit) | {"PITLANE_BIND": f"127.0.0.1:{port}"},
                     chdir=unit.working_directory)
    try:
        wait_for(lambda: _answers(port) or not untrusting.alive(), 120, "the second web host")
        assert untrusting.alive(), untrusting.log()
        refused = requests.get(f"http://127.0.0.1:{port}/races/", headers=claimed, allow_redirects=False, timeout=30)
        assert refused.status_code == 301, untrusting.log()[-3000:]
        assert refused.headers["Location"].startswith("https://")
    finally:
        untrusting.kill()


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 503)
    except requests.RequestException:
        return False


@proxy_check
def test_an_upload_beyond_the_limit_is_refused_by_nginx_before_its_body_is_sent(deployment, league):
    """The request announces 300 MiB; nginx answers 413 at once, from the headers: the body is never sent, so it
    is never spooled, forwarded to gunicorn or stored."""
    racer = league.racers[0]
    web_log_before = deployment.web.log().count("/api/models/")
    keys_before = deployment.store.keys()
    context = ssl.create_default_context(cafile=str(deployment.certificate))
    with socket.create_connection(("127.0.0.1", deployment.https_port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall((f"POST /api/models/ HTTP/1.1\r\nHost: 127.0.0.1:{deployment.https_port}\r\n"
                     f"Authorization: Token {racer.token}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                     f"Content-Length: {300 * 1024 * 1024}\r\n\r\n").encode())
        answer = tls.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:500]
    assert "Server: nginx" in answer and "nginx" in answer.split("\r\n\r\n", 1)[1]
    # nginx logged it as its own 413; gunicorn never saw the request.
    wait_for(lambda: '"POST /api/models/ HTTP/1.1" 413' in (deployment.proxy.dir / "access.log").read_text(), 30,
             "nginx's access log line")
    assert deployment.web.log().count("/api/models/") == web_log_before
    assert deployment.store.keys() == keys_before


@proxy_check
def test_static_files_are_served_through_the_proxy(deployment):
    home = deployment.session().get(deployment.url("/"), timeout=30)
    stylesheet = next(part.split('"')[0] for part in home.text.split('href="')[1:] if part.startswith("/static/"))
    asset = deployment.session().get(deployment.url(stylesheet), timeout=30)
    assert asset.status_code == 200 and asset.content
    # Hashed names (collectstatic + WhiteNoise): cached for good by browsers.
    assert "immutable" in asset.headers["Cache-Control"]


# --- faults across hosts -------------------------------------------------------------------------------------

def test_faults_across_hosts_lose_nothing(deployment, league):
    """One scenario, in order: kill -9 a worker host mid-batch, restart the broker, restart PostgreSQL, stop the
    object store for 20 s, restart the web host under uploads; then the killed worker host comes back (and is the
    only one left). Every submission ends with exactly one result, no upload that got a 201 is lost, /healthz names
    each failing part and recovers by itself, the returning worker host takes work again. With either broker."""
    cyd = Racer(deployment, "Cyd")
    cyd.join(league.racers[0].call("GET", f"/api/races/{league.race}/", 200)["invite_code"])
    league.racers.append(cyd)
    league.models["Cyd"] = cyd.upload("clone", league.archive)
    submit_round(league, per_racer=1)

    # 1. kill -9 worker-1's whole process tree while it runs an evaluation (the reaper re-runs it after its lease).
    worker_1, worker_2 = deployment.worker_hosts
    wait_for(lambda: deployment.sql("SELECT 1 FROM evaluator_evaluationattempt WHERE status = 'running' "
                                    "AND worker_id LIKE 'worker-1:%%'"), DRAIN_TIMEOUT, "worker-1 to run one")
    worker_1.kill()

    # 2. The broker restarts empty (its messages are gone; the database still holds every evaluation).
    _outage(deployment, "broker", deployment.queue.kill, deployment.queue.start)
    # 3. PostgreSQL restarts (every connection is dropped).
    _outage(deployment, "database", deployment.postgres.stop, deployment.postgres.start)
    # 4. The object store is away for 20 s.
    _outage(deployment, "storage", deployment.store.outage, deployment.store.restore, hold=20)

    # 5. The web host restarts (SIGTERM, as systemctl restart does) while uploads are in flight; the client retries.
    stored: list[dict] = []
    uploader = threading.Thread(target=lambda: stored.extend(
        cyd.upload(f"during-restart-{i}", league.archive, retry_for=DRAIN_TIMEOUT) for i in range(4)))
    uploader.start()
    wait_for(lambda: stored, DRAIN_TIMEOUT, "a first upload")
    deployment.web.stop()
    deployment.start_web()
    uploader.join(DRAIN_TIMEOUT)
    assert not uploader.is_alive() and len(stored) == 4
    assert cyd.upload_retries > 0  # some uploads did meet the restart

    # 6. worker-1 comes back; worker-2 leaves (gracefully), so the next round can only be worker-1's.
    deployment.start_worker(worker_1)
    worker_2.stop()
    rejoined_at = time.time()
    wait_for(lambda: deployment.health().get("status") == "ok", DRAIN_TIMEOUT, "/healthz to recover")
    submit_round(league, per_racer=1)
    wait_until_final(deployment, [(racer, pk) for pk, racer in _all_submissions(deployment, league)])

    results = results_per_submission(deployment, league.race)
    assert all(result == ("scored", 1, 1) for result in results.values()), (results, attempt_errors(deployment))
    assert "worker-1" in worker_hosts_of(deployment, league.race, since=rejoined_at), deployment.logs()
    listed = {model["id"]: model for model in cyd.models()}
    keys = deployment.store.keys()
    for model in stored:
        assert listed[model["id"]]["sha256"] == hashlib.sha256(league.archive).hexdigest()
        (key,) = [key for (key,) in deployment.sql("SELECT archive FROM races_racermodel WHERE id = %s", model["id"])]
        assert key in keys


def _all_submissions(deployment: Deployment, league: SimpleNamespace) -> list[tuple[int, Racer]]:
    """Every submission of the race, with the racer (client) who made it."""
    by_alias = {racer.alias: racer for racer in league.racers}
    return [(pk, by_alias[alias]) for pk, alias in deployment.sql(
        "SELECT s.id, p.alias FROM races_submission s JOIN races_race r ON r.id = s.race_id "
        "JOIN league_racerprofile p ON p.user_id = s.user_id WHERE r.slug = %s", league.race)]


def _outage(deployment: Deployment, part: str, stop, start, hold: float = 0) -> None:
    """Take ``part`` away, see /healthz name it (503), bring it back, see /healthz recover with no other step."""
    stop()
    report = wait_for(lambda: (lambda r: r if r.get(part, {}).get("ok") is False else None)(deployment.health()),
                      120, f"/healthz to report the {part} down")
    assert report["status"] == "degraded" and report[part]["error"], report
    assert all(check["ok"] for name, check in report.items() if name not in (part, "status")), report
    time.sleep(hold)
    start()
    wait_for(lambda: deployment.health().get("status") == "ok", 300, f"/healthz to recover from the {part} outage")
