"""The upload size limit, enforced while a multipart body streams in rather than after it is stored.

Django parses multipart bodies through the upload handlers of ``FILE_UPLOAD_HANDLERS``; ``UploadLimitHandler``
runs first. It refuses a file as soon as the request's declared ``Content-Length`` is beyond
``PITLANE_MAX_UPLOAD_MB`` (before any byte of the file is read), or the bytes of a file received pass the limit
(a body whose declared length understates it); the rest of the body is then not read, the temporary file
never holds more than the limit, and the request carries the refusal (``upload_refusal``) for the view to
answer 413 with "uploads are limited to N MiB". The reverse proxy should refuse the same bodies even earlier
(``client_max_body_size``, docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

MiB = 1024 * 1024
# A body carries more than the file: boundaries, part headers and the small fields (name, CSRF token).
MULTIPART_ALLOWANCE_BYTES = 1 * MiB
_REFUSAL_ATTRIBUTE = "pitlane_upload_refused"


def upload_limit_bytes() -> int:
    """The largest file an upload may carry (``PITLANE_MAX_UPLOAD_MB``)."""
    return int(getattr(settings, "PITLANE_MAX_UPLOAD_MB", 200)) * MiB


def upload_limit_message(size: int | None = None) -> str:
    """The refusal in words, with the request's size when it is known."""
    limit = upload_limit_bytes() // MiB
    if size is None:
        return f"The upload is larger than {limit} MiB; uploads are limited to {limit} MiB."
    return f"The upload is {size / MiB:.1f} MiB; uploads are limited to {limit} MiB."


def upload_refusal(request: Any) -> str | None:
    """The message if ``UploadLimitHandler`` stopped this request's upload (Django or DRF request), else None."""
    return getattr(request, _REFUSAL_ATTRIBUTE, None)


class UploadLimitHandler(FileUploadHandler):
    """First upload handler: stops a file at the size limit before the next handlers store it."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.declared_length = 0
        self.received = 0

    def handle_raw_input(
        self, input_data: Any, META: dict, content_length: int, boundary: bytes, encoding: str | None = None
    ) -> None:
        # Known before the body is read; the small fields before the file (CSRF token, name) are still parsed so
        # the web form can answer with its page.
        self.declared_length = content_length
        self.received = 0
        return None

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.received = 0
        if self.declared_length > upload_limit_bytes() + MULTIPART_ALLOWANCE_BYTES:
            self._refuse(upload_limit_message(self.declared_length))

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            self._refuse(upload_limit_message())
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file

    def _refuse(self, message: str) -> None:
        if isinstance(self.request, HttpRequest):
            setattr(self.request, _REFUSAL_ATTRIBUTE, message)
        # connection_reset: the parser does not read (nor store) the rest of the body.
        raise StopUpload(connection_reset=True)
