"""Factories for league tests: racers with aliases, built-in tracks, races and models made by our own code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from league.services import racer_set_alias
from races.models import Race, RacerModel
from races.services import race_create, track_install_builtins

# The smallest network keeps archives small (~9 MB) and fast to write and validate in tests.
TEST_NETWORK = "DEEP_CONVOLUTIONAL_NETWORK_DEEP"


@pytest.fixture
def make_racer(db):
    counter = iter(range(1, 10_000))

    def make(alias: str | None = None, **fields):
        n = next(counter)
        user = get_user_model().objects.create_user(username=fields.pop("username", f"racer{n}"), password="pw-12345!")
        if alias is not False:
            racer_set_alias(user, alias or f"Racer{n}")
        return user

    return make


@pytest.fixture
def technical_track(db):
    return {t.slug: t for t in track_install_builtins()}["pitlane_technical"]


@pytest.fixture
def oval_track(db):
    return {t.slug: t for t in track_install_builtins()}["pitlane_oval"]


@pytest.fixture
def make_race(technical_track):
    def make(kind: str = Race.Kind.VIRTUAL_CIRCUIT, organiser=None, **values):
        now = timezone.now()
        settings = {
            "name": "Test Cup",
            "track": technical_track,
            "opens_at": now - timedelta(hours=1),
            "closes_at": now + timedelta(days=7),
            "total_laps": 3,
            "minimum_laps": 1,
        } | values
        return race_create(kind, organiser=organiser, **settings)

    return make


@pytest.fixture(scope="session")
def archive_bytes(tmp_path_factory):
    """A valid model.tar.gz built with the project's own writer (fresh weights)."""
    from sim.io.archive import write_model_archive
    from sim.learn.networks import build_actor_critic
    from sim.world.vehicle import DiscreteActionSpace, Vehicle

    vehicle = Vehicle(
        sensors=("FRONT_FACING_CAMERA",),
        neural_network=TEST_NETWORK,
        action_space=DiscreteActionSpace.from_granularity(30, 5, 1, 3),
    )
    network = build_actor_critic(vehicle, seed=0)
    path = write_model_archive(tmp_path_factory.mktemp("archive") / "model.tar.gz", vehicle, network.state_dict())
    return path.read_bytes()


@pytest.fixture
def make_model(db):
    """A stored model row (for rules that do not read the archive)."""

    def make(owner, name: str = "my-model"):
        model = RacerModel(owner=owner, name=name, sha256="0" * 64, size_bytes=3, metadata={"sensor": []})
        model.archive.save(f"{owner.pk}/{name}.tar.gz", ContentFile(b"abc"), save=False)
        model.save()
        return model

    return make


PROVENANCE_REWARD = '''def reward_function(params):
    """Stay near the centre <line>."""
    # 1.0 on the centre line, less further out
    distance = params["distance_from_center"] / (0.5 * params["track_width"])
    return float(max(1e-3, 1.0 - distance))
'''


@pytest.fixture(scope="session")
def provenance_archive(tmp_path_factory) -> bytes:
    """A valid archive that also holds what training packs: the reward function, hyperparameters.json and the
    metrics (a 25-minute run), written by our own writer."""
    import json

    from sim.io.archive import write_model_archive
    from sim.learn.hyperparameters import Hyperparameters
    from sim.learn.networks import build_actor_critic
    from sim.world.vehicle import DiscreteActionSpace, Vehicle

    vehicle = Vehicle(sensors=("FRONT_FACING_CAMERA",), neural_network=TEST_NETWORK,
                      action_space=DiscreteActionSpace.from_granularity(30, 3, 1, 2))
    iterations = {"iterations": [{"iteration": 0, "elapsed_seconds": 700.5},
                                 {"iteration": 1, "elapsed_seconds": 1500.2}]}
    path = write_model_archive(
        tmp_path_factory.mktemp("provenance") / "model.tar.gz", vehicle,
        build_actor_critic(vehicle, seed=1).state_dict(),
        reward_function_source=PROVENANCE_REWARD, hyperparameters=Hyperparameters().to_deepracer_json(),
        training_metrics={"iterations.json": json.dumps(iterations)},
    )
    return path.read_bytes()


@pytest.fixture
def staff(make_racer):
    """A staff member (schedules races, manages public seasons)."""
    user = make_racer("Marshal")
    user.is_staff = True
    user.save()
    return user
