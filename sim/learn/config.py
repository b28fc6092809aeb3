"""What defines a training run: ``TrainingConfig`` (saved as the model folder's ``training.json``) and its errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sim.io.model_folder import ModelFolder
from sim.learn.hyperparameters import Hyperparameters
from sim.world.track import Track
from sim.world.track_catalog import get_track
from sim.world.vehicle import Vehicle

EXPORT_CHOICES = ("best", "last")
# What makes a checkpoint "best": its evaluation episodes' mean progress (the console's default), or its training
# episodes' mean reward (for reward functions whose scale says more than progress, e.g. object avoidance).
BEST_BY_CHOICES = ("progress", "reward")


class TrainingError(ValueError):
    """Training cannot start or continue (bad settings, incompatible clone, missing model folder)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a training run (saved as ``training.json`` so ``resume`` needs nothing else)."""

    track: str
    vehicle: Vehicle
    reward_function_source: str
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    evaluation_episodes: int = 5
    max_episode_steps: int = 1500  # 100 s: an episode slower than this is going nowhere
    seed: int = 0
    export: str = "best"
    mixed_precision: bool | None = None  # None: bf16 autocast only on CPUs with native bf16 (sim.learn.agent)
    record_simtrace: bool = True
    tracks_dir: str | None = None
    # Further tracks trained on at once: iterations rotate through ``track`` then these (as DeepRacer-for-Cloud's
    # multi-track training does), and every evaluation drives each of them, so a model learns to generalise.
    more_tracks: tuple[str, ...] = ()
    best_by: str = "progress"
    # Boxes or bot cars on every training track (``sim.world.objects.objects_from_spec``): object avoidance and
    # head-to-bot training. None: time trial.
    objects: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "more_tracks", tuple(self.more_tracks))
        if self.export not in EXPORT_CHOICES:
            raise TrainingError(f"export must be 'best' or 'last', got {self.export!r}")
        if not 0 <= self.evaluation_episodes <= 20:
            raise TrainingError(f"evaluation_episodes must be between 0 and 20, got {self.evaluation_episodes}")
        if self.max_episode_steps < 30:
            raise TrainingError(f"max_episode_steps must be at least 30, got {self.max_episode_steps}")
        if self.best_by not in BEST_BY_CHOICES:
            raise TrainingError(f"best_by must be 'progress' or 'reward', got {self.best_by!r}")
        if self.track in self.more_tracks or len(set(self.more_tracks)) != len(self.more_tracks):
            raise TrainingError("each training track may be named once")

    def to_json(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "vehicle": self.vehicle.to_file_dict(),
            "hyperparameters": self.hyperparameters.to_dict(),
            "evaluation_episodes": self.evaluation_episodes,
            "max_episode_steps": self.max_episode_steps,
            "seed": self.seed,
            "export": self.export,
            "mixed_precision": self.mixed_precision,
            "record_simtrace": self.record_simtrace,
            "tracks_dir": self.tracks_dir,
            "more_tracks": list(self.more_tracks),
            "best_by": self.best_by,
            "objects": self.objects,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any], reward_function_source: str) -> TrainingConfig:
        values = dict(document)
        values.pop("cloned_from", None)  # provenance only
        values["vehicle"] = Vehicle.from_file_dict(values["vehicle"])
        values["hyperparameters"] = Hyperparameters.from_dict(values["hyperparameters"])
        return cls(reward_function_source=reward_function_source, **values)

    @property
    def track_names(self) -> tuple[str, ...]:
        return (self.track, *self.more_tracks)

    def load_track(self) -> Track:
        """The main track (the first of ``load_tracks``)."""
        return self.load_tracks()[0]

    def load_tracks(self) -> list[Track]:
        """Every training track, the main one first; objects, if any, are checked against each."""
        tracks = []
        for name in self.track_names:
            try:
                tracks.append(get_track(name, self.tracks_dir))
            except KeyError as error:
                raise TrainingError(str(error.args[0])) from None
        if self.objects is not None:
            from sim.world.objects import objects_from_spec

            for track in tracks:
                try:
                    objects_from_spec(track, self.objects)
                except ValueError as error:
                    raise TrainingError(f"objects: {error}") from None
        return tracks


def load_config(folder: ModelFolder) -> TrainingConfig:
    """The configuration a model folder was trained with (its ``training.json`` and reward function)."""
    if not folder.exists():
        raise TrainingError(f"{folder.root} is not a model folder (no {folder.config.name})")
    return TrainingConfig.from_json(json.loads(folder.config.read_text()), folder.reward_function.read_text())
