"""A racer driving the deployed league over HTTPS only, as a person and their scripts would: the sign-up, alias and
token pages in a browser-like session (CSRF, cookies), then the REST API with the token."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import requests

from tests.deployment.cluster import Deployment

RETRY_STATUS = {500, 502, 503, 504}  # the web host or a service it needs is away: try again


class Racer:
    def __init__(self, deployment: Deployment, alias: str) -> None:
        self.deployment = deployment
        self.alias = alias
        self.web = deployment.session()
        self.token = self._sign_up(alias.lower(), alias)
        self.api = deployment.session()
        self.api.headers["Authorization"] = f"Token {self.token}"
        self.upload_retries = 0

    def url(self, path: str) -> str:
        return self.deployment.url(path)

    def _post_form(self, path: str, data: dict[str, str]) -> requests.Response:
        data = data | {"csrfmiddlewaretoken": self.web.cookies["csrftoken"]}
        # Django checks the Referer of HTTPS posts against PITLANE_CSRF_TRUSTED_ORIGINS / the host.
        response = self.web.post(self.url(path), data=data, headers={"Referer": self.url(path)}, timeout=60)
        response.raise_for_status()
        return response

    def _sign_up(self, username: str, alias: str) -> str:
        self.web.get(self.url("/accounts/signup/"), timeout=60).raise_for_status()
        password = "correct horse battery staple 42"
        page = self._post_form("/accounts/signup/", {"username": username, "password1": password,
                                                      "password2": password})
        assert page.url.endswith("/accounts/alias/"), page.text[:2000]
        self._post_form("/accounts/alias/", {"alias": alias})
        page = self._post_form("/accounts/token/", {})
        token = re.search(r'id="api-token" type="text" readonly value="(\w+)"', page.text)
        assert token, page.text[:2000]
        return token.group(1)

    # --- API
    def call(self, method: str, path: str, expect: int, **kwargs) -> dict:
        response = self.api.request(method, self.url(path), timeout=120, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:1000]}"
        return response.json() if response.content else {}

    def create_race(self, name: str, **settings) -> dict:
        now = datetime.now(UTC)
        body = {"name": name, "track": "pitlane_oval", "total_laps": 1, "minimum_laps": 1, "time_cap_s": 60,
                "opens_at": (now - timedelta(minutes=5)).isoformat(),
                "closes_at": (now + timedelta(days=1)).isoformat(),
                "max_submissions_per_racer": 50, "submission_cooldown_s": 0} | settings
        return self.call("POST", "/api/races/", 201, json=body)

    def join(self, code: str) -> None:
        self.call("POST", "/api/races/join/", 200, json={"code": code})

    def upload(self, name: str, archive: bytes, retry_for: float = 0) -> dict:
        """POST /api/models/; with ``retry_for`` seconds, retry as a careful client does while the web host or the
        object store is away. A retry refused as a duplicate name means an earlier try was stored: look it up."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                response = self.api.post(self.url("/api/models/"), data={"name": name},
                                         files={"archive": ("model.tar.gz", archive, "application/gzip")}, timeout=120)
            except requests.ConnectionError:
                response = None
            if response is not None and response.status_code == 201:
                return response.json()
            if response is not None and response.status_code == 400 and "already have a model named" in response.text:
                (model,) = [m for m in self.models() if m["name"] == name]
                return model
            retryable = response is None or response.status_code in RETRY_STATUS
            assert retryable and time.monotonic() < deadline, (
                f"upload {name}: {response.status_code if response is not None else 'no answer'} "
                f"{response.text[:500] if response is not None else ''}")
            self.upload_retries += 1
            time.sleep(1)

    def models(self) -> list[dict]:
        return self.call("GET", "/api/models/?page_size=100", 200)["results"]

    def submit(self, race: str, model: int) -> dict:
        return self.call("POST", "/api/submissions/", 201, json={"race": race, "model": model})

    def submission(self, pk: int) -> dict:
        return self.call("GET", f"/api/submissions/{pk}/", 200)
