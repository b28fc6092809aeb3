"""Simultaneous writers on the embedded layout (SQLite, `./pitlane run`): every request is answered, none lost.

A real `runleague` server (one gunicorn process, its threads, the in-process evaluation workers writing too) takes
uploads and submissions fired at the same moment from real client threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from tests.league.manage_process import REPO, manage_py
from tests.league.test_runleague import free_port

RACERS = 8

CREATE_RACERS = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from league.models import RacerProfile
tokens = []
for i in range({RACERS}):
    user = get_user_model().objects.create_user(f"writer{{i}}", password="x")
    RacerProfile.objects.create(user=user, alias=f"Writer{{i}}")
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps(tokens))
"""


def _request(method: str, url: str, token: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Authorization": f"Token {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"raw": raw.decode("utf-8", "replace")[:500]}


def _multipart(name: str, archive: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="model.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n".encode() + archive + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _all_at_once(calls: list) -> list[tuple[int, dict]]:
    """Run every call on its own thread, released together."""
    start = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.slow
def test_simultaneous_uploads_and_submissions_on_sqlite_all_answer_and_none_is_lost(tmp_path, archive_bytes):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PITLANE_")}
    env.update(PITLANE_DATA_DIR=str(tmp_path), PITLANE_STATIC_ROOT=str(tmp_path / "static"),
               PITLANE_DEMO_BASELINE="false")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "setup_league"], cwd=REPO, env=env, check=True, capture_output=True)
    created = subprocess.run([*manage, "shell", "-c", CREATE_RACERS], cwd=REPO, env=env, check=True,
                             capture_output=True, text=True)
    tokens = json.loads(created.stdout.strip().splitlines()[-1])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with manage_py(["runleague", "--bind", f"127.0.0.1:{port}"], env, tmp_path / "server.log",
                   ready="embedded dramatiq worker started"):
        def upload(token: str, name: str):
            body, content_type = _multipart(name, archive_bytes)
            return lambda: _request("POST", f"{base}/api/models/", token, body, content_type)

        first = _all_at_once([upload(token, "first") for token in tokens])
        assert [status for status, _ in first] == [201] * RACERS, first

        races = json.loads(urllib.request.urlopen(f"{base}/api/races/", timeout=30).read())["results"]
        race = next(r["slug"] for r in races if r["phase"] == "open")

        def submit(token: str, model_id: int):
            body = json.dumps({"race": race, "model": model_id}).encode()
            return lambda: _request("POST", f"{base}/api/submissions/", token, body, "application/json")

        # Submissions, further uploads and the in-process evaluations all write at the same moment.
        mixed = _all_at_once([submit(token, answer["id"]) for token, (_, answer) in zip(tokens, first, strict=True)]
                             + [upload(token, "second") for token in tokens])
        assert [status for status, _ in mixed] == [201] * (2 * RACERS), mixed

        for token in tokens:
            status, models = _request("GET", f"{base}/api/models/", token, b"", "application/json")
            assert status == 200 and sorted(m["name"] for m in models["results"]) == ["first", "second"]
            status, submissions = _request("GET", f"{base}/api/submissions/", token, b"", "application/json")
            assert status == 200 and len(submissions["results"]) == 1
    log = (tmp_path / "server.log").read_text()
    assert "database is locked" not in log
    assert "Internal Server Error" not in log
