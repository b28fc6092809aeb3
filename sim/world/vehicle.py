"""The garage: a vehicle is the sensors, the neural network and the action space a model is trained with.

A ``Vehicle`` maps one-to-one onto DeepRacer's ``model_metadata.json`` (``to_model_metadata`` /
``Vehicle.from_model_metadata``) and onto our vehicle files (``sim/world/vehicles/*.json``, ``load_vehicle`` /
``save_vehicle``). Every invalid setting raises ``VehicleError`` naming the offending field, so the same
checks serve the garage command, the trainer and the strict validation of uploaded archives.

Discrete action order (``DiscreteActionSpace.from_granularity``): steering angles ascending from the hardest
right turn (``-max``) to the hardest left turn (``+max``), and for each angle the speeds ascending. This is
the order of the AWS console's own ``model_metadata.json`` files (e.g. deepracer-analysis
``logs/sample-console-logs/model/model_metadata.json``), so action index ``i`` means the same as in AWS.
The lab's example (30°, granularity 5, 1 m/s, granularity 3) gives 15 actions: index 0 = (-30°, 0.33 m/s),
index 14 = (30°, 1 m/s). Generated values are rounded to 2 decimals, as the console shows them.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.world.quoting import brief_repr

FRONT_FACING_CAMERA = "FRONT_FACING_CAMERA"
STEREO_CAMERAS = "STEREO_CAMERAS"
LIDAR = "LIDAR"
SECTOR_LIDAR = "SECTOR_LIDAR"
CAMERA_SENSORS = (FRONT_FACING_CAMERA, STEREO_CAMERAS)
LIDAR_SENSORS = (LIDAR, SECTOR_LIDAR)
SENSORS = CAMERA_SENSORS + LIDAR_SENSORS

DEEP_CONVOLUTIONAL_NETWORK_SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
DEEP_CONVOLUTIONAL_NETWORK = "DEEP_CONVOLUTIONAL_NETWORK"
DEEP_CONVOLUTIONAL_NETWORK_DEEP = "DEEP_CONVOLUTIONAL_NETWORK_DEEP"
# Console labels ("3-layer CNN", "5-layer CNN"); the deep one never had a console label.
NEURAL_NETWORKS = {
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW: "3-layer CNN",
    DEEP_CONVOLUTIONAL_NETWORK: "5-layer CNN",
    DEEP_CONVOLUTIONAL_NETWORK_DEEP: "deep CNN",
}

CLIPPED_PPO = "clipped_ppo"
METADATA_VERSION = "5"  # DeepRacer simapp version our physics stands for (DRfC default metadata uses "5")

MAX_STEERING_ANGLE = 30.0  # degrees, both ways (SPEC §3)
MIN_SPEED, MAX_SPEED = 0.1, 4.0  # m/s (SPEC §3)
MIN_DISCRETE_ACTIONS, MAX_DISCRETE_ACTIONS = 2, 30  # console limits
MAX_SPEED_GRANULARITY = 10

METADATA_KEYS = ("action_space", "sensor", "neural_network", "training_algorithm", "action_space_type", "version")
OPTIONAL_METADATA_KEYS = ("lidar_config",)  # written by the AWS console; only DISCRETIZED_SECTOR_LIDAR used it

VEHICLES_DIR = Path(__file__).resolve().parent / "vehicles"


class VehicleError(ValueError):
    """An invalid vehicle setting; ``field`` names the setting (a ``model_metadata.json`` key where one exists)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


# --- small checkers -------------------------------------------------------------------------------------------




def _number(field_name: str, value: Any) -> float:
    # bool is an int in Python; `true` as a speed is a typo, not 1 m/s.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VehicleError(field_name, f"must be a number, got {type(value).__name__} {brief_repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range (a 400-digit speed)
        raise VehicleError(field_name, f"{brief_repr(value)} is out of range") from None
    if not math.isfinite(number):
        raise VehicleError(field_name, f"must be a finite number, got {value!r}")
    return number


def _in_range(field_name: str, value: Any, low: float, high: float, unit: str) -> float:
    number = _number(field_name, value)
    if not low <= number <= high:
        unit = unit if unit == "°" else f" {unit}"
        raise VehicleError(field_name, f"{number:g}{unit} is outside [{low:g}, {high:g}]{unit}")
    return number


def _integer(field_name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VehicleError(field_name, f"must be an integer, got {type(value).__name__} {brief_repr(value)}")
    return value


def _check_keys(field_name: str, values: Any, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    if not isinstance(values, Mapping):
        raise VehicleError(field_name, f"must be an object, got {type(values).__name__}")
    required = tuple(required)
    missing = [key for key in required if key not in values]
    if missing:
        raise VehicleError(field_name, f"missing key(s): {', '.join(missing)}")
    unknown = sorted(set(values) - set(required) - set(optional))
    if unknown:
        raise VehicleError(field_name, f"unknown key(s): {', '.join(map(str, unknown))}")


# --- sensors ---------------------------------------------------------------------------------------------------


def validate_sensors(names: Sequence[str]) -> tuple[str, ...]:
    """Exactly one camera (front-facing or stereo), at most one lidar; returns them camera first.

    The rule is DeepRacer's (``parse_model_metadata``); ``LEFT_CAMERA`` and ``DISCRETIZED_SECTOR_LIDAR`` are not
    simulated by Pitlane and are refused as unknown.
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise VehicleError("sensor", f"must be a list of sensor names, got {type(names).__name__}")
    for name in names:
        if not isinstance(name, str):
            raise VehicleError("sensor", f"sensor names are strings, got {brief_repr(name)}")
        if name not in SENSORS:
            raise VehicleError("sensor", f"unknown sensor {brief_repr(name)} (known: {', '.join(SENSORS)})")
    if len(set(names)) != len(names):
        raise VehicleError("sensor", f"a sensor is listed twice: {list(names)}")
    cameras = [name for name in names if name in CAMERA_SENSORS]
    lidars = [name for name in names if name in LIDAR_SENSORS]
    if len(cameras) != 1:
        raise VehicleError(
            "sensor", f"exactly one camera is required ({' or '.join(CAMERA_SENSORS)}), got {cameras or 'none'}"
        )
    if len(lidars) > 1:
        raise VehicleError("sensor", f"at most one lidar is allowed ({' or '.join(LIDAR_SENSORS)}), got {lidars}")
    return (cameras[0], *lidars)


# --- action spaces ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One discrete action: steering angle in degrees (+ = left) and speed in m/s."""

    steering_angle: float
    speed: float

    def __post_init__(self) -> None:
        steering = _in_range("steering_angle", self.steering_angle, -MAX_STEERING_ANGLE, MAX_STEERING_ANGLE, "°")
        speed = _in_range("speed", self.speed, MIN_SPEED, MAX_SPEED, "m/s")
        object.__setattr__(self, "steering_angle", steering)
        object.__setattr__(self, "speed", speed)


@dataclass(frozen=True)
class Granularity:
    """The console's four action-space inputs; kept so a vehicle file can show them as the racer typed them."""

    max_steering_angle: float
    steering_granularity: int
    max_speed: float
    speed_granularity: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_steering_angle": self.max_steering_angle,
            "steering_granularity": self.steering_granularity,
            "max_speed": self.max_speed,
            "speed_granularity": self.speed_granularity,
        }


@dataclass(frozen=True)
class DiscreteActionSpace:
    """A list of actions; the policy picks an index (argmax in races, sampled in training)."""

    actions: tuple[Action, ...]
    # How the list was generated, if it was; not part of equality (the actions are what the model knows).
    granularity: Granularity | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        actions = tuple(self.actions)
        if not all(isinstance(action, Action) for action in actions):
            raise VehicleError("action_space", "actions must be Action(steering_angle, speed) values")
        if not MIN_DISCRETE_ACTIONS <= len(actions) <= MAX_DISCRETE_ACTIONS:
            raise VehicleError(
                "action_space",
                f"a discrete action space has {MIN_DISCRETE_ACTIONS} to {MAX_DISCRETE_ACTIONS} actions, "
                f"got {len(actions)}",
            )
        object.__setattr__(self, "actions", actions)

    @classmethod
    def from_granularity(
        cls,
        max_steering_angle: float = 30.0,
        steering_granularity: int = 5,
        max_speed: float = 1.0,
        speed_granularity: int = 3,
    ) -> DiscreteActionSpace:
        """The console's generator: symmetric steering angles x speeds ``max/g, 2max/g, ..., max``."""
        max_angle = _in_range("max_steering_angle", max_steering_angle, 1.0, MAX_STEERING_ANGLE, "°")
        steering_granularity = _integer("steering_granularity", steering_granularity)
        if steering_granularity < 3 or steering_granularity % 2 == 0:
            raise VehicleError(
                "steering_granularity",
                f"must be an odd number >= 3 (so 0° is an action and angles are symmetric), got {steering_granularity}",
            )
        top_speed = _in_range("max_speed", max_speed, MIN_SPEED, MAX_SPEED, "m/s")
        speed_granularity = _integer("speed_granularity", speed_granularity)
        if not 1 <= speed_granularity <= MAX_SPEED_GRANULARITY:
            raise VehicleError(
                "speed_granularity", f"must be between 1 and {MAX_SPEED_GRANULARITY}, got {speed_granularity}"
            )
        count = steering_granularity * speed_granularity
        if count > MAX_DISCRETE_ACTIONS:
            raise VehicleError(
                "action_space",
                f"{steering_granularity} steering angles x {speed_granularity} speeds = {count} actions, "
                f"more than the maximum of {MAX_DISCRETE_ACTIONS}",
            )
        slowest = round(top_speed / speed_granularity, 2)
        if slowest < MIN_SPEED:
            raise VehicleError(
                "speed_granularity",
                f"the slowest speed {top_speed:g}/{speed_granularity} = {slowest:g} m/s is below {MIN_SPEED:g} m/s",
            )
        half = steering_granularity // 2
        angles = [round(max_angle * k / half, 2) + 0.0 for k in range(-half, half + 1)]  # + 0.0: no -0.0
        speeds = [round(top_speed * k / speed_granularity, 2) for k in range(1, speed_granularity + 1)]
        actions = tuple(Action(angle, speed) for angle in angles for speed in speeds)
        return cls(actions, Granularity(max_angle, steering_granularity, top_speed, speed_granularity))

    @classmethod
    def from_table(cls, actions: Any, granularity: Mapping[str, Any] | None = None) -> DiscreteActionSpace:
        """An action table the racer may have edited row by row (the garage): ``actions`` as in
        ``model_metadata.json``. When the table is exactly what ``granularity`` (the console's four inputs)
        generates, the space keeps those inputs, so the vehicle file shows them; an edited table stands on its own."""
        space = cls.from_metadata(actions)
        if granularity is None:
            return space
        _check_keys("action_space", granularity, tuple(Granularity.__dataclass_fields__))
        try:
            generated = cls.from_granularity(**granularity)
        except VehicleError:
            return space  # inputs that generate nothing valid cannot describe a valid table
        return generated if generated == space else space

    @property
    def n(self) -> int:
        return len(self.actions)

    @property
    def policy_output_size(self) -> int:
        """Number of logits of the policy head."""
        return len(self.actions)

    def to_metadata(self) -> list[dict[str, float]]:
        return [{"steering_angle": a.steering_angle, "speed": a.speed} for a in self.actions]

    @classmethod
    def from_metadata(cls, values: Any) -> DiscreteActionSpace:
        if not isinstance(values, list):
            raise VehicleError("action_space", f"a discrete action space is a list, got {type(values).__name__}")
        actions = []
        for index, entry in enumerate(values):
            where = f"action_space[{index}]"
            # "index" is written by the AWS console; the list position is what counts, so it must agree.
            _check_keys(where, entry, ("steering_angle", "speed"), ("index",))
            if "index" in entry and (isinstance(entry["index"], bool) or entry["index"] != index):
                shown = brief_repr(entry["index"])
                raise VehicleError(where, f"'index' is {shown} but the action is at position {index}")
            try:
                actions.append(Action(entry["steering_angle"], entry["speed"]))
            except VehicleError as error:
                raise VehicleError(f"{where}.{error.field}", error.detail) from None
        return cls(tuple(actions))

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """(actions, 2) [steering, speed] float64: built once, not at every step (read-only, shared)."""
        table = np.array([(a.steering_angle, a.speed) for a in self.actions], dtype=np.float64)
        table.flags.writeable = False
        return table

    def to_command(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Action indices ``(N,)`` -> (steering degrees ``(N,)``, speed m/s ``(N,)``), float64."""
        indices = np.asarray(actions)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"discrete actions are integer indices, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.n):
            raise ValueError(f"action index out of range 0..{self.n - 1}: {indices.tolist()}")
        chosen = self._table[indices]
        return chosen[..., 0], chosen[..., 1]


@dataclass(frozen=True)
class ContinuousActionSpace:
    """Steering and speed ranges; the policy outputs ``[steering, speed]`` in [-1, 1], scaled linearly."""

    steering_low: float = -30.0
    steering_high: float = 30.0
    speed_low: float = 0.5
    speed_high: float = 1.0

    def __post_init__(self) -> None:
        limits = {
            "steering_angle.low": (self.steering_low, -MAX_STEERING_ANGLE, MAX_STEERING_ANGLE, "°"),
            "steering_angle.high": (self.steering_high, -MAX_STEERING_ANGLE, MAX_STEERING_ANGLE, "°"),
            "speed.low": (self.speed_low, MIN_SPEED, MAX_SPEED, "m/s"),
            "speed.high": (self.speed_high, MIN_SPEED, MAX_SPEED, "m/s"),
        }
        checked = {name: _in_range(f"action_space.{name}", *spec) for name, spec in limits.items()}
        for name in ("steering_angle", "speed"):
            if checked[f"{name}.low"] >= checked[f"{name}.high"]:
                raise VehicleError(
                    f"action_space.{name}",
                    f"low ({checked[f'{name}.low']:g}) must be less than high ({checked[f'{name}.high']:g})",
                )
        object.__setattr__(self, "steering_low", checked["steering_angle.low"])
        object.__setattr__(self, "steering_high", checked["steering_angle.high"])
        object.__setattr__(self, "speed_low", checked["speed.low"])
        object.__setattr__(self, "speed_high", checked["speed.high"])

    @property
    def policy_output_size(self) -> int:
        """Means of the Gaussian policy: steering and speed."""
        return 2

    def to_metadata(self) -> dict[str, dict[str, float]]:
        return {
            "steering_angle": {"low": self.steering_low, "high": self.steering_high},
            "speed": {"low": self.speed_low, "high": self.speed_high},
        }

    @classmethod
    def from_metadata(cls, values: Any) -> ContinuousActionSpace:
        _check_keys("action_space", values, ("steering_angle", "speed"))
        _check_keys("action_space.steering_angle", values["steering_angle"], ("low", "high"))
        _check_keys("action_space.speed", values["speed"], ("low", "high"))
        return cls(
            steering_low=values["steering_angle"]["low"],
            steering_high=values["steering_angle"]["high"],
            speed_low=values["speed"]["low"],
            speed_high=values["speed"]["high"],
        )

    def to_command(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Policy outputs ``(N, 2)`` = [steering, speed] -> clipped to [-1, 1] and scaled to the ranges."""
        values = np.asarray(actions, dtype=np.float64)
        if values.ndim == 0 or values.shape[-1] != 2:
            raise ValueError(f"continuous actions have shape (N, 2) = [steering, speed], got {values.shape}")
        unit = (np.clip(values, -1.0, 1.0) + 1.0) / 2.0
        steering = self.steering_low + unit[..., 0] * (self.steering_high - self.steering_low)
        speed = self.speed_low + unit[..., 1] * (self.speed_high - self.speed_low)
        return steering, speed


ActionSpace = DiscreteActionSpace | ContinuousActionSpace


# --- the vehicle -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vehicle:
    """Sensors + neural network + action space (the console's "garage" car). ``name`` is for people only."""

    sensors: tuple[str, ...]
    neural_network: str
    action_space: ActionSpace
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensors", validate_sensors(self.sensors))
        if not isinstance(self.neural_network, str) or self.neural_network not in NEURAL_NETWORKS:
            raise VehicleError(
                "neural_network",
                f"unknown neural network {brief_repr(self.neural_network)} (known: {', '.join(NEURAL_NETWORKS)})",
            )
        if not isinstance(self.action_space, DiscreteActionSpace | ContinuousActionSpace):
            raise VehicleError("action_space", f"unsupported action space {type(self.action_space).__name__}")
        if not isinstance(self.name, str):
            raise VehicleError("name", f"must be a string, got {type(self.name).__name__}")

    @property
    def camera(self) -> str:
        return self.sensors[0]

    @property
    def lidar(self) -> str | None:
        return self.sensors[1] if len(self.sensors) > 1 else None

    @property
    def is_discrete(self) -> bool:
        return isinstance(self.action_space, DiscreteActionSpace)

    @property
    def top_speed(self) -> float:
        """The fastest any action drives, in m/s (the speed a racing line's profile is built for)."""
        space = self.action_space
        return max(action.speed for action in space.actions) if self.is_discrete else space.speed_high

    @property
    def action_space_type(self) -> str:
        return "discrete" if self.is_discrete else "continuous"

    def action_to_command(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Batched policy actions -> (steering degrees, speed m/s), each ``(N,)`` float64.

        Discrete: integer indices into the action list. Continuous: ``(N, 2)`` outputs in [-1, 1] (clipped).
        """
        return self.action_space.to_command(actions)

    # --- model_metadata.json ---

    def to_model_metadata(self) -> dict[str, Any]:
        return {
            "action_space": self.action_space.to_metadata(),
            "sensor": list(self.sensors),
            "neural_network": self.neural_network,
            "training_algorithm": CLIPPED_PPO,
            "action_space_type": self.action_space_type,
            "version": METADATA_VERSION,
        }

    @classmethod
    def from_model_metadata(cls, metadata: Any, name: str = "") -> Vehicle:
        """Strict parse of a DeepRacer ``model_metadata.json`` document (already JSON-decoded)."""
        _check_keys("model_metadata", metadata, METADATA_KEYS, OPTIONAL_METADATA_KEYS)
        _check_training_algorithm(metadata["training_algorithm"])
        _check_version(metadata["version"])
        if "lidar_config" in metadata and not isinstance(metadata["lidar_config"], Mapping):
            raise VehicleError("lidar_config", "must be an object")
        return cls(
            sensors=metadata["sensor"],
            neural_network=metadata["neural_network"],
            action_space=_action_space_from_metadata(metadata["action_space_type"], metadata["action_space"]),
            name=name,
        )

    # --- vehicle files ---

    def to_file_dict(self) -> dict[str, Any]:
        """The vehicle file document: metadata keys plus ``name``; a generated discrete space shows its inputs."""
        document: dict[str, Any] = {"name": self.name}
        document.update(self.to_model_metadata())
        space = self.action_space
        if isinstance(space, DiscreteActionSpace) and space.granularity is not None:
            document["action_space"] = space.granularity.to_dict()
        return document

    @classmethod
    def from_file_dict(cls, document: Any) -> Vehicle:
        """Like ``from_model_metadata`` plus ``name``; ``training_algorithm``/``version`` may be omitted and a
        discrete ``action_space`` may be the console's four inputs instead of a list."""
        _check_keys(
            "vehicle",
            document,
            ("sensor", "neural_network", "action_space_type", "action_space"),
            ("name", "training_algorithm", "version", *OPTIONAL_METADATA_KEYS),
        )
        if "training_algorithm" in document:
            _check_training_algorithm(document["training_algorithm"])
        if "version" in document:
            _check_version(document["version"])
        space_type, space = document["action_space_type"], document["action_space"]
        if space_type == "discrete" and isinstance(space, Mapping):
            _check_keys(
                "action_space", space, ("max_steering_angle", "steering_granularity", "max_speed", "speed_granularity")
            )
            action_space: ActionSpace = DiscreteActionSpace.from_granularity(**space)
        else:
            action_space = _action_space_from_metadata(space_type, space)
        return cls(
            sensors=document["sensor"],
            neural_network=document["neural_network"],
            action_space=action_space,
            name=document.get("name", ""),
        )


def _check_training_algorithm(value: Any) -> None:
    if value == "sac":
        raise VehicleError(
            "training_algorithm",
            "'sac' is not supported: Pitlane trains and races clipped PPO models only (use 'clipped_ppo')",
        )
    if value != CLIPPED_PPO:
        raise VehicleError(
            "training_algorithm", f"unknown training algorithm {brief_repr(value)} (supported: 'clipped_ppo')"
        )


def _check_version(value: Any) -> None:
    # Any DeepRacer model version is accepted ("4.0", "5", 6): Pitlane has one physics model.
    try:
        ok = not isinstance(value, bool) and isinstance(value, str | int | float) and math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        raise VehicleError("version", f"{brief_repr(value)} is out of range") from None
    except ValueError:
        ok = False
    if not ok:
        raise VehicleError("version", f'must be a version number such as "5", got {brief_repr(value)}')


def _action_space_from_metadata(space_type: Any, values: Any) -> ActionSpace:
    if space_type == "discrete":
        return DiscreteActionSpace.from_metadata(values)
    if space_type == "continuous":
        return ContinuousActionSpace.from_metadata(values)
    raise VehicleError("action_space_type", f"must be 'discrete' or 'continuous', got {brief_repr(space_type)}")


def load_vehicle(path: str | Path) -> Vehicle:
    """Read a vehicle file (JSON); errors name the file and the field."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise VehicleError("vehicle", f"{path} is not valid JSON: {error}") from None
    try:
        return Vehicle.from_file_dict(document)
    except VehicleError as error:
        raise VehicleError(error.field, f"{path}: {error.detail}") from None


def save_vehicle(vehicle: Vehicle, path: str | Path) -> None:
    Path(path).write_text(json.dumps(vehicle.to_file_dict(), indent=2) + "\n", encoding="utf-8")


def list_vehicles() -> dict[str, Path]:
    """The example vehicles shipped in ``sim/vehicles`` by file stem (``original_deepracer``, ...)."""
    return {path.stem: path for path in sorted(VEHICLES_DIR.glob("*.json"))}


def get_vehicle(name_or_path: str | Path) -> Vehicle:
    """An example vehicle by name, or any vehicle file by path."""
    examples = list_vehicles()
    if isinstance(name_or_path, str) and name_or_path in examples:
        return load_vehicle(examples[name_or_path])
    path = Path(name_or_path)
    if not path.is_file():
        raise VehicleError(
            "vehicle", f"no vehicle file {str(name_or_path)!r} (examples: {', '.join(examples) or 'none'})"
        )
    return load_vehicle(path)
