"""Training in the browser: a racer's training jobs (start, stop, progress, quotas), run by the evaluator engine.

``TrainingRequest`` is what a racer asks for (the create-model form, the REST API and clones all build one); the
services below turn it into a ``TrainingJob`` that the engine runs in the sandbox on a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from races.models import Race, RacerModel, Track


@dataclass(frozen=True)
class TrainingRequest:
    """Everything a racer chooses for one training job (already checked field by field by the form or serializer;
    ``training_start`` checks the whole: quotas, the reward function on the tracks, clone compatibility)."""

    name: str  # the model's name (unique among the racer's models, as for uploads)
    description: str
    tracks: tuple[Track, ...]  # one or more; episodes rotate through them; the first is the main track
    direction: str  # Race.Direction value: "counterclockwise" | "clockwise"
    vehicle: dict[str, Any]  # sim.world.vehicle.Vehicle.to_file_dict(): a snapshot, later garage edits don't matter
    race_type: str  # Race.RaceType value other than HEAD_TO_HEAD
    reward_function_source: str
    hyperparameters: dict[str, Any]  # sim.learn.hyperparameters.Hyperparameters.to_dict()
    max_minutes: float  # the stop condition (within the racer's quota)
    best_by: str = "progress"  # which checkpoint is exported: best evaluation "progress" or best average "reward"
    clone_of: RacerModel | None = None  # start from this model's weights (same sensors, network, action shape)
    submit_to: Race | None = None  # the console's auto-submit: enter this race when training ends
