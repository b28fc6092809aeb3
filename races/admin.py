"""Admin: schedule virtual-circuit races (create, clone), import tracks, re-run or disqualify, see the queue."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from evaluator.models import EvaluationAttempt
from races.models import LeaderboardEntry, Race, RacerModel, Submission, Track
from races.services import RuleViolation, race_clone, race_validate_settings, submission_disqualify, submission_rerun
from races.services.races import SETTINGS_FIELDS
from races.services.tracks import track_import


class TrackImportForm(forms.ModelForm):
    route_upload = forms.FileField(required=False, help_text="A DeepRacer .npy route file (imports a new track).")

    class Meta:
        model = Track
        fields = ["title", "slug", "description"]


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "source", "length_m", "width_m", "waypoint_count"]
    form = TrackImportForm

    def get_readonly_fields(self, request, obj=None):
        return ["slug", "source", "length_m", "width_m", "waypoint_count"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        upload = form.cleaned_data.get("route_upload")
        if upload is None:
            raise forms.ValidationError("Upload a .npy route file.")
        try:
            imported = track_import(obj.title, upload, slug=obj.slug, description=obj.description)
        except RuleViolation as error:
            messages.error(request, error.message)
            return
        obj.pk = imported.pk


class RaceAdminForm(forms.ModelForm):
    class Meta:
        model = Race
        exclude: list[str] = []

    def clean(self):
        cleaned = super().clean()
        try:
            race_validate_settings({field: cleaned.get(field) for field in SETTINGS_FIELDS})
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None
        return cleaned


@admin.register(Race)
class RaceAdmin(admin.ModelAdmin):
    form = RaceAdminForm
    list_display = ["name", "kind", "track", "ranking_method", "opens_at", "closes_at", "phase_label"]
    list_filter = ["kind", "ranking_method", "race_type"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["clone_for_next_week"]

    @admin.display(description="Phase")
    def phase_label(self, race: Race) -> str:
        return race.phase()

    @admin.action(description="Clone selected races (opening now, for 7 days)")
    def clone_for_next_week(self, request, queryset):
        now = timezone.now()
        for race in queryset:
            race_clone(race, f"{race.name} (copy)", now, now + timedelta(days=7))
        messages.success(request, f"Cloned {queryset.count()} race(s).")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "race", "user", "model", "status", "submitted_at", "attempt_summary"]
    list_filter = ["status", "race"]
    actions = ["rerun", "disqualify"]
    readonly_fields = ["race", "user", "model", "status", "failure_reason", "submitted_at", "started_at",
                       "finished_at"]

    @admin.display(description="Attempts")
    def attempt_summary(self, submission: Submission) -> str:
        return ", ".join(f"#{a.number} {a.status}" for a in submission.attempts.all())

    @admin.action(description="Re-run the evaluation")
    def rerun(self, request, queryset):
        for submission in queryset:
            try:
                submission_rerun(submission)
            except RuleViolation as error:
                messages.error(request, f"#{submission.pk}: {error.message}")

    @admin.action(description="Disqualify")
    def disqualify(self, request, queryset):
        for submission in queryset:
            try:
                submission_disqualify(submission)
            except RuleViolation as error:
                messages.error(request, f"#{submission.pk}: {error.message}")


@admin.register(EvaluationAttempt)
class EvaluationAttemptAdmin(admin.ModelAdmin):
    """The queue: pending and running attempts first."""

    list_display = ["pk", "submission", "number", "status", "worker_id", "lease_expires_at", "created_at", "error"]
    list_filter = ["status"]
    ordering = ["status", "created_at"]

    def changelist_view(self, request, extra_context=None):
        from django.conf import settings

        from evaluator.sandbox import bubblewrap_works

        if not bubblewrap_works():
            allowed = getattr(settings, "PITLANE_SANDBOX_ALLOW_FALLBACK", False)
            messages.warning(request, "bubblewrap is unavailable on this machine: " + (
                "evaluations run in the weaker rlimits-only fallback sandbox." if allowed
                else "evaluations are refused until it is installed (or the fallback is allowed)."))
        return super().changelist_view(request, extra_context)


admin.site.register(RacerModel)
admin.site.register(LeaderboardEntry)
