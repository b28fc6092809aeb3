"""The garage: a racer's named vehicles (sensors, network, action space) and the example vehicles everyone sees.

The vehicle itself is the simulator's (``sim.world.vehicle``: every rule about sensors, networks and action spaces
lives there); this module stores a racer's vehicles as ``Vehicle.to_file_dict()`` documents, names them, and turns
the simulator's ``VehicleError`` into a ``RuleViolation`` naming the garage form's field. A training job takes a
snapshot of the document (``vehicle_choice``), so editing a vehicle later changes no model.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from races.models import Vehicle
from races.services.errors import RuleViolation
from sim.world.vehicle import (
    CAMERA_SENSORS,
    LIDAR_SENSORS,
    NEURAL_NETWORKS,
    ContinuousActionSpace,
    DiscreteActionSpace,
    VehicleError,
    get_vehicle,
    list_vehicles,
)
from sim.world.vehicle import Vehicle as SimVehicle

MAX_VEHICLES_PER_RACER = 50
EXAMPLE_KEY_PREFIX = "example:"
GARAGE_KEY_PREFIX = "garage:"

SENSOR_LABELS = {
    "FRONT_FACING_CAMERA": "Front-facing camera",
    "STEREO_CAMERAS": "Stereo cameras",
    "LIDAR": "Lidar (64 rays)",
    "SECTOR_LIDAR": "Sector lidar (8 sectors)",
}
# What a simulator field is called on the garage form (and in messages for API clients).
FIELD_LABELS = {
    "name": "Name",
    "sensor": "Sensors",
    "neural_network": "Neural network",
    "action_space_type": "Action space",
    "action_space": "Action space",
    "actions": "Action table",
    "max_steering_angle": "Maximum steering angle",
    "steering_granularity": "Steering angle granularity",
    "max_speed": "Maximum speed",
    "speed_granularity": "Speed granularity",
    "steering_low": "Steering angle, lowest",
    "steering_high": "Steering angle, highest",
    "speed_low": "Speed, lowest",
    "speed_high": "Speed, highest",
}
_CONTINUOUS_FIELDS = {
    "action_space.steering_angle.low": "steering_low",
    "action_space.steering_angle.high": "steering_high",
    "action_space.steering_angle": "steering_high",
    "action_space.speed.low": "speed_low",
    "action_space.speed.high": "speed_high",
    "action_space.speed": "speed_high",
}


@dataclass(frozen=True)
class ExampleVehicle:
    """One of the vehicles shipped with the simulator (``sim/world/vehicles/*.json``): read-only, copyable."""

    slug: str
    name: str
    config: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{EXAMPLE_KEY_PREFIX}{self.slug}"


def garage_field(error_field: str) -> str:
    """The garage form's field for a ``VehicleError.field`` (``action_space[3].speed`` -> ``actions``, ...)."""
    if error_field.startswith("action_space["):
        return "actions"
    if error_field in _CONTINUOUS_FIELDS:
        return _CONTINUOUS_FIELDS[error_field]
    if error_field in FIELD_LABELS:
        return error_field
    return "action_space" if error_field.startswith("action_space") else "sensor" if error_field == "vehicle" \
        else error_field


def _violation(error: VehicleError) -> RuleViolation:
    field = garage_field(error.field)
    where = error.field if error.field.startswith("action_space[") else FIELD_LABELS.get(field, error.field)
    return RuleViolation(f"{where}: {error.detail}", field=field)


def vehicle_build(document: Mapping[str, Any], granularity: Mapping[str, Any] | None = None,
                  name: str = "") -> SimVehicle:
    """The simulator's vehicle for a vehicle document (``sensor``, ``neural_network``, ``action_space_type``,
    ``action_space``: a list of actions, the console's four inputs, or continuous ranges). ``granularity``: the four
    inputs the (possibly edited) discrete table came from, kept when the table is still exactly theirs."""
    if not isinstance(document, Mapping):
        raise RuleViolation("The vehicle must be a JSON object.", field="action_space")
    try:
        vehicle = SimVehicle.from_file_dict({**document, "name": name})
        if granularity and isinstance(vehicle.action_space, DiscreteActionSpace):
            # Same actions; the inputs are kept only if they still generate exactly this table.
            table = DiscreteActionSpace.from_table(vehicle.action_space.to_metadata(), granularity)
            vehicle = SimVehicle(vehicle.sensors, vehicle.neural_network, table, name=name)
        return vehicle
    except VehicleError as error:
        raise _violation(error) from None


def _clean_name(owner, name: str, vehicle: Vehicle | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise RuleViolation("Give the vehicle a name of 1 to 64 characters.", field="name")
    taken = Vehicle.objects.filter(owner=owner, name=name)
    if vehicle is not None:
        taken = taken.exclude(pk=vehicle.pk)
    if taken.exists():
        raise RuleViolation(f"You already have a vehicle named '{name}'.", field="name")
    return name


def _save(vehicle: Vehicle) -> Vehicle:
    try:
        with transaction.atomic():
            vehicle.save()
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise RuleViolation(f"You already have a vehicle named '{vehicle.name}'.", field="name") from None
    return vehicle


def vehicle_create(owner, name: str, document: Mapping[str, Any],
                   granularity: Mapping[str, Any] | None = None) -> Vehicle:
    """A new vehicle in ``owner``'s garage, validated by the simulator."""
    name = _clean_name(owner, name)
    if Vehicle.objects.filter(owner=owner).count() >= MAX_VEHICLES_PER_RACER:
        raise RuleViolation(f"Your garage is full ({MAX_VEHICLES_PER_RACER} vehicles): delete one first.")
    config = vehicle_build(document, granularity, name).to_file_dict()
    return _save(Vehicle(owner=owner, name=name, config=config))


def vehicle_update(vehicle: Vehicle, name: str, document: Mapping[str, Any],
                   granularity: Mapping[str, Any] | None = None) -> Vehicle:
    """Rename and rebuild a vehicle. Models trained with it keep the vehicle they were trained with."""
    name = _clean_name(vehicle.owner, name, vehicle)
    vehicle.name, vehicle.config = name, vehicle_build(document, granularity, name).to_file_dict()
    return _save(vehicle)


def vehicle_delete(vehicle: Vehicle) -> None:
    vehicle.delete()


def vehicles_of(owner) -> QuerySet[Vehicle]:
    return Vehicle.objects.filter(owner=owner)


@functools.cache
def _examples() -> tuple[ExampleVehicle, ...]:
    return tuple(ExampleVehicle(slug, vehicle.name, vehicle.to_file_dict())
                 for slug, vehicle in ((slug, get_vehicle(slug)) for slug in list_vehicles()))


def vehicle_examples() -> list[ExampleVehicle]:
    """The example vehicles (``sim/world/vehicles``), in file order."""
    return list(_examples())


def vehicle_example(slug: str) -> ExampleVehicle:
    for example in _examples():
        if example.slug == slug:
            return example
    raise RuleViolation(f"There is no example vehicle '{slug}'.", code="not_found", field="vehicle")


def vehicle_copy_example(owner, slug: str, name: str | None = None) -> Vehicle:
    """A copy of an example vehicle in ``owner``'s garage (named after it, numbered if the name is taken)."""
    example = vehicle_example(slug)
    base = (name or example.name)[:56]
    taken = set(vehicles_of(owner).values_list("name", flat=True))
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base} ({number})", number + 1
    return vehicle_create(owner, candidate, example.config)


def vehicle_choices(owner) -> list[tuple[str, str, dict[str, Any]]]:
    """``(key, label, config)`` of every vehicle a racer can train with: their garage, then the examples."""
    mine = [(f"{GARAGE_KEY_PREFIX}{v.pk}", v.name, v.config) for v in vehicles_of(owner)]
    return mine + [(e.key, f"{e.name} (example)", e.config) for e in _examples()]


def vehicle_choice(owner, key: str) -> dict[str, Any]:
    """The vehicle document (a snapshot) behind a ``vehicle_choices`` key; another racer's vehicle does not exist."""
    key = key or ""
    if key.startswith(EXAMPLE_KEY_PREFIX):
        return dict(vehicle_example(key.removeprefix(EXAMPLE_KEY_PREFIX)).config)
    if key.startswith(GARAGE_KEY_PREFIX) and key.removeprefix(GARAGE_KEY_PREFIX).isdigit():
        vehicle = vehicles_of(owner).filter(pk=int(key.removeprefix(GARAGE_KEY_PREFIX))).first()
        if vehicle is not None:
            return dict(vehicle.config)
    raise RuleViolation("Choose one of your vehicles or an example vehicle.", code="not_found", field="vehicle")


def vehicle_action_table(granularity: Mapping[str, Any]) -> list[dict[str, float]]:
    """The discrete actions the console's four inputs generate (the garage page's live table)."""
    try:
        return DiscreteActionSpace.from_granularity(**{key: granularity.get(key) for key in (
            "max_steering_angle", "steering_granularity", "max_speed", "speed_granularity")}).to_metadata()
    except VehicleError as error:
        raise _violation(error) from None


def vehicle_facts(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored vehicle document in words and numbers, for pages: sensors, network, and either the action table
    (with the inputs it was generated from, if any) or the continuous ranges."""
    vehicle = SimVehicle.from_file_dict(config)  # stored documents were validated on the way in
    space = vehicle.action_space
    facts: dict[str, Any] = {
        "sensors": [SENSOR_LABELS.get(sensor, sensor) for sensor in vehicle.sensors],
        "camera": vehicle.camera,
        "lidar": vehicle.lidar or "",
        "network": NEURAL_NETWORKS[vehicle.neural_network],
        "neural_network": vehicle.neural_network,
        "action_space_type": vehicle.action_space_type,
        "max_speed": vehicle.top_speed,
    }
    if isinstance(space, ContinuousActionSpace):
        facts["ranges"] = space.to_metadata()
        facts["actions"] = []
    else:
        facts["actions"] = space.to_metadata()
        facts["granularity"] = space.granularity.to_dict() if space.granularity is not None else None
    return facts


CAMERA_CHOICES = [(name, SENSOR_LABELS[name]) for name in CAMERA_SENSORS]
LIDAR_CHOICES = [("", "No lidar")] + [(name, SENSOR_LABELS[name]) for name in LIDAR_SENSORS]
NETWORK_CHOICES = list(NEURAL_NETWORKS.items())
