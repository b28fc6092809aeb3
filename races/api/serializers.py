"""API representations. Rules beyond field types are checked by ``races.services`` (one place)."""

from __future__ import annotations

from datetime import datetime

from django.core.validators import slug_re
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from races.models import ModelEvaluation, Race, RaceParticipant, RacerModel, Season, Submission, Track, Vehicle
from races.services import race_invite_path
from races.services.garage import SENSOR_LABELS
from races.services.race_settings import DATE_OUT_OF_RANGE, EARLIEST_YEAR, LATEST_YEAR
from sim.world.vehicle import MAX_SPEED, MIN_SPEED, NEURAL_NETWORKS

# The race types a model drives alone (training, a model's own evaluation): one enum in the API schema.
SOLO_RACE_TYPES = [(value, label) for value, label in Race.RaceType.choices if value != Race.RaceType.HEAD_TO_HEAD]


class TrackSerializer(serializers.ModelSerializer):
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Track
        fields = ["slug", "title", "description", "source", "directions", "length_m", "width_m", "waypoint_count",
                  "preview_url"]

    def get_preview_url(self, track: Track) -> str:
        return reverse("races:track_preview", kwargs={"slug": track.slug})


class RacerModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = RacerModel
        fields = ["id", "name", "sha256", "size_bytes", "metadata", "status", "created_at"]


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.CharField(min_length=1, max_length=64)
    archive = serializers.FileField()


# ISO 8601 with a year in range, as the schema's pattern (OpenAPI 3.0 has no bounds for date-time strings).
_BOUNDED_DATE_TIME = (
    r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)


@extend_schema_field({"type": "string", "format": "date-time", "pattern": _BOUNDED_DATE_TIME})
class BoundedDateTimeField(serializers.DateTimeField):
    """A league date (``race_settings.EARLIEST_YEAR`` to ``LATEST_YEAR``), refused here already so the schema and
    the field-level error agree; the services check it again for the forms and the admin."""

    def to_internal_value(self, value) -> datetime:
        moment = super().to_internal_value(value)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise serializers.ValidationError(DATE_OUT_OF_RANGE)
        return moment


class SlugLookupField(serializers.SlugRelatedField):
    """A slug lookup that refuses what cannot be a slug before asking the database (PostgreSQL refuses a NUL byte
    in a query with an error, which would be a 500)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not slug_re.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class RaceSerializer(serializers.ModelSerializer):
    track = SlugLookupField(slug_field="slug", queryset=Track.objects.all())
    opens_at = BoundedDateTimeField()
    closes_at = BoundedDateTimeField()
    phase = serializers.SerializerMethodField()
    organiser = serializers.SerializerMethodField()
    season = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                          help_text="The season this race earns points in (null: none)")

    class Meta:
        model = Race
        fields = [
            "slug", "name", "description", "kind", "organiser", "race_type", "track", "direction",
            "ranking_method", "total_laps", "minimum_laps", "off_track_penalty_s", "collision_penalty_s",
            "max_resets", "time_cap_s", "opens_at", "closes_at", "closed_early_at", "max_submissions_per_racer",
            "submission_cooldown_s", "box_count", "box_placement", "box_positions", "bot_count", "bot_speed_mps",
            "bot_lane_change_s", "bracket_size", "phase", "season",
        ]
        read_only_fields = ["slug", "kind", "organiser", "closed_early_at", "phase", "season"]
        # Only the race type's own settings apply; the services fill its defaults and refuse the others'.
        extra_kwargs = {
            "name": {"min_length": 1},
            "box_positions": {"help_text": 'Custom placement: [{"progress": 25, "lane": "inner"}, ...] '
                                           "(percent of the lap in the direction raced)"},
        }

    def get_phase(self, race: Race) -> str:
        return race.phase()

    def get_organiser(self, race: Race) -> str | None:
        racer = getattr(race.organiser, "racer", None) if race.organiser else None
        return racer.alias if racer else None

    def to_representation(self, race: Race) -> dict:
        data = super().to_representation(race)
        request = self.context.get("request")
        if race.is_community and request is not None and race.organiser_id == request.user.pk:
            data |= InviteCodeSerializer(race, context=self.context).data  # only the organiser sees the code
        return data


class InviteCodeSerializer(serializers.Serializer):
    invite_code = serializers.CharField()
    invite_url = serializers.SerializerMethodField()
    invite_code_version = serializers.IntegerField()

    def get_invite_url(self, race: Race) -> str:
        request = self.context.get("request")
        path = race_invite_path(race)
        return request.build_absolute_uri(path) if request is not None else path


class ParticipantSerializer(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id")
    racer = serializers.SerializerMethodField()

    class Meta:
        model = RaceParticipant
        fields = ["user", "racer", "joined_at"]

    def get_racer(self, participant: RaceParticipant) -> str:
        return getattr(getattr(participant.user, "racer", None), "alias", "")


class JoinSerializer(serializers.Serializer):
    code = serializers.CharField(min_length=1, max_length=64)


class SubmissionCreateSerializer(serializers.Serializer):
    race = serializers.SlugField(min_length=1)
    model = serializers.IntegerField(min_value=1)


class LapSerializer(serializers.Serializer):
    trial = serializers.IntegerField()
    elapsed_time_in_milliseconds = serializers.IntegerField()
    time = serializers.CharField()
    completion_percentage = serializers.FloatField()
    off_track_count = serializers.IntegerField()
    crash_count = serializers.IntegerField()
    reset_count = serializers.IntegerField()
    penalty_s = serializers.FloatField()
    episode_status = serializers.CharField()


class RunSerializer(serializers.Serializer):
    qualified = serializers.BooleanField()
    ranking_score_ms = serializers.IntegerField(allow_null=True)
    ranking_score = serializers.CharField()
    score = serializers.DictField()
    laps = LapSerializer(many=True)
    trace = serializers.DictField(required=False, help_text="t, x, y, yaw, speed, status per step")
    boxes = serializers.ListField(required=False, help_text="with the trace: corners [[x, y] * 4] of each obstacle box")
    duration_s = serializers.FloatField(help_text="seconds from the job reaching the sandbox to its result")


class SubmissionBadgeSerializer(serializers.Serializer):
    css = serializers.CharField(help_text="the status, or not-qualified for a scored run that did not qualify")
    label = serializers.CharField(help_text="the status in words, e.g. Not qualified")


class SubmissionSerializer(serializers.Serializer):
    """Documentation of ``races.services.presenters.submission_summary`` (the one place that builds it)."""

    id = serializers.IntegerField()
    race = serializers.SlugField()
    racer = serializers.CharField()
    model = serializers.CharField()
    sequence = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Submission.Status.values)
    queue_position = serializers.IntegerField(allow_null=True, help_text="1 = next; null unless queued")
    failure_reason = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    run = RunSerializer(allow_null=True)
    badge = SubmissionBadgeSerializer()


class ModelEvaluationCreateSerializer(serializers.Serializer):
    track = serializers.SlugField(min_length=1, help_text="any track of the league (GET /api/v1/tracks/)")
    direction = serializers.ChoiceField(choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)
    race_type = serializers.ChoiceField(choices=SOLO_RACE_TYPES, default=Race.RaceType.TIME_TRIAL)
    total_laps = serializers.IntegerField(min_value=1, max_value=ModelEvaluation.MAX_LAPS, default=3)


class EvaluationRunSerializer(serializers.Serializer):
    score = serializers.DictField(help_text="completed laps, best lap, average, counts (sim.race.scoring.RunScore)")
    best_lap = serializers.CharField(allow_null=True)
    laps = LapSerializer(many=True)
    duration_s = serializers.FloatField(help_text="seconds from the job reaching the sandbox to its result")
    trace = serializers.DictField(required=False, help_text="the replay trace: t, x, y, yaw, speed, status lists")
    boxes = serializers.ListField(required=False, help_text="corners of the obstacle boxes")


class ModelEvaluationSerializer(serializers.Serializer):
    """Documentation of ``races.services.model_evaluations.model_evaluation_summary`` (the one place that builds it)."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    model_id = serializers.IntegerField()
    track = serializers.SlugField()
    direction = serializers.ChoiceField(choices=Race.Direction.choices)
    race_type = serializers.CharField()
    total_laps = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ModelEvaluation.Status.values)
    queue_position = serializers.IntegerField(allow_null=True, help_text="1 = next; null unless queued")
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    run = EvaluationRunSerializer(allow_null=True)


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    racer = serializers.CharField()
    time = serializers.CharField()
    time_ms = serializers.IntegerField()
    gap_ms = serializers.IntegerField()
    gap = serializers.CharField()
    ideal_gap_ms = serializers.IntegerField(allow_null=True, help_text="behind the track's ideal lap (the reference "
                                            "line; every lap's for total-time races); null where there is none")
    ideal_gap = serializers.CharField(help_text="the same as text, e.g. +1.234")
    best_lap_ms = serializers.IntegerField(allow_null=True)
    off_track_count = serializers.IntegerField()
    reset_count = serializers.IntegerField()
    crash_count = serializers.IntegerField()
    laps = serializers.IntegerField()
    submission_count = serializers.IntegerField()
    submission_id = serializers.IntegerField()
    submitted_at = serializers.DateTimeField()


class SeasonSerializer(serializers.ModelSerializer):
    organiser = serializers.SerializerMethodField()
    races = serializers.SerializerMethodField()
    final_race = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                              help_text="The head-to-head final, once the season has finished")
    final_track = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Season
        fields = ["slug", "name", "description", "kind", "organiser", "starts_at", "ends_at", "points_table",
                  "best_results", "final_size", "final_track", "races", "finished_at", "final_race", "final_note"]
        read_only_fields = fields
        extra_kwargs = {"points_table": {"help_text": "Points for 1st, 2nd, 3rd... place"}}

    def get_organiser(self, season: Season) -> str | None:
        racer = getattr(season.organiser, "racer", None) if season.organiser else None
        return racer.alias if racer else None

    def get_races(self, season: Season) -> list[str]:
        """The slugs of the races that count, in calendar order."""
        return list(season.races.order_by("opens_at", "pk").values_list("slug", flat=True))


class SeasonResultSerializer(serializers.Serializer):
    race = serializers.SlugField()
    position = serializers.IntegerField(help_text="Equal times share the position")
    points = serializers.FloatField()
    counted = serializers.BooleanField(help_text="False: beyond the season's best results")
    time = serializers.CharField()
    time_ms = serializers.IntegerField()
    provisional = serializers.BooleanField()


class StandingsRowSerializer(serializers.Serializer):
    """Documentation of ``races.services.seasons.season_standings_table`` (the one place that builds it)."""

    rank = serializers.IntegerField()
    racer = serializers.CharField()
    points = serializers.FloatField()
    races_entered = serializers.IntegerField()
    best_finish = serializers.IntegerField(allow_null=True)
    provisional = serializers.BooleanField()
    results = serializers.ListField(child=SeasonResultSerializer(allow_null=True),
                                    help_text="One per race of the season, in calendar order (null: no result)")


class StandingsSerializer(serializers.Serializer):
    season = serializers.SlugField()
    provisional = serializers.BooleanField(help_text="A race is open or still being evaluated, or the season has "
                                                     "not finished")
    races = serializers.ListField(child=serializers.SlugField())
    rows = StandingsRowSerializer(many=True)


class ProfileSeasonSerializer(serializers.Serializer):
    season = serializers.SlugField()
    name = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True)
    of = serializers.IntegerField(help_text="Racers in the standings")
    points = serializers.FloatField()
    provisional = serializers.BooleanField()
    finalist = serializers.BooleanField()


class ProfileRaceSerializer(serializers.Serializer):
    race = serializers.SlugField()
    name = serializers.CharField()
    phase = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True)
    time = serializers.CharField(allow_null=True)
    best_lap = serializers.CharField(allow_null=True)
    submissions = serializers.IntegerField()


class ProfileModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    network = serializers.CharField()
    sensors = serializers.ListField(child=serializers.CharField())
    races = serializers.IntegerField()
    deleted = serializers.BooleanField()


class RacerProfileSerializer(serializers.Serializer):
    """Public information only: what the viewer may see (private races and seasons stay hidden)."""

    alias = serializers.CharField()
    since = serializers.DateTimeField()
    seasons = ProfileSeasonSerializer(many=True)
    races = ProfileRaceSerializer(many=True)
    models = ProfileModelSerializer(many=True)


# --- the garage -----------------------------------------------------------------------------------------------
class VehicleSerializer(serializers.ModelSerializer):
    config = serializers.JSONField(read_only=True, help_text="The vehicle document (sim.world.vehicle's vehicle "
                                                              "file): name, sensor, neural_network, "
                                                              "action_space_type, action_space, ...")

    class Meta:
        model = Vehicle
        fields = ["id", "name", "config", "created_at", "updated_at"]


class VehicleWriteSerializer(serializers.Serializer):
    """A vehicle as a racer sends it; the simulator's rules are checked by ``races.services.garage``."""

    name = serializers.CharField(min_length=1, max_length=64)
    sensor = serializers.ListField(child=serializers.ChoiceField(choices=list(SENSOR_LABELS)), min_length=1,
                                   max_length=2, help_text="One camera, and at most one lidar.")
    neural_network = serializers.ChoiceField(choices=list(NEURAL_NETWORKS))
    action_space_type = serializers.ChoiceField(choices=["discrete", "continuous"])
    action_space = serializers.JSONField(
        help_text='Discrete: a list of {"steering_angle", "speed"}, or the console’s four inputs '
                  '{"max_steering_angle", "steering_granularity", "max_speed", "speed_granularity"}. Continuous: '
                  '{"steering_angle": {"low", "high"}, "speed": {"low", "high"}}.')

    def document(self) -> dict:
        data = self.validated_data
        return {key: data[key] for key in ("sensor", "neural_network", "action_space_type", "action_space")}


class ExampleVehicleSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    config = serializers.JSONField()


# --- reward functions -----------------------------------------------------------------------------------------
class RewardCheckRequestSerializer(serializers.Serializer):
    source = serializers.CharField(trim_whitespace=False, allow_blank=True,
                                   help_text="The reward function's Python source (at most 64 kB).")
    track = serializers.SlugRelatedField(slug_field="slug", queryset=Track.objects.all(),
                                         help_text="The track to validate on (its slug).")
    direction = serializers.ChoiceField(choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)


class RewardSampleSerializer(serializers.Serializer):
    car = serializers.CharField(help_text="The synthetic car: start, mid-lap, off track, near finish.")
    reward = serializers.FloatField()


class RewardCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    message = serializers.CharField(help_text="What is wrong (with the line and the params), or that it is valid.")
    line = serializers.IntegerField(allow_null=True, help_text="The line of the reward function the error is on.")
    car = serializers.CharField(allow_null=True, help_text="The synthetic car the function failed on.")
    samples = RewardSampleSerializer(many=True, help_text="Each synthetic car's reward, when valid.")


class RacingLineRequestSerializer(serializers.Serializer):
    track = serializers.SlugRelatedField(slug_field="slug", queryset=Track.objects.all(),
                                         help_text="The track whose racing line to paste (its slug).")
    direction = serializers.ChoiceField(choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)
    max_speed = serializers.FloatField(min_value=MIN_SPEED, max_value=MAX_SPEED,
                                       help_text="The car's top speed in m/s: no target speed exceeds it.")


class RacingLineRewardSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="The community racing-line reward function with this track's line.")
    track = serializers.CharField(help_text="The track's slug.")
    direction = serializers.CharField()
    max_speed = serializers.FloatField()


# --- training ---------------------------------------------------------------------------------------------------
class TrainingCreateSerializer(serializers.Serializer):
    """A training job (``races.services.training.TrainingRequest``); the service checks the whole request."""

    name = serializers.CharField(min_length=1, max_length=64, help_text="the model's name")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    tracks = serializers.ListField(child=serializers.CharField(min_length=1, max_length=64), min_length=1,
                                   max_length=8, help_text="track slugs; the first is the main track")
    direction = serializers.ChoiceField(choices=Race.Direction.choices, default=Race.Direction.COUNTERCLOCKWISE)
    vehicle = serializers.DictField(help_text="a vehicle file (model_metadata-like: sensor, neural_network, "
                                              "action_space_type, action_space)")
    race_type = serializers.ChoiceField(choices=SOLO_RACE_TYPES,
                                        default=Race.RaceType.TIME_TRIAL)
    reward_function_source = serializers.CharField(min_length=1, max_length=256 * 1024, trim_whitespace=False)
    hyperparameters = serializers.DictField(required=False, default=dict,
                                            help_text="PPO settings by our names (batch_size, learning_rate, ...)")
    max_minutes = serializers.FloatField(min_value=0.1, max_value=24 * 60, help_text="the stop condition")
    best_by = serializers.ChoiceField(choices=["progress", "reward"], default="progress")
    clone_of = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                        help_text="one of your models to start from")
    warm_start = serializers.BooleanField(required=False, default=False,
                                          help_text="a new model first imitates a driver on the track's racing line "
                                                    "(discrete action spaces; counted in max_minutes)")
    submit_to = serializers.CharField(min_length=1, max_length=100, required=False, allow_null=True, default=None,
                                      help_text="a race (slug) to enter the model in when training ends")


class TrainingCloneSerializer(serializers.Serializer):
    """Train one of your models further: its vehicle, and by default the settings it was trained with."""

    model = serializers.IntegerField(min_value=1, help_text="one of your models (uploaded ones included)")
    name = serializers.CharField(min_length=1, max_length=64, help_text="the new model's name")
    max_minutes = serializers.FloatField(min_value=0.1, max_value=24 * 60)
    tracks = serializers.ListField(child=serializers.CharField(min_length=1, max_length=64), required=False,
                                   max_length=8, help_text="default: the tracks the model was trained on")
    reward_function_source = serializers.CharField(min_length=1, max_length=256 * 1024, required=False,
                                                   trim_whitespace=False)


class TrainingCurveSerializer(serializers.Serializer):
    iteration = serializers.IntegerField()
    episodes = serializers.IntegerField()
    env_steps = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField(allow_null=True)
    mean_reward = serializers.FloatField(help_text="average reward of the iteration's training episodes")
    mean_progress = serializers.FloatField(help_text="training progress %")
    evaluation_mean_progress = serializers.FloatField(allow_null=True, help_text="evaluation progress %")
    steps_per_second = serializers.FloatField(allow_null=True)
    is_best = serializers.BooleanField()


class TrainingJobSerializer(serializers.Serializer):
    """A training job as it stands (``races.services.training.training_progress``)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "starting", "training", "stopping", "done", "failed"])
    status_label = serializers.CharField()
    queue_position = serializers.IntegerField(allow_null=True, help_text="1 = next to start (while queued)")
    failure_reason = serializers.CharField(allow_blank=True)
    phase = serializers.CharField(allow_blank=True)
    update = serializers.CharField(allow_blank=True,
                                   help_text="how far the phase is: the warm start's share, or the PPO minibatches")
    note = serializers.CharField(allow_blank=True)
    iteration = serializers.IntegerField()
    episodes = serializers.IntegerField()
    env_steps = serializers.IntegerField()
    iteration_episodes_finished = serializers.IntegerField(allow_null=True)
    iteration_episodes_planned = serializers.IntegerField(allow_null=True)
    iteration_env_steps = serializers.IntegerField(
        allow_null=True, help_text="steps driven so far in the iteration under way (not yet in env_steps)")
    trained_seconds = serializers.FloatField()
    seconds_left = serializers.FloatField()
    max_minutes = serializers.FloatField()
    max_episodes = serializers.IntegerField(allow_null=True)
    warm_start = serializers.BooleanField(help_text="the model began by imitating the racing-line driver")
    stop_requested = serializers.BooleanField()
    stopped_by = serializers.CharField(allow_blank=True)
    best_iteration = serializers.IntegerField(allow_null=True)
    curve = TrainingCurveSerializer(many=True, help_text="the reward graph's values per iteration")
    trajectories_iteration = serializers.IntegerField(allow_null=True)
    camera_iteration = serializers.IntegerField(
        allow_null=True, help_text="the iteration whose camera film /training/{id}/camera.gif shows (null: none yet)")
    log_tail = serializers.CharField(allow_blank=True)
    model_id = serializers.IntegerField(allow_null=True, help_text="the trained model, once done")
    submission_id = serializers.IntegerField(allow_null=True)
    submit_note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
