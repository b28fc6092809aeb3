"""Race a model folder's ONNX race plan (``sim.learn.onnx_plan``) with ONNX Runtime: greedy actions, no torch.

The evaluation sandbox's policy: numpy and ONNX Runtime only, so a fresh sandbox imports in a fraction of the time
torch takes. One intra-op thread, sequential execution: a race asks for one action per step, one car at a time,
and the worker runs one sandbox per core.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from sim.io.model_files import METADATA_FILE, RACE_PLAN_FILE
from sim.world.vehicle import Vehicle

CAMERA_INPUT, LIDAR_INPUT, OUTPUT = "camera", "lidar", "output"


class OnnxRacePolicy:
    """Greedy actions for environment observations: (N,) int64 indices (discrete) or (N, 2) float32 means."""

    def __init__(self, plan: bytes | str | Path, vehicle: Vehicle) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its warnings would land in the sandbox's stderr
        if not isinstance(plan, bytes) and not Path(plan).is_file():
            raise FileNotFoundError(f"no race plan at {plan}")
        source = plan if isinstance(plan, bytes) else str(plan)
        try:
            self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime's errors derive from Exception alone
            raise RuntimeError(f"the race plan could not be loaded: {error}") from None
        self.vehicle = vehicle
        self.discrete = vehicle.is_discrete
        names = {value.name for value in self.session.get_inputs()}
        if CAMERA_INPUT not in names or (vehicle.lidar is not None) != (LIDAR_INPUT in names):
            raise ValueError(f"the race plan's inputs {sorted(names)} do not fit the vehicle's sensors")

    def raw_output(self, observations: Any) -> np.ndarray:
        """The policy head's (N, outputs) float32 logits or Gaussian means."""
        vehicle = self.vehicle
        if isinstance(observations, Mapping):
            camera = observations[vehicle.camera] if vehicle.camera in observations else observations["camera"]
            feeds = {CAMERA_INPUT: np.ascontiguousarray(camera, dtype=np.uint8)}
            if vehicle.lidar is not None:
                ranges = observations[vehicle.lidar] if vehicle.lidar in observations else observations["lidar"]
                feeds[LIDAR_INPUT] = np.ascontiguousarray(ranges, dtype=np.float32)
        else:
            feeds = {CAMERA_INPUT: np.ascontiguousarray(observations, dtype=np.uint8)}
        try:
            return self.session.run([OUTPUT], feeds)[0]
        except Exception as error:  # ONNX Runtime's errors derive from Exception alone
            raise RuntimeError(f"the race plan failed: {error}") from None

    def __call__(self, observations: Any) -> np.ndarray:
        output = self.raw_output(observations)
        return output.argmax(-1) if self.discrete else output


def load_race_policy(model_dir: str | Path) -> tuple[Vehicle, OnnxRacePolicy]:
    """(vehicle, policy) of a model folder the worker validated and gave a race plan."""
    model_dir = Path(model_dir)
    vehicle = Vehicle.from_model_metadata(json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8-sig")))
    return vehicle, OnnxRacePolicy(model_dir / RACE_PLAN_FILE, vehicle)
