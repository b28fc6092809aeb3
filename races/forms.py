"""Web forms; every rule beyond field types is checked by the services (one place)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.safestring import mark_safe

from races.models import ModelEvaluation, Race, Season, Track
from races.services import RuleViolation
from races.services.race_settings import (
    BRACKET_SIZES,
    SETTINGS_FIELDS,
    TYPE_DEFAULTS,
    race_format_box_positions,
    race_parse_box_positions,
    race_validate_settings,
    race_with_type_defaults,
)

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
