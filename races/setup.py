"""Built-in data for a new league: the built-in tracks and a demo virtual-circuit race (idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import TextIO

from django.utils import timezone

from races.models import Race
from races.services import race_create, track_install_builtins

DEMO_RACE_NAME = "Pitlane Warm-up Cup"


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
