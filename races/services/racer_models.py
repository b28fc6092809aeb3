"""Uploaded models: validated with the archive module before anything is stored, soft-deleted when raced."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.db import transaction

from league.uploads import upload_limit_bytes
from races.models import RacerModel
from races.services.errors import RuleViolation
from sim.io.archive import ArchiveError, ArchiveLimits, inspect_archive

UPLOAD_TOO_LARGE = "upload_too_large"  # the RuleViolation code of an archive beyond the limit (HTTP 413)


def model_upload(owner, name: str, archive: BinaryIO, size: int | None = None) -> RacerModel:
    """Validate an uploaded ``model.tar.gz`` (never executing anything from it) and store it.

    The HTTP layer already stopped bodies beyond the limit while they streamed in (``league.uploads``); the
    checks here hold for any caller. Every refusal of the archive's content is a ``RuleViolation`` carrying
    the archive module's code: validation is total, so whatever the bytes, the caller gets a clear 400.
    """
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise RuleViolation("Give the model a name of 1 to 64 characters.")
    if RacerModel.objects.filter(owner=owner, name=name).exclude(status=RacerModel.Status.DELETED).exists():
        raise RuleViolation(f"You already have a model named '{name}'.")
    limit = upload_limit_bytes()
    if size is not None and size > limit:
        raise RuleViolation(
            f"The archive is {size / 2**20:.1f} MiB; uploads are limited to {limit // 2**20} MiB.", UPLOAD_TOO_LARGE
        )
    with tempfile.TemporaryDirectory(prefix="pitlane-upload-") as scratch:
        copy = Path(scratch) / "model.tar.gz"
        digest = hashlib.sha256()
        written = 0
        with copy.open("wb") as out:
            for chunk in iter(lambda: archive.read(1024 * 1024), b""):
                written += len(chunk)
                if written > limit:
                    raise RuleViolation(
                        f"The archive is larger than the upload limit of {limit // 2**20} MiB.", UPLOAD_TOO_LARGE
                    )
                digest.update(chunk)
                out.write(chunk)
        try:
            info = inspect_archive(copy, ArchiveLimits(), scratch_dir=scratch)
        except ArchiveError as error:
            raise RuleViolation(f"This archive was refused: {error}", code=getattr(error, "code", "invalid")) from None
        with transaction.atomic(), copy.open("rb") as stream:
            model = RacerModel(
                owner=owner,
                name=name,
                sha256=digest.hexdigest(),
                size_bytes=written,
                metadata=info.metadata,
            )
            model.archive.save(f"{owner.pk}/{digest.hexdigest()[:16]}.tar.gz", File(stream), save=False)
            model.save()
    return model


def model_delete(model: RacerModel) -> None:
    """Remove a model; one that raced keeps its archive for the run records and is only hidden."""
    if model.submissions.exists():
        model.status = RacerModel.Status.DELETED
        model.save(update_fields=["status"])
    else:
        model.archive.delete(save=False)
        model.delete()


def models_of(owner):
    return RacerModel.objects.filter(owner=owner).exclude(status=RacerModel.Status.DELETED)
