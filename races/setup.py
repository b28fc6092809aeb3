"""Built-in data for a new league: the built-in tracks and a demo virtual-circuit race (idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import TextIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from league.services import racer_set_alias
from races.models import Race, Submission
from races.services import model_upload, race_create, submission_create, track_install_builtins, track_sim

DEMO_RACE_NAME = "Pitlane Warm-up Cup"
BASELINE_USERNAME = "pitlane-bot"
BASELINE_ALIAS = "PitlaneBot"
BASELINE_VEHICLE = "pitlane_racer"  # 3 m/s: the lab's 1 m/s car ties every entry near 23 s


def install_builtin_data(stdout: TextIO) -> None:
    tracks = {track.slug: track for track in track_install_builtins()}
    stdout.write(f"Built-in tracks: {', '.join(sorted(tracks))}.\n")
    if not Race.objects.filter(name=DEMO_RACE_NAME).exists():
        now = timezone.now()
        race_create(
            Race.Kind.VIRTUAL_CIRCUIT,
            name=DEMO_RACE_NAME,
            description="A three-lap time trial on the technical loop: best lap counts, one clean lap qualifies.",
            track=tracks["pitlane_technical"],
            ranking_method="BEST_LAP_TIME",
            total_laps=3,
            minimum_laps=1,
            off_track_penalty_s=2.0,
            collision_penalty_s=5.0,
            max_resets=None,
            time_cap_s=180,
            opens_at=now - timedelta(minutes=1),
            closes_at=now + timedelta(days=30),
            max_submissions_per_racer=50,
            submission_cooldown_s=0,
        )
        stdout.write(f"Demo race '{DEMO_RACE_NAME}' is open for 30 days.\n")
    if getattr(settings, "PITLANE_DEMO_BASELINE", True):
        install_baseline_entry(Race.objects.get(name=DEMO_RACE_NAME), stdout)


def install_baseline_entry(race: Race, stdout: TextIO) -> None:
    """Enter a model cloned from the scripted racing-line driver (made here, by our own code) so that a new league
    shows a working leaderboard at once, on a car fast enough (the garage's ``pitlane_racer``, 3 m/s) that lap
    times differ by skill. The evaluator scores it like any other submission."""
    if Submission.objects.filter(race=race, user__username=BASELINE_USERNAME).exists():
        return
    import tempfile
    from pathlib import Path

    from sim.io.archive import write_model_archive
    from sim.learn.imitation import clone_racing_line_driver
    from sim.world.vehicle import get_vehicle

    stdout.write("Training the baseline entry (a clone of the racing-line driver, about 30 s)...\n")
    vehicle = get_vehicle(BASELINE_VEHICLE)
    track = track_sim(race.track, race.direction)
    result = clone_racing_line_driver(track, vehicle, laps=race.total_laps)
    user, created = get_user_model().objects.get_or_create(username=BASELINE_USERNAME)
    if created:
        user.set_unusable_password()
        user.save()
        racer_set_alias(user, BASELINE_ALIAS)
    with tempfile.TemporaryDirectory() as scratch:
        archive = write_model_archive(Path(scratch) / "model.tar.gz", vehicle, result.network.state_dict())
        with archive.open("rb") as stream:
            model = model_upload(user, "driver-clone", stream)
    submission_create(user, race, model)
    stdout.write(f"Baseline entry submitted to '{race.name}' as {BASELINE_ALIAS}; the worker evaluates it.\n")
