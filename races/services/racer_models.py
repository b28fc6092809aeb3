"""Uploaded models: validated with the archive module before anything is stored, soft-deleted when raced."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from django.core.cache import cache
from django.core.files import File
from django.db import transaction

from league.uploads import upload_limit_bytes
from races.models import RacerModel
from races.services.errors import RuleViolation
from sim.io.archive import ArchiveError, ArchiveLimits, extract_archive, inspect_archive

logger = logging.getLogger(__name__)

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


def model_contents(model: RacerModel) -> dict[str, Any]:
    """What the model's archive holds beyond its metadata: the reward function's source, the hyperparameters and the
    training time, where the archive has them (``python -m sim train`` writes all three), and the parameter count.

    The archive is read (and validated again: it is untrusted data) once per content hash and the answer cached,
    since an archive never changes. ``error`` says why nothing could be read (e.g. the file is missing).
    """
    key = f"model-contents:v2:{model.sha256}"
    contents = cache.get(key)
    if contents is None:
        contents = _read_contents(model)
        if not contents.get("error"):
            cache.set(key, contents, timeout=None)
    return contents


def _read_contents(model: RacerModel) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pitlane-contents-") as scratch:
        copy, unpacked = Path(scratch) / "model.tar.gz", Path(scratch) / "unpacked"
        try:
            with model.archive.open("rb") as stream, copy.open("wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
            info = extract_archive(copy, unpacked)
        except (ArchiveError, OSError) as error:
            logger.warning("Could not read the archive of model %s: %s", model.pk, error)
            return {"error": "The archive could not be read."}
        return {
            "error": "",
            "parameter_count": info.parameter_count,
            "reward_function_source": info.reward_function_source,
            "hyperparameters": info.hyperparameters,
            "training_seconds": _training_seconds(unpacked),
            "metrics_files": list(info.metrics_files),
            "reward_graph": _reward_graph_rows(unpacked),
        }


MAX_GRAPH_ITERATIONS, MAX_GRAPH_EPISODES = 2000, 20_000


def _reward_graph_rows(unpacked: Path) -> dict[str, Any] | None:
    """The numbers the reward graph is drawn from (``metrics/iterations.json`` and ``episodes.json``), checked one by
    one: the archive is untrusted, so the graph is redrawn from these numbers, never served from its PNG."""

    def number(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    def rows(name: str, keys: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        try:
            document = json.loads((unpacked / "metrics" / f"{name}.json").read_text(encoding="utf-8"))[name]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return []
        found = []
        for row in document[:limit] if isinstance(document, list) else []:
            if not isinstance(row, dict):
                continue
            values = {key: number(row.get(key)) for key in keys}
            if values["iteration"] is None or any(values[key] is None for key in keys[1:3]):
                continue
            found.append({**values, "iteration": int(values["iteration"]), "is_best": row.get("is_best") is True,
                          "phase": row.get("phase")})
        return found

    iterations = rows("iterations", ("iteration", "mean_reward", "mean_progress", "evaluation_mean_progress"),
                      MAX_GRAPH_ITERATIONS)
    if not iterations:
        return None
    episodes = [row for row in rows("episodes", ("iteration", "reward", "progress"), MAX_GRAPH_EPISODES)
                if row["phase"] in (None, "training")]
    best = [row["iteration"] for row in iterations if row["is_best"]]
    return {"iterations": iterations, "episodes": episodes, "best_iteration": best[-1] if best else None}


def _training_seconds(unpacked: Path) -> float | None:
    """The training run's length from ``metrics/iterations.json`` (cumulative ``elapsed_seconds``), if present."""
    try:
        rows = json.loads((unpacked / "metrics" / "iterations.json").read_text(encoding="utf-8"))["iterations"]
        seconds = float(rows[-1]["elapsed_seconds"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, RecursionError):  # untrusted JSON
        return None
    return seconds if seconds >= 0 else None
