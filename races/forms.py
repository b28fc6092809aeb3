"""Web forms; every rule beyond field types is checked by the services (one place)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.safestring import mark_safe

from races.models import ModelEvaluation, Race, RacerModel, Season, Track
from races.services import RuleViolation, garage
from races.services.presenters import HYPERPARAMETER_WORDS  # the words the model page uses too
from races.services.race_settings import (
    BRACKET_SIZES,
    SETTINGS_FIELDS,
    TYPE_DEFAULTS,
    race_format_box_positions,
    race_parse_box_positions,
    race_validate_settings,
    race_with_type_defaults,
)
from races.services.reward_functions import reward_function_check_source
from races.services.training import TrainingRequest
from sim.learn import hyperparameters as hyperparameter_rules
from sim.world import vehicle as vehicle_rules
from sim.world.reward_examples import EXAMPLES
from sim.world.reward_function import RewardFunctionError, check_source

LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and expects
# The race settings' labels in words, for the site's forms and the admin's (field names end in units like "_s").
RACE_SETTING_LABELS = {
    "box_count": "Number of boxes",
    "bot_count": "Number of bot cars",
    "bot_speed_mps": "Bot speed (m/s)",
    "bot_lane_change_s": "Bots change lanes every (s)",
    "off_track_penalty_s": "Off-track penalty (s)",
    "collision_penalty_s": "Collision penalty (s)",
    "max_resets": "Maximum resets per run",
    "time_cap_s": "Run time cap (s)",
    "max_submissions_per_racer": "Submissions per racer",
    "submission_cooldown_s": "Cooldown between submissions (s)",
}
BOX_POSITIONS_HELP = "Custom placement only: percent of the lap and lane per box, e.g. “20 inner, 45 outer, 70 inner”."


class BoxPositionsField(forms.CharField):
    """Custom box positions as text (“20 inner, 45 outer”), stored as the list the race keeps (None when empty)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, max_length=400, label="Box positions", help_text=BOX_POSITIONS_HELP,
                         **kwargs)

    def prepare_value(self, value):
        return race_format_box_positions(value) if isinstance(value, list) else (value or "")

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            return race_parse_box_positions(text)
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Unique among your models, e.g. oval-ppo-v3.")
    archive = forms.FileField(label="model.tar.gz",
                              help_text=mark_safe("The archive written by <code>python -m sim train</code>."),
                              widget=forms.ClearableFileInput(attrs={"accept": ".tar.gz,.tgz,application/gzip"}))


class SubmitForm(forms.Form):
    model = forms.ModelChoiceField(queryset=None, empty_label=None, label="Your model")

    def __init__(self, *args, models=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = models


class ModelEvaluationForm(forms.Form):
    """Evaluate one of your models on any track (``races.services.model_evaluations`` checks the whole)."""

    track = forms.ModelChoiceField(queryset=Track.objects.all(), empty_label=None)
    direction = forms.ChoiceField(choices=Race.Direction.choices, initial=Race.Direction.COUNTERCLOCKWISE)
    race_type = forms.ChoiceField(label="Race type", initial=Race.RaceType.TIME_TRIAL, choices=[
        (value, label) for value, label in Race.RaceType.choices if value != Race.RaceType.HEAD_TO_HEAD])
    total_laps = forms.IntegerField(label="Laps", min_value=1, max_value=ModelEvaluation.MAX_LAPS, initial=3)


class JoinForm(forms.Form):
    code = forms.CharField(max_length=64, label="Invite code",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))


class CommunityRaceForm(forms.ModelForm):
    """All the race settings of SPEC §8, grouped as the page shows them. A group tied to a race type is shown
    (and sent) only for that type; without JavaScript its fields must be left empty for the other types."""

    GROUPS = (
        ("Race", ("name", "description", "race_type"), ""),
        ("Track", ("track", "direction"), ""),
        ("Object avoidance", ("box_count", "box_placement", "box_positions"), Race.RaceType.OBJECT_AVOIDANCE),
        ("Head to bot", ("bot_count", "bot_speed_mps", "bot_lane_change_s"), Race.RaceType.HEAD_TO_BOT),
        ("Head to head", ("bracket_size",), Race.RaceType.HEAD_TO_HEAD),
        ("Scoring", ("ranking_method", "total_laps", "minimum_laps", "off_track_penalty_s", "collision_penalty_s",
                     "max_resets", "time_cap_s"), ""),
        ("Schedule and limits", ("opens_at", "closes_at", "max_submissions_per_racer", "submission_cooldown_s"), ""),
    )
    track = forms.ModelChoiceField(queryset=Track.objects.all(), empty_label=None)
    box_positions = BoxPositionsField()
    bracket_size = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Bracket size",
        choices=[("", "—")] + [(n, f"{n} racers") for n in BRACKET_SIZES],
        help_text=f"The top qualifiers race the knockout bracket after the close (empty: "
                  f"{TYPE_DEFAULTS['bracket_size']}).",
    )
    opens_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    closes_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))

    class Meta:
        model = Race
        fields = [
            "name", "description", "race_type", "track", "direction", "ranking_method", "total_laps", "minimum_laps",
            "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s", "opens_at", "closes_at",
            "max_submissions_per_racer", "submission_cooldown_s", "box_count", "box_placement", "box_positions",
            "bot_count", "bot_speed_mps", "bot_lane_change_s", "bracket_size",
        ]
        labels = RACE_SETTING_LABELS
        help_texts = {
            "race_type": "Object avoidance puts boxes on the track; head to bot, slower bot cars; head to head, "
                         "a qualifying time trial and then a knockout bracket of two cars per match.",
            "box_count": f"1 to 10 (empty: {TYPE_DEFAULTS['box_count']}).",
            "box_placement": "Random positions are drawn once for this race: every run meets the same boxes.",
            "bot_count": f"1 to 6 (empty: {TYPE_DEFAULTS['bot_count']}), evenly spaced on alternating lanes.",
            "bot_speed_mps": f"0.2 to 4 m/s (empty: {TYPE_DEFAULTS['bot_speed_mps']:g}).",
            "bot_lane_change_s": "2 to 60 s; empty: the bots keep their lane.",
            "ranking_method": "Best lap, best average over the minimum laps, or total time of all laps.",
            "total_laps": "1 to 10 continuous laps per run.",
            "minimum_laps": "Consecutive completed laps a run needs to be ranked (all of them for total time).",
            "max_resets": "Empty means unlimited.",
            "closes_at": "The invite link stops working at this time.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The browser sends a bare wall-clock time: the league reads it in its own zone, so name that zone.
        zone = timezone.get_current_timezone_name()
        self.fields["opens_at"].label = f"Opens at ({zone})"
        self.fields["closes_at"].label = f"Closes at ({zone})"
        self.fields["opens_at"].help_text = f"League time, {zone}: the race page also shows it in each viewer's zone."
        if not self.instance.pk:
            now = timezone.localtime().replace(second=0, microsecond=0)
            self.initial.setdefault("opens_at", now + timedelta(minutes=5))
            self.initial.setdefault("closes_at", now + timedelta(days=7))

    def clean(self):
        cleaned = super().clean()
        # The settings rules run here too, so a refusal lands beside its field (minimum laps, close time...)
        # rather than as the model constraint's message at the top of the form.
        values = {field: cleaned[field] for field in SETTINGS_FIELDS if field in cleaned}
        try:
            race_validate_settings(race_with_type_defaults(values))
        except RuleViolation as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned

    def groups(self):
        return [(title, [self[name] for name in names], race_type) for title, names, race_type in self.GROUPS]


def time_zone_note() -> str:
    """The time zone the form's times are read in, named (the server's current time zone)."""
    return f"{timezone.get_current_timezone_name()} time"


class ScheduleRaceForm(CommunityRaceForm):
    """The admins' virtual-circuit race: the community form's settings, plus the season it counts for."""

    season = forms.ModelChoiceField(queryset=None, required=False, empty_label="— none —",
                                    help_text="Its results earn points in this season (the race must run within "
                                              "the season's dates).")

    GROUPS = (*CommunityRaceForm.GROUPS[:-1],
              ("Schedule and limits", ("opens_at", "closes_at", "season", "max_submissions_per_racer",
                                       "submission_cooldown_s"), ""))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["season"].queryset = Season.objects.filter(kind=Race.Kind.VIRTUAL_CIRCUIT,
                                                               finished_at__isnull=True).order_by("starts_at")
        zone = time_zone_note()
        self.fields["opens_at"].label = f"Opens at ({zone})"
        self.fields["closes_at"].label = f"Closes at ({zone})"
        self.fields["opens_at"].help_text = ""
        self.fields["closes_at"].help_text = "Submissions are refused from this moment."


class SeasonForm(forms.ModelForm):
    """A season's settings; the points table is typed as a list of numbers."""

    points = forms.CharField(
        label="Points by place", max_length=600, initial="25, 18, 15, 12, 10, 8, 6, 4, 2, 1",
        help_text="1st place first, separated by commas; places beyond the list score 0. Equal times share the "
                  "points of the places they occupy.")
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    final_size = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Final",
        choices=[("", "No final")] + [(n, f"Top {n} race a knockout final") for n in BRACKET_SIZES],
        help_text="Created when the season ends: the top racers of the standings, seeded in order, race head to "
                  "head. Each races with the model of their best season result.")

    class Meta:
        model = Season
        fields = ["name", "description", "starts_at", "ends_at", "best_results", "final_size", "final_track"]
        labels = {"best_results": "Results that count", "final_track": "Track of the final"}
        help_texts = {"best_results": "Each racer's best N race results count; empty: all of them."}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        zone = time_zone_note()
        self.fields["starts_at"].label = f"Starts ({zone})"
        self.fields["ends_at"].label = f"Ends ({zone})"
        self.fields["final_track"].empty_label = "Same as the last race"
        if self.instance.pk and not self.is_bound:
            self.initial["points"] = ", ".join(str(p) for p in self.instance.points_table)
        elif not self.instance.pk:
            now = timezone.localtime().replace(minute=0, second=0, microsecond=0)
            self.initial.setdefault("starts_at", now)
            self.initial.setdefault("ends_at", now + timedelta(days=90))

    def clean_points(self) -> list[int]:
        from races.services.seasons import season_parse_points

        try:
            return season_parse_points(self.cleaned_data["points"])
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None

    def values(self) -> dict:
        """The season settings the services take."""
        data = self.cleaned_data
        return {"name": data["name"], "description": data["description"], "starts_at": data["starts_at"],
                "ends_at": data["ends_at"], "points_table": data["points"], "best_results": data["best_results"],
                "final_size": data["final_size"], "final_track": data["final_track"]}


class RepeatForm(forms.Form):
    months = forms.IntegerField(min_value=1, max_value=12, initial=3, label="Repeat monthly for",
                                help_text="months")


# --- the garage -------------------------------------------------------------------------------------------------
def _number_input(step: str, low: float, high: float) -> forms.NumberInput:
    return forms.NumberInput(attrs={"step": step, "min": f"{low:g}", "max": f"{high:g}"})


class VehicleForm(forms.Form):
    """A garage vehicle. The discrete action table is sent row by row (``action_steering`` / ``action_speed``,
    edited freely); the four granularity inputs generate it (live with JavaScript, with *Regenerate* without).
    Every rule is ``sim.world.vehicle``'s, reached through ``races.services.garage.vehicle_build``."""

    STEERING_GRANULARITIES = (3, 5, 7, 9)
    SPEED_GRANULARITIES = (1, 2, 3, 4, 5)

    name = forms.CharField(max_length=64, help_text="Unique in your garage, e.g. “fast-7x3”.")
    camera = forms.ChoiceField(choices=garage.CAMERA_CHOICES, widget=forms.RadioSelect, initial="FRONT_FACING_CAMERA",
                               help_text="Stereo cameras see depth: the console's choice for object avoidance.")
    lidar = forms.ChoiceField(choices=garage.LIDAR_CHOICES, widget=forms.RadioSelect, required=False, initial="",
                              help_text="A lidar sees cars coming from behind (head to bot).")
    neural_network = forms.ChoiceField(choices=garage.NETWORK_CHOICES, widget=forms.RadioSelect,
                                       initial="DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", label="Neural network")
    action_space_type = forms.ChoiceField(choices=[("discrete", "Discrete"), ("continuous", "Continuous")],
                                          widget=forms.RadioSelect, initial="discrete", label="Action space")
    max_steering_angle = forms.FloatField(required=False, initial=30, label="Maximum steering angle (°)",
                                          widget=_number_input("1", 1, vehicle_rules.MAX_STEERING_ANGLE))
    steering_granularity = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, initial=5, label="Steering angle granularity",
        choices=[(n, str(n)) for n in STEERING_GRANULARITIES])
    max_speed = forms.FloatField(required=False, initial=1, label="Maximum speed (m/s)",
                                 widget=_number_input("0.1", vehicle_rules.MIN_SPEED, vehicle_rules.MAX_SPEED))
    speed_granularity = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, initial=3, label="Speed granularity",
        choices=[(n, str(n)) for n in SPEED_GRANULARITIES])
    steering_low = forms.FloatField(required=False, initial=-30, label="Steering from (°)",
                                    widget=_number_input("1", -vehicle_rules.MAX_STEERING_ANGLE,
                                                         vehicle_rules.MAX_STEERING_ANGLE))
    steering_high = forms.FloatField(required=False, initial=30, label="Steering to (°)",
                                     widget=_number_input("1", -vehicle_rules.MAX_STEERING_ANGLE,
                                                          vehicle_rules.MAX_STEERING_ANGLE))
    speed_low = forms.FloatField(required=False, initial=0.5, label="Speed from (m/s)",
                                 widget=_number_input("0.1", vehicle_rules.MIN_SPEED, vehicle_rules.MAX_SPEED))
    speed_high = forms.FloatField(required=False, initial=1, label="Speed to (m/s)",
                                  widget=_number_input("0.1", vehicle_rules.MIN_SPEED, vehicle_rules.MAX_SPEED))
    actions = forms.Field(required=False, widget=forms.HiddenInput)  # rows come as lists; here for its errors

    GRANULARITY_FIELDS = ("max_steering_angle", "steering_granularity", "max_speed", "speed_granularity")
    RANGE_FIELDS = ("steering_low", "steering_high", "speed_low", "speed_high")

    def __init__(self, *args, config: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.table: list[dict[str, Any]] = []  # the rows shown: as sent, or the stored / generated table
        if self.is_bound:
            steering, speed = self.data.getlist("action_steering"), self.data.getlist("action_speed")
            self.table = [{"steering_angle": a, "speed": s} for a, s in zip(steering, speed, strict=False)]
        elif config is not None:
            self._initial_from(config)
        else:
            self.table = garage.vehicle_action_table({f: self.fields[f].initial for f in self.GRANULARITY_FIELDS})

    def _initial_from(self, config: dict) -> None:
        facts = garage.vehicle_facts(config)
        self.initial.update({"name": config.get("name", ""), "camera": facts["camera"], "lidar": facts["lidar"],
                             "neural_network": facts["neural_network"],
                             "action_space_type": facts["action_space_type"]})
        if facts["action_space_type"] == "continuous":
            ranges = facts["ranges"]
            self.initial.update({"steering_low": ranges["steering_angle"]["low"],
                                 "steering_high": ranges["steering_angle"]["high"],
                                 "speed_low": ranges["speed"]["low"], "speed_high": ranges["speed"]["high"]})
        else:
            self.table = facts["actions"]
            self.initial.update(facts["granularity"] or _granularity_guess(self.table))

    def regenerate(self) -> None:
        """*Regenerate* pressed (no JavaScript): the table becomes what the four inputs generate."""
        if not self.is_valid() and any(f in self.errors for f in self.GRANULARITY_FIELDS):
            return
        try:
            self.table = garage.vehicle_action_table(self._granularity())
        except RuleViolation as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)

    def _granularity(self) -> dict[str, Any]:
        data = self.cleaned_data
        values = {field: data.get(field) for field in self.GRANULARITY_FIELDS}
        # Whole numbers stay ints: the vehicle file shows "30", not "30.0", as the console does.
        return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}

    def document(self) -> dict[str, Any]:
        """The vehicle document for ``races.services.garage`` (call after ``is_valid``)."""
        data = self.cleaned_data
        sensors = [data["camera"]] + ([data["lidar"]] if data.get("lidar") else [])
        if data["action_space_type"] == "continuous":
            space: Any = {"steering_angle": {"low": data.get("steering_low"), "high": data.get("steering_high")},
                          "speed": {"low": data.get("speed_low"), "high": data.get("speed_high")}}
        else:
            space = [{"steering_angle": _number(row["steering_angle"]), "speed": _number(row["speed"])}
                     for row in self.table]
        return {"sensor": sensors, "neural_network": data["neural_network"],
                "action_space_type": data["action_space_type"], "action_space": space}

    def granularity(self) -> dict[str, Any] | None:
        values = self._granularity()
        return values if None not in values.values() else None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned["action_space_type"] == "continuous":
            missing = [f for f in self.RANGE_FIELDS if cleaned.get(f) is None]
        else:
            missing = [] if self.table else ["actions"]
            try:  # the four inputs beside the table must make sense too, even when the table was edited
                garage.vehicle_action_table(self._granularity())
            except RuleViolation as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
                return cleaned
        for field in missing:
            self.add_error(field, "Required for this action space.")
        if not missing:
            try:
                garage.vehicle_build(self.document(), self.granularity())
            except RuleViolation as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


def _number(text: Any) -> Any:
    """A table cell as typed: a number where it reads as one (the simulator names anything else)."""
    try:
        return float(text) if str(text).strip() not in ("", "nan", "inf", "-inf") else text
    except (TypeError, ValueError):
        return text


def _granularity_guess(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The four inputs shown beside a table that was not generated (e.g. edited): its extremes and counts."""
    angles = sorted({abs(row["steering_angle"]) for row in table}) or [30]
    speeds = sorted({row["speed"] for row in table}) or [1]
    steering_count = len({row["steering_angle"] for row in table})
    return {"max_steering_angle": angles[-1] or 30, "max_speed": speeds[-1],
            "steering_granularity": steering_count if steering_count in VehicleForm.STEERING_GRANULARITIES else 5,
            "speed_granularity": len(speeds) if len(speeds) in VehicleForm.SPEED_GRANULARITIES else 3}


# --- the create-model (training) form -------------------------------------------------------------------------------
BATCH_SIZES = (32, 64, 128, 256, 512)  # the console's menu, within hyperparameters.RANGES
TRAINABLE_RACE_TYPES = [(value, label) for value, label in Race.RaceType.choices if value != Race.RaceType.HEAD_TO_HEAD]
MAX_TRAINING_MINUTES = 24 * 60  # the form's ceiling; each racer's quota is training_start's to enforce


def _hyperparameter_field(name: str) -> forms.Field:
    low, high = hyperparameter_rules.RANGES[name]
    default = getattr(hyperparameter_rules.Hyperparameters(), name)
    label = HYPERPARAMETER_WORDS[name]
    if name == "batch_size":
        return forms.TypedChoiceField(choices=[(n, str(n)) for n in BATCH_SIZES if low <= n <= high], coerce=int,
                                      initial=default, label=label)
    if name in hyperparameter_rules.OPTIONAL_HYPERPARAMETERS:
        return forms.IntegerField(
            required=False, min_value=int(low), max_value=int(high), label=label,
            help_text=f"Optional, {low:g} to {high:g}: also end an iteration after this many steps of all cars, for "
                      f"a model that drives whole laps (empty: episodes only, as the console does).")
    if name in hyperparameter_rules.INTEGER_HYPERPARAMETERS:
        return forms.IntegerField(min_value=int(low), max_value=int(high), initial=default, label=label,
                                  help_text=f"{low:g} to {high:g}; default {default:g}.")
    return forms.FloatField(initial=default, label=label, help_text=f"{low:g} to {high:g}; default {default:g}.",
                            widget=forms.NumberInput(attrs={"step": "any", "min": f"{low:g}", "max": f"{high:g}"}))


class TrainingForm(forms.Form):
    """Create a model by training it (the console's *Create model*); ``training_request`` builds what
    ``races.services.training.training_start`` takes. Field rules here, the whole (quotas, the reward function run
    on the tracks, clone compatibility) in ``training_start``."""

    HYPERPARAMETERS = ("batch_size", "num_epochs", "learning_rate", "entropy", "discount_factor", "loss_type",
                       "episodes_between_training")
    ADVANCED_HYPERPARAMETERS = ("clip_epsilon", "gae_lambda", "max_iteration_steps")

    name = forms.CharField(max_length=64, label="Model name", help_text="Unique among your models, e.g. oval-ppo-v3.")
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    track = forms.ModelChoiceField(queryset=Track.objects.all(), empty_label=None, label="Track", to_field_name="slug",
                                   help_text="The main track: evaluations during training run on it.")
    extra_tracks = forms.ModelMultipleChoiceField(
        queryset=Track.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, label="Also train on",
        to_field_name="slug",
        help_text="Episodes rotate through every chosen track, so the model learns to drive tracks it has not seen.")
    direction = forms.ChoiceField(choices=Race.Direction.choices, initial=Race.Direction.COUNTERCLOCKWISE,
                                  widget=forms.RadioSelect)
    vehicle = forms.ChoiceField(label="Vehicle", help_text="From your garage, or an example vehicle.")
    race_type = forms.ChoiceField(choices=TRAINABLE_RACE_TYPES, initial=Race.RaceType.TIME_TRIAL, label="Race type",
                                  widget=forms.RadioSelect)
    reward_function = forms.CharField(widget=forms.Textarea, label="Reward function", strip=False)
    batch_size = _hyperparameter_field("batch_size")
    num_epochs = _hyperparameter_field("num_epochs")
    learning_rate = _hyperparameter_field("learning_rate")
    entropy = _hyperparameter_field("entropy")
    discount_factor = _hyperparameter_field("discount_factor")
    loss_type = forms.ChoiceField(choices=[(t, t.capitalize()) for t in hyperparameter_rules.LOSS_TYPES],
                                  initial=hyperparameter_rules.Hyperparameters().loss_type,
                                  label=HYPERPARAMETER_WORDS["loss_type"])
    episodes_between_training = _hyperparameter_field("episodes_between_training")
    clip_epsilon = _hyperparameter_field("clip_epsilon")
    gae_lambda = _hyperparameter_field("gae_lambda")
    max_iteration_steps = _hyperparameter_field("max_iteration_steps")
    max_minutes = forms.FloatField(min_value=1, max_value=MAX_TRAINING_MINUTES, initial=60,
                                   label="Maximum time (minutes)",
                                   help_text="Training stops after this long and the model is kept.")
    best_by = forms.ChoiceField(
        choices=[("progress", "Best evaluation progress (the console's choice)"), ("reward", "Best average reward")],
        initial="progress", widget=forms.RadioSelect, label="Keep the checkpoint with")
    warm_start = forms.BooleanField(
        required=False, label="Warm start",
        help_text="Begin by imitating a driver on the track's racing line at the car's top speed, then learn with "
                  "PPO: laps from the first minutes. Discrete action spaces; counted in the maximum time.")
    clone_of = forms.ModelChoiceField(queryset=RacerModel.objects.none(), required=False,
                                      empty_label="— start from scratch —", label="Clone a model",
                                      help_text="Start from this model's weights; the vehicle must have the same "
                                                "sensors, network and action-space shape.")
    submit_to = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="When training ends, enter",
                                       help_text="The console's auto-submit: the model enters this race once trained.")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from races.services.racer_models import models_of
        from races.services.submissions import races_open_to

        self.user = user
        self.vehicles = garage.vehicle_choices(user)
        self.fields["vehicle"].choices = [(key, label) for key, label, _ in self.vehicles]
        self.fields["clone_of"].queryset = models_of(user).filter(status=RacerModel.Status.VALID)
        self.open_races = [race for race, _ in races_open_to(user)]
        self.fields["submit_to"].choices = [("", "— no race —")] + [(race.pk, race.name) for race in self.open_races]
        self.initial.setdefault("reward_function", EXAMPLES["example_1_follow_center_line"])
        # Train for the race that closes soonest (and enter it when done, if the racer ticks it), not for whichever
        # track comes first in the alphabet.
        if self.open_races:
            self.initial.setdefault("track", self.open_races[0].track.slug)
        # The racer's first garage vehicle, else the lab's car (the examples are listed alphabetically).
        mine = [key for key in self.fields["vehicle"].choices if key[0].startswith(garage.GARAGE_KEY_PREFIX)]
        self.initial.setdefault("vehicle", mine[0][0] if mine else f"{garage.EXAMPLE_KEY_PREFIX}original_deepracer")

    def clean_reward_function(self) -> str:
        source = self.cleaned_data["reward_function"]
        try:
            reward_function_check_source(source)
            check_source(source)  # parsing only; training_start runs it (in the sandbox) on the tracks
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None
        except RewardFunctionError as error:
            raise forms.ValidationError(str(error)) from None
        return source

    def clean_vehicle(self) -> dict[str, Any]:
        try:
            return garage.vehicle_choice(self.user, self.cleaned_data["vehicle"])
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None

    def clean_submit_to(self) -> Race | None:
        pk = self.cleaned_data.get("submit_to")
        if pk is None:
            return None
        race = next((race for race in self.open_races if race.pk == pk), None)
        if race is None:
            raise forms.ValidationError("Choose one of the open races you may enter.")
        return race

    def clean(self):
        cleaned = super().clean()
        track, direction = cleaned.get("track"), cleaned.get("direction")
        if track is not None and direction and not track.supports(direction):
            self.add_error("direction", f"{track.title} is raced {track.get_directions_display().lower()}.")
        extra = [t for t in cleaned.get("extra_tracks") or [] if t != track]
        unsupported = [t.title for t in extra if direction and not t.supports(direction)]
        if unsupported:
            self.add_error("extra_tracks", f"Not raced {direction}: {', '.join(unsupported)}.")
        cleaned["extra_tracks"] = extra
        names = (*self.HYPERPARAMETERS, *self.ADVANCED_HYPERPARAMETERS)
        if not any(name in self.errors for name in names):
            try:
                cleaned["hyperparameters"] = hyperparameter_rules.Hyperparameters(
                    **{name: cleaned[name] for name in names}).to_dict()
            except hyperparameter_rules.HyperparameterError as error:
                self.add_error(error.field if error.field in self.fields else None, str(error))
        return cleaned

    def training_request(self) -> TrainingRequest:
        """What ``training_start`` takes (call after ``is_valid``)."""
        data = self.cleaned_data
        return TrainingRequest(
            name=data["name"].strip(), description=data["description"].strip(),
            tracks=(data["track"], *data["extra_tracks"]), direction=data["direction"], vehicle=data["vehicle"],
            race_type=data["race_type"], reward_function_source=data["reward_function"],
            hyperparameters=data["hyperparameters"], max_minutes=data["max_minutes"], best_by=data["best_by"],
            clone_of=data["clone_of"], warm_start=data["warm_start"], submit_to=data["submit_to"],
        )

    def hyperparameter_fields(self) -> list:
        return [self[name] for name in self.HYPERPARAMETERS]

    def advanced_fields(self) -> list:
        return [self[name] for name in self.ADVANCED_HYPERPARAMETERS]
