"""Web forms; every rule beyond field types is checked by the services (one place)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from races.models import Race, Track
from races.services.races import EVALUABLE_RACE_TYPES

LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and expects


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Unique among your models, e.g. oval-ppo-v3.")
    archive = forms.FileField(label="model.tar.gz", help_text="The archive written by `python -m sim train`.",
                              widget=forms.ClearableFileInput(attrs={"accept": ".tar.gz,.tgz,application/gzip"}))


class SubmitForm(forms.Form):
    model = forms.ModelChoiceField(queryset=None, empty_label=None, label="Your model")

    def __init__(self, *args, models=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = models


class JoinForm(forms.Form):
    code = forms.CharField(max_length=64, label="Invite code",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))


class CommunityRaceForm(forms.ModelForm):
    """All the race settings of SPEC §8, grouped as the page shows them."""

    GROUPS = (
        ("Race", ("name", "description", "race_type")),
        ("Track", ("track", "direction")),
        ("Scoring", ("ranking_method", "total_laps", "minimum_laps", "off_track_penalty_s", "collision_penalty_s",
                     "max_resets", "time_cap_s")),
        ("Schedule and limits", ("opens_at", "closes_at", "max_submissions_per_racer", "submission_cooldown_s")),
    )
    track = forms.ModelChoiceField(queryset=Track.objects.all(), empty_label=None)
    opens_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    closes_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))

    class Meta:
        model = Race
        fields = [
            "name", "description", "race_type", "track", "direction", "ranking_method", "total_laps", "minimum_laps",
            "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s", "opens_at", "closes_at",
            "max_submissions_per_racer", "submission_cooldown_s",
        ]
        labels = {
            "off_track_penalty_s": "Off-track penalty (s)",
            "collision_penalty_s": "Collision penalty (s)",
            "max_resets": "Maximum resets per run",
            "time_cap_s": "Run time cap (s)",
            "max_submissions_per_racer": "Submissions per racer",
            "submission_cooldown_s": "Cooldown between submissions (s)",
        }
        help_texts = {
            "race_type": "Time trials can be evaluated today; other race types are coming.",
            "ranking_method": "Best lap, best average over the minimum laps, or total time of all laps.",
            "total_laps": "1 to 10 continuous laps per run.",
            "minimum_laps": "Consecutive completed laps a run needs to be ranked (all of them for total time).",
            "max_resets": "Empty means unlimited.",
            "opens_at": "Your local time.",
            "closes_at": "The invite link stops working at this time.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            now = timezone.localtime().replace(second=0, microsecond=0)
            self.initial.setdefault("opens_at", now + timedelta(minutes=5))
            self.initial.setdefault("closes_at", now + timedelta(days=7))
        evaluable = [(v, label) for v, label in Race.RaceType.choices if v in EVALUABLE_RACE_TYPES]
        self.fields["race_type"].choices = evaluable

    def groups(self):
        return [(title, [self[name] for name in names]) for title, names in self.GROUPS]
