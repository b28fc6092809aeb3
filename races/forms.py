"""Web forms; every rule beyond field types is checked by the services (one place)."""

from __future__ import annotations

from django import forms

from races.models import Race, Track


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Letters, digits, dashes; unique among your models.")
    archive = forms.FileField(help_text="The model.tar.gz written by `python -m sim train`.")


class SubmitForm(forms.Form):
    model = forms.ModelChoiceField(queryset=None, empty_label=None)

    def __init__(self, *args, models=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = models


class JoinForm(forms.Form):
    code = forms.CharField(max_length=64, label="Invite code")


class CommunityRaceForm(forms.ModelForm):
    track = forms.ModelChoiceField(queryset=Track.objects.all(), empty_label=None)
    opens_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    closes_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    class Meta:
        model = Race
        fields = [
            "name", "description", "track", "direction", "ranking_method", "total_laps", "minimum_laps",
            "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s", "opens_at", "closes_at",
            "max_submissions_per_racer", "submission_cooldown_s",
        ]
