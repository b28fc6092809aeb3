"""Uploads answer clearly whatever arrives: malformed archives are a 400 (web form: the page with the message),
bodies beyond the size limit a 413 before the file is read or stored (issue "Hardening", items 4 and 6)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from rest_framework.test import APIClient

from races.models import RacerModel
from sim.io import archive
from tests.sim.hostile_archives import metadata_bytes, valid_members, write_tar_gz

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def _raw_metadata(path: tuple, raw_number: str) -> bytes:
    """Valid metadata with the value at ``path`` replaced by the raw JSON number text (beyond what Python writes)."""
    document = json.loads(metadata_bytes())
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@NUMBER@"
    return json.dumps(document).replace('"@NUMBER@"', raw_number).encode()


# name -> (members replaced or added, error code, fragment of the message)
MALFORMED = {
    "deep_metadata": (
        {archive.METADATA_FILE: b"[" * 100_000 + b"]" * 100_000},
        "invalid_metadata",
        "model_metadata.json is nested too deeply",
    ),
    "deep_hyperparameters": (
        {archive.HYPERPARAMETERS_FILE: b'{"a":' * 100_000 + b"1" + b"}" * 100_000},
        "invalid_provenance",
        "hyperparameters.json is nested too deeply",
    ),
    "huge_version": (
        {archive.METADATA_FILE: _raw_metadata(("version",), "9" * 400)},
        "invalid_metadata",
        "model_metadata.json: version is out of range",
    ),
    "huge_speed": (
        {archive.METADATA_FILE: _raw_metadata(("action_space", 0, "speed"), "1" + "0" * 400)},
        "invalid_metadata",
        "model_metadata.json: action_space[0].speed is out of range",
    ),
    "nan_hyperparameters": (
        {archive.HYPERPARAMETERS_FILE: b'{"lr": NaN, "batch_size": 64}'},
        "invalid_provenance",
        "NaN is not a JSON number",
    ),
}


@pytest.fixture(scope="module")
def malformed_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("malformed")
    return {
        name: write_tar_gz(folder / f"{name}.tar.gz", valid_members(**members)).read_bytes()
        for name, (members, _, _) in MALFORMED.items()
    }


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_the_api_refuses_a_malformed_archive_with_a_400(make_racer, malformed_archives, case):
    _, code, message = MALFORMED[case]
    upload = SimpleUploadedFile("model.tar.gz", malformed_archives[case])
    response = api_for(make_racer()).post("/api/models/", {"name": case, "archive": upload}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == code
    assert message in response.json()["detail"]
    assert not RacerModel.objects.exists()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_the_web_form_shows_why_a_malformed_archive_was_refused(make_racer, malformed_archives, client, case):
    _, _, message = MALFORMED[case]
    client.force_login(make_racer())
    upload = SimpleUploadedFile("model.tar.gz", malformed_archives[case])
    response = client.post("/models/", {"name": case, "archive": upload})
    assert response.status_code == 200  # the form again, with the message under the file field
    page = response.content.decode()
    assert "This archive was refused" in page and message in page
    assert not RacerModel.objects.exists()


def test_an_unforeseen_validation_error_is_a_logged_400_never_a_500(
    make_racer, archive_bytes, client, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(archive.Vehicle, "from_model_metadata", broken)
    racer = make_racer()
    with caplog.at_level("ERROR", logger="sim.io.archive"):
        response = api_for(racer).post(
            "/api/models/", {"name": "api", "archive": SimpleUploadedFile("model.tar.gz", archive_bytes)},
            format="multipart",
        )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "This archive was refused: the archive could not be read", "code": "unreadable_archive"
    }
    assert "a bug nobody foresaw" in caplog.text  # the traceback went to the log
    client.force_login(racer)
    page = client.post("/models/", {"name": "web", "archive": SimpleUploadedFile("model.tar.gz", archive_bytes)})
    assert page.status_code == 200 and "the archive could not be read" in page.content.decode()
    assert not RacerModel.objects.exists()


# --- the size limit, while the body streams in ---------------------------------------------------------------

BOUNDARY = "pitlane-test-boundary"


class MultipartBody(io.RawIOBase):
    """A multipart body made on demand (a ``name`` field, then a file of zeros); counts the bytes read from it."""

    def __init__(self, file_size: int) -> None:
        self.head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="archive"; filename="model.tar.gz"\r\n'
            "Content-Type: application/gzip\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.length = len(self.head) + file_size + len(self.tail)
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = self.length if size is None or size < 0 else min(self.length, self.position + size)
        data = bytearray()
        while self.position < end:
            file_end = self.length - len(self.tail)
            if self.position < len(self.head):
                piece = self.head[self.position : min(end, len(self.head))]
            elif self.position < file_end:
                piece = bytes(min(end, file_end) - self.position)
            else:
                piece = self.tail[self.position - file_end : end - file_end]
            data += piece
            self.position += len(piece)
        return bytes(data)


def _post(user, where: str, body: MultipartBody, declared_length: int | None, client):
    """POST the body with the Content-Length given (None: no header, like a chunked request)."""
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    environ = {"wsgi.input": body, "CONTENT_TYPE": content_type}  # an empty data argument sets neither
    if declared_length is not None:
        environ["CONTENT_LENGTH"] = str(declared_length)
    if where == "api":
        return api_for(user).generic("POST", "/api/models/", b"", content_type, **environ)
    client.force_login(user)
    return client.generic("POST", "/models/", b"", content_type, **environ)


@pytest.fixture
def spooled(monkeypatch, settings) -> list[int]:
    """Bytes each upload wrote to its temporary file (uploads go to disk from the first byte here)."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.PITLANE_MAX_UPLOAD_MB = 2
    written: list[int] = []
    original = TemporaryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        written.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", counting)
    return written


def _assert_refused_as_too_large(response, where: str, size_text: str) -> None:
    assert response.status_code == 413, response.content[:300]
    if where == "api":
        assert response.json()["code"] == "upload_too_large"
        detail = response.json()["detail"]
    else:
        detail = response.content.decode()
    assert f"{size_text}; uploads are limited to 2 MiB." in detail


@pytest.mark.parametrize("where", ["api", "web"])
def test_a_declared_length_beyond_the_limit_is_refused_before_the_file_is_read(make_racer, client, spooled, where):
    body = MultipartBody(file_size=50 * MiB)
    response = _post(make_racer(), where, body, body.length, client)
    _assert_refused_as_too_large(response, where, "The upload is 50.0 MiB")
    assert body.position < 256 * 1024  # the name field and a chunk or two, not 50 MiB
    assert sum(spooled) == 0
    assert not RacerModel.objects.exists()


@pytest.mark.parametrize("where", ["api", "web"])
def test_a_file_passing_the_limit_while_streaming_is_stopped_there(make_racer, client, spooled, where):
    # 2.5 MiB: under the declared-length check (limit + 1 MiB for the multipart framing), over the file limit.
    body = MultipartBody(file_size=5 * MiB // 2)
    response = _post(make_racer(), where, body, body.length, client)
    _assert_refused_as_too_large(response, where, "The upload is larger than 2 MiB")
    assert sum(spooled) <= 2 * MiB  # the temporary file never held more than the limit
    assert body.position <= 2 * MiB + 2 * 64 * 1024 + len(body.head)  # the rest of the body was never read
    assert not RacerModel.objects.exists()


@pytest.mark.parametrize("where", ["api", "web"])
@pytest.mark.parametrize("declared", [4096, None], ids=["understated", "absent"])
def test_a_body_lying_about_its_length_is_read_no_further_than_declared(make_racer, client, spooled, where, declared):
    body = MultipartBody(file_size=50 * MiB)  # far more than declared
    response = _post(make_racer(), where, body, declared, client)
    assert response.status_code in (200, 400), response.content[:300]  # web: the form again with its errors
    assert body.position <= (declared or 0)
    assert sum(spooled) <= (declared or 0)
    if where == "api":
        assert "archive" in response.content.decode()
    assert not RacerModel.objects.exists()
