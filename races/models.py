"""League domain: tracks, uploaded models, races, participants, submissions, runs and leaderboards.

Rules live in ``races.services``; models hold data, constraints and small derived properties only.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from sim.race.scoring import RankingMethod


class Track(models.Model):
    class Source(models.TextChoices):
        BUILTIN = "builtin", "Built-in"
        IMPORTED = "imported", "Imported"

    class Directions(models.TextChoices):
        """The directions a track may be raced in."""

        BOTH = "both", "Both directions"
        COUNTERCLOCKWISE = "counterclockwise", "Counterclockwise only"
        CLOCKWISE = "clockwise", "Clockwise only"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    # Imported tracks keep their DeepRacer .npy route file in storage; built-ins are rebuilt by sim.
    route_file = models.FileField(upload_to="tracks/", blank=True)
    # Some DeepRacer tracks are published for one direction only (e.g. the *_ccw / *_cw championship files).
    directions = models.CharField(max_length=20, default=Directions.BOTH, choices=Directions.choices)
    length_m = models.FloatField()
    width_m = models.FloatField()
    waypoint_count = models.PositiveIntegerField()
    # Rendered once from the geometry and kept in storage (pages and the API serve it as is).
    preview = models.FileField(upload_to="previews/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def supports(self, direction: str) -> bool:
        return self.directions in (self.Directions.BOTH, direction)


class RacerModel(models.Model):
    """A ``model.tar.gz`` a racer uploaded; only archives that passed validation are stored."""

    class Status(models.TextChoices):
        VALID = "valid", "Valid"
        DELETED = "deleted", "Deleted"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="racer_models")
    name = models.CharField(max_length=64)
    archive = models.FileField(upload_to="models/")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    metadata = models.JSONField(help_text="model_metadata.json as uploaded")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], condition=~models.Q(status="deleted"), name="races_model_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def sensors(self) -> list[str]:
        return list(self.metadata.get("sensor", []))

    @property
    def neural_network(self) -> str:
        return str(self.metadata.get("neural_network", ""))


def new_objects_seed() -> int:
    return secrets.randbelow(2**31)


class RacePhase(models.TextChoices):
    """Where a race stands in its schedule (``Race.phase``). Members are strings, so templates, URLs and JSON
    that compare with or carry ``"open"`` keep working; the order is the order race lists show them in."""

    OPEN = "open", "Open"
    UPCOMING = "upcoming", "Upcoming"
    CLOSED = "closed", "Closed"


class Race(models.Model):
    class Kind(models.TextChoices):
        VIRTUAL_CIRCUIT = "virtual_circuit", "Virtual circuit"
        COMMUNITY = "community", "Community race"

    class RaceType(models.TextChoices):
        TIME_TRIAL = "TIME_TRIAL", "Time trial"
        OBJECT_AVOIDANCE = "OBJECT_AVOIDANCE", "Object avoidance"
        HEAD_TO_BOT = "HEAD_TO_BOT", "Head to bot"
        HEAD_TO_HEAD = "HEAD_TO_HEAD", "Head to head"

    class Direction(models.TextChoices):
        COUNTERCLOCKWISE = "counterclockwise", "Counterclockwise"
        CLOCKWISE = "clockwise", "Clockwise"

    class RankingMethodChoice(models.TextChoices):
        BEST_LAP_TIME = RankingMethod.BEST_LAP_TIME.value, RankingMethod.BEST_LAP_TIME.label
        AVG_LAP_TIME = RankingMethod.AVG_LAP_TIME.value, RankingMethod.AVG_LAP_TIME.label
        TOTAL_TIME = RankingMethod.TOTAL_TIME.value, RankingMethod.TOTAL_TIME.label

    class BoxPlacement(models.TextChoices):
        EVEN = "even", "Fixed: evenly spaced, alternating lanes"
        CUSTOM = "custom", "Fixed: at the positions given"
        RANDOM = "random", "Random: drawn once for this race"

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    organiser = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="organised_races"
    )
    race_type = models.CharField(max_length=20, choices=RaceType.choices, default=RaceType.TIME_TRIAL)
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="races")
    direction = models.CharField(max_length=20, choices=Direction.choices, default=Direction.COUNTERCLOCKWISE)
    ranking_method = models.CharField(
        max_length=20, choices=RankingMethodChoice.choices, default=RankingMethod.BEST_LAP_TIME.value
    )
    total_laps = models.PositiveSmallIntegerField(default=3)
    minimum_laps = models.PositiveSmallIntegerField(default=1)
    off_track_penalty_s = models.FloatField(default=2.0)
    collision_penalty_s = models.FloatField(default=5.0)
    max_resets = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means unlimited")
    time_cap_s = models.PositiveIntegerField(default=180)
    # Settings of one race type only (empty for the others); rules in races.services.race_settings.
    box_count = models.PositiveSmallIntegerField("number of boxes", null=True, blank=True)
    box_placement = models.CharField("box placement", max_length=10, choices=BoxPlacement.choices, blank=True)
    box_positions = models.JSONField("box positions", null=True, blank=True,
                                     help_text='Custom placement: [{"progress": percent of the lap, "lane": '
                                               '"inner" | "outer"}, ...]')
    bot_count = models.PositiveSmallIntegerField("number of bot cars", null=True, blank=True)
    bot_speed_mps = models.FloatField("bot speed (m/s)", null=True, blank=True)
    bot_lane_change_s = models.FloatField("bot lane change every (s)", null=True, blank=True,
                                          help_text="Empty: the bots keep their lane")
    bracket_size = models.PositiveSmallIntegerField("bracket size", null=True, blank=True,
                                                    help_text="Head to head: the top 2, 4, 8 or 16 qualifiers race "
                                                              "the knockout bracket after the race closes")
    # Random box positions are drawn from this, so every evaluation of the race sees the same boxes.
    objects_seed = models.PositiveIntegerField(default=new_objects_seed, editable=False)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    closed_early_at = models.DateTimeField(null=True, blank=True)
    max_submissions_per_racer = models.PositiveIntegerField(default=50)
    submission_cooldown_s = models.PositiveIntegerField(default=0)
    # The season whose standings this race counts for (none: a race on its own).
    season = models.ForeignKey("Season", on_delete=models.SET_NULL, null=True, blank=True, related_name="races")
    invite_code = models.CharField(max_length=32, blank=True, db_index=True)
    # Bumped by every reset: shown to the organiser so they can tell which link they shared.
    invite_code_version = models.PositiveIntegerField(default=0)
    invite_code_created_at = models.DateTimeField(null=True, blank=True)
    # Bumped whenever a leaderboard row or a submission of this race is added or removed (races.signals):
    # the leaderboard caches are keyed on it, so reading the race tells whether they are current.
    leaderboard_version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")), name="races_race_window",
                violation_error_message="The race must close after it opens.",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_laps__lte=models.F("total_laps")), name="races_race_minimum_laps",
                violation_error_message="Minimum laps must be between 1 and the total laps.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_community(self) -> bool:
        return self.kind == self.Kind.COMMUNITY

    @property
    def effective_close(self):
        return min(self.closes_at, self.closed_early_at) if self.closed_early_at else self.closes_at

    def phase(self, now=None) -> RacePhase:
        """``upcoming``, ``open`` or ``closed``."""
        now = now or timezone.now()
        if self.closed_early_at is not None and now >= self.closed_early_at:
            return RacePhase.CLOSED  # also a race its organiser closed before it ever opened
        if now < self.opens_at:
            return RacePhase.UPCOMING
        return RacePhase.OPEN if now < self.closes_at else RacePhase.CLOSED


def default_points_table() -> list[int]:
    """Points by finishing position, 1st first. DeepRacer's own formula is not public: this is the widely
    documented Formula 1 table (the top ten score). Each season keeps its own copy, editable."""
    return [25, 18, 15, 12, 10, 8, 6, 4, 2, 1]


class Season(models.Model):
    """A league season: races (any type) whose finishes earn points, standings, and a final for the top racers.

    A virtual-circuit season is public and run by staff; a community season runs over its organiser's private
    races and is seen by their members only. Rules in ``races.services.seasons``.
    """

    FINAL_SIZES = (2, 4, 8, 16)

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    kind = models.CharField(max_length=20, choices=Race.Kind.choices)
    organiser = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="organised_seasons")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    points_table = models.JSONField("points table", default=default_points_table,
                                    help_text="Points for 1st, 2nd, 3rd... place; places beyond the list score 0.")
    best_results = models.PositiveSmallIntegerField(
        "results that count", null=True, blank=True,
        help_text="Only each racer's best N race results count; empty: every result counts.")
    final_size = models.PositiveSmallIntegerField(
        "finalists", null=True, blank=True, choices=[(n, f"Top {n}") for n in FINAL_SIZES],
        help_text="The top N of the standings race a head-to-head knockout final when the season ends; "
                  "empty: no final.")
    final_track = models.ForeignKey(Track, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                    help_text="Empty: the track of the season's last race.")
    # Set once, when the season has ended and its results were final (with or without a final race).
    finished_at = models.DateTimeField(null=True, blank=True)
    final_race = models.OneToOneField(Race, on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="final_of_season")
    final_note = models.CharField(max_length=200, blank=True, help_text="Why there is no final, when there is none")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="races_season_window",
                violation_error_message="The season must end after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_community(self) -> bool:
        return self.kind == Race.Kind.COMMUNITY


class RaceParticipant(models.Model):
    """Membership of a community race (virtual-circuit races need none)."""

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="race_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["race", "user"], name="races_participant_unique")]


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"
        DISQUALIFIED = "disqualified", "Disqualified"

    EVALUATION_KIND = "submission"  # how the evaluator names a submission's work (races/evaluation_targets.py)

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="submissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    model = models.ForeignKey(RacerModel, on_delete=models.PROTECT, related_name="submissions")
    # 1 for the racer's first submission to this race, 2 for the second... (what "3 of 50" counts).
    sequence = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    failure_reason = models.TextField(blank=True)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["race", "user", "submitted_at"])]
        constraints = [
            models.UniqueConstraint(fields=["race", "user", "sequence"], name="races_submission_sequence_unique")
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} of {self.model} to {self.race}"

    @property
    def attempts(self) -> models.QuerySet:
        """Its evaluation attempts (the evaluator names them by kind and id, not by a foreign key)."""
        from evaluator.engine import attempts_of

        return attempts_of(self.EVALUATION_KIND, self.pk)


class SubmissionEvent(models.Model):
    """Status history of a submission, for the racer and the admin."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=Submission.Status.choices)
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]


class Run(models.Model):
    """The recorded result of a submission's evaluation: exactly one per submission."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="run")
    laps = models.JSONField()
    score = models.JSONField()
    qualified = models.BooleanField()
    ranking_score_ms = models.PositiveBigIntegerField(null=True)
    trace = models.JSONField(help_text="compact per-step trace for the replay")
    simtrace = models.FileField(upload_to="simtraces/", blank=True)
    attempt_number = models.PositiveSmallIntegerField()
    duration_s = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)


class LeaderboardEntry(models.Model):
    """One row per racer per race: the racer's best qualifying submission (strictly better replaces it)."""

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="leaderboard")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leaderboard_entries")
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    ranking_score_ms = models.PositiveBigIntegerField()
    best_lap_ms = models.PositiveBigIntegerField(null=True)
    average_lap_ms = models.PositiveBigIntegerField(null=True)
    total_time_ms = models.PositiveBigIntegerField(null=True)
    laps_completed = models.PositiveSmallIntegerField()
    off_track_count = models.PositiveIntegerField()
    reset_count = models.PositiveIntegerField()
    crash_count = models.PositiveIntegerField()
    # Ties are broken by the earlier submission of the scoring run.
    submitted_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ranking_score_ms", "submitted_at"]
        verbose_name_plural = "leaderboard entries"
        constraints = [models.UniqueConstraint(fields=["race", "user"], name="races_leaderboard_one_row_per_racer")]
        indexes = [models.Index(fields=["race", "ranking_score_ms", "submitted_at"])]


class BracketMatch(models.Model):
    """One match of a head-to-head race's knockout bracket: two racers' models on the track together.

    Car A is the higher seed (it starts the tie-break ahead). Each racer races with the submission of their
    leaderboard row when the bracket started. A first-round match against nobody is a bye: decided at once.
    Rules in ``races.services.brackets``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DECIDED = "decided", "Decided"
        BYE = "bye", "Bye"
        FAILED = "failed", "Failed"

    EVALUATION_KIND = "match"  # how the evaluator names a match's work (races/evaluation_targets.py)

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="bracket_matches")
    round = models.PositiveSmallIntegerField()  # 1 = first round; the last round is the final
    slot = models.PositiveSmallIntegerField()  # 0-based position within the round, top to bottom
    racer_a = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    racer_b = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", null=True,
                                blank=True)
    seed_a = models.PositiveSmallIntegerField()
    seed_b = models.PositiveSmallIntegerField(null=True, blank=True)
    submission_a = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    submission_b = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    winner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", null=True,
                               blank=True)
    result = models.JSONField(null=True, blank=True, help_text="outcome, both cars' laps and traces")
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["race", "round", "slot"]
        verbose_name_plural = "bracket matches"
        constraints = [
            models.UniqueConstraint(fields=["race", "round", "slot"], name="races_bracket_match_slot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.race} round {self.round} match {self.slot + 1}"

    @property
    def attempts(self) -> models.QuerySet:
        """Its evaluation attempts (the evaluator names them by kind and id, not by a foreign key)."""
        from evaluator.engine import attempts_of

        return attempts_of(self.EVALUATION_KIND, self.pk)


class ModelEvaluation(models.Model):
    """A racer's evaluation of one of their models on any track, outside every race (the console's "Evaluate"):
    the lap table, trajectory, replay and simtrace are the racer's alone and nothing reaches a leaderboard.

    Its rules are those of a race with these settings and the league's defaults for the rest
    (``races.services.model_evaluations.model_evaluation_race``), so it is evaluated, scored and drawn exactly as a
    submission to such a race would be."""

    EVALUATION_KIND = "model_evaluation"  # how the evaluator names its work (races/evaluation_targets.py)
    MAX_LAPS = 10

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SCORED = "scored", "Done"
        FAILED = "failed", "Failed"

    model = models.ForeignKey(RacerModel, on_delete=models.CASCADE, related_name="evaluations")
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=20, choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)
    race_type = models.CharField(max_length=20, choices=Race.RaceType.choices, default=Race.RaceType.TIME_TRIAL)
    total_laps = models.PositiveSmallIntegerField(default=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    failure_reason = models.TextField(blank=True)
    laps = models.JSONField(null=True, blank=True)
    score = models.JSONField(null=True, blank=True)
    trace = models.JSONField(null=True, blank=True, help_text="compact per-step trace for the replay")
    simtrace = models.FileField(upload_to="simtraces/", blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Evaluation {self.pk} of {self.model} on {self.track}"


class Vehicle(models.Model):
    """A racer's named car in the garage: sensors, network and action space, stored as the simulator's vehicle
    document (``sim.world.vehicle.Vehicle.to_file_dict()``). Rules in ``races.services.garage``."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vehicles")
    name = models.CharField(max_length=64)
    config = models.JSONField(help_text="sim.world.vehicle.Vehicle.to_file_dict()")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="races_vehicle_name_unique",
                                    violation_error_message="You already have a vehicle with this name."),
        ]

    def __str__(self) -> str:
        return self.name


class TrainingJob(models.Model):
    """A racer's training run in the browser: what they asked for (snapshots: later garage edits don't matter),
    where it stands, and the model it made. Run by the evaluator engine (kind "training",
    ``races/training_target.py``); rules in ``races.services.training``."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        STARTING = "starting", "Starting"
        TRAINING = "training", "Training"
        STOPPING = "stopping", "Stopping"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class BestBy(models.TextChoices):
        PROGRESS = "progress", "Best evaluation progress"
        REWARD = "reward", "Best average reward"

    EVALUATION_KIND = "training"  # how the evaluator names a training job's work
    ACTIVE = (Status.QUEUED, Status.STARTING, Status.TRAINING, Status.STOPPING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_jobs")
    name = models.CharField(max_length=64, help_text="the resulting model's name")
    description = models.TextField(blank=True, max_length=2000)
    tracks = models.ManyToManyField(Track, through="TrainingJobTrack", related_name="+")
    direction = models.CharField(max_length=20, choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)
    race_type = models.CharField(max_length=20, choices=Race.RaceType.choices, default=Race.RaceType.TIME_TRIAL)
    vehicle = models.JSONField(help_text="sim.world.vehicle.Vehicle.to_file_dict(), as chosen")
    reward_function_source = models.TextField()
    hyperparameters = models.JSONField(help_text="sim.learn.hyperparameters.Hyperparameters.to_dict()")
    max_minutes = models.FloatField(help_text="the stop condition: minutes of training at most")
    # An extra stop condition (the model's total episodes), for the admin and tests; the racer sets minutes.
    max_episodes = models.PositiveIntegerField(null=True, blank=True)
    best_by = models.CharField(max_length=16, choices=BestBy.choices, default=BestBy.PROGRESS)
    evaluation_episodes = models.PositiveSmallIntegerField(default=5)
    max_episode_steps = models.PositiveIntegerField(default=1500)
    seed = models.PositiveIntegerField(default=0)
    cloned_from = models.ForeignKey(RacerModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    warm_start = models.BooleanField(default=False, help_text="imitate the racing-line driver before PPO")
    submit_to = models.ForeignKey(Race, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submission = models.ForeignKey(Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submit_note = models.TextField(blank=True, help_text="why the auto-submit did not happen, if it did not")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    failure_reason = models.TextField(blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.CharField(max_length=32, blank=True, help_text="what ended the run (sim.learn.budget)")
    # Seconds of the budget spent, summed over attempts once each: earlier attempts' (frozen when the next one
    # starts) plus the current attempt's clock as last reported.
    trained_seconds = models.FloatField(default=0.0)
    seconds_before_attempt = models.FloatField(default=0.0)
    attempt_number = models.PositiveSmallIntegerField(default=0, help_text="the attempt whose progress counts")
    iterations = models.PositiveIntegerField(default=0)
    episodes = models.PositiveIntegerField(default=0)
    env_steps = models.PositiveBigIntegerField(default=0)
    best_iteration = models.PositiveIntegerField(null=True, blank=True)
    live = models.JSONField(default=dict, blank=True, help_text="the run right now (metrics/live.json, checked)")
    curve = models.JSONField(default=list, blank=True, help_text="per iteration: the reward graph's values")
    trajectories = models.JSONField(default=dict, blank=True, help_text="latest evaluation episodes' paths")
    # What the first evaluation car's camera saw in iteration ``camera_iteration`` (an animated GIF made here from
    # the run's checked frames, sim.io.camera_film); empty until an iteration with evaluation episodes.
    camera_film = models.FileField(upload_to="training/films/", blank=True)
    camera_iteration = models.PositiveIntegerField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    # The model folder as last stored (relative path -> storage name): what a re-leased attempt resumes from.
    stored_files = models.JSONField(default=dict, blank=True)
    checkpoint_iteration = models.PositiveIntegerField(null=True, blank=True, help_text="latest stored checkpoint")
    model = models.ForeignKey(RacerModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"Training {self.pk}: {self.name}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def attempts(self) -> models.QuerySet:
        from evaluator.engine import attempts_of

        return attempts_of(self.EVALUATION_KIND, self.pk)


class TrainingJobTrack(models.Model):
    """The tracks of a training job, in order (the first is the main track)."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="track_rows")
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="races_training_track_position")]


class TrainingQuota(models.Model):
    """The training quotas the admin sets: one row (``races.services.training.training_quota``)."""

    max_concurrent_per_racer = models.PositiveSmallIntegerField(
        "training jobs per racer at once", default=1, help_text="queued or running")
    minutes_per_racer_per_day = models.PositiveIntegerField(
        "training minutes per racer per day", default=120,
        help_text="per calendar day of the server's time zone; a running job counts its whole stop condition")
    max_concurrent_total = models.PositiveSmallIntegerField(
        "training jobs running at once (whole league)", default=2,
        help_text="more wait in the queue; the training queue's worker processes are a limit too")

    class Meta:
        verbose_name = "training quota"
        verbose_name_plural = "training quotas"

    def __str__(self) -> str:
        return "Training quotas"
