"""`manage.py runleague` as `./pitlane run` starts it: gunicorn serving the site, workers in-process."""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.league.manage_process import REPO, manage_py


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_embedded_layout_serves_pages_and_runs_workers_in_the_web_process(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PITLANE_")}
    # The demo's baseline entry is left out: its ~20 s of training is tested by tests/races/test_setup.py, and
    # this test is about the server's layout.
    env.update(PITLANE_DATA_DIR=str(tmp_path), PITLANE_STATIC_ROOT=str(tmp_path / "static"),
               PITLANE_DEMO_BASELINE="false")
    for command in (["setup_league"], ["collectstatic", "--noinput", "-v", "0"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True)
    port = free_port()
    log = tmp_path / "server.log"
    runleague = ["runleague", "--bind", f"127.0.0.1:{port}"]
    with manage_py(runleague, env, log, ready="embedded dramatiq worker started"):
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        assert get(f"http://127.0.0.1:{port}/admin/login/")[0] == 200
        assert get(f"http://127.0.0.1:{port}/static/league/site.css")[0] == 200
    output = log.read_text()
    assert f"Pitlane is starting on http://localhost:{port}/" in output
    assert f"user 'admin', password in {tmp_path / 'admin-password.txt'}" in output
    assert "Booting worker" in output and output.count("Booting worker") == 1  # one process: in-memory queue
    assert "periodic scheduler started" in output
    assert "Worker has been shut down." in output
