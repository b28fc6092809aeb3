"""Admin: schedule virtual-circuit races (create, clone, open/close), import tracks, re-run or disqualify
submissions (the evaluation queue is the evaluator's page). Every rule goes through ``races.services``."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify

from evaluator.admin import LIST_STYLES, time_column
from evaluator.engine import EvaluationAttempt
from races.forms import RACE_SETTING_LABELS, BoxPositionsField
from races.models import (
    BracketMatch,
    LeaderboardEntry,
    ModelEvaluation,
    Race,
    RaceParticipant,
    RacerModel,
    Season,
    Submission,
    Track,
    TrainingJob,
    TrainingJobTrack,
    TrainingQuota,
    Vehicle,
)
from races.services import (
    RuleViolation,
    bracket_match_rerun,
    bracket_start,
    race_clone,
    race_validate_settings,
    races_close_now,
    races_open_now,
    submission_disqualify,
    submission_rerun,
    track_import,
    track_parse_route,
    track_update,
)
from races.services.garage import vehicle_build, vehicle_create, vehicle_delete, vehicle_facts, vehicle_update
from races.services.presenters import qualified_score, racer_name
from races.services.race_settings import SETTINGS_FIELDS, race_with_type_defaults
from races.services.seasons import season_validate_settings
from races.services.tracks import MAX_ROUTE_FILE_BYTES, ROUTE_FILE_FORMAT
from races.services.training import training_quota, training_quota_update, training_stop


# --- tracks ---------------------------------------------------------------------------------------------------
class TrackImportForm(forms.ModelForm):
    route_upload = forms.FileField(required=False, label="Route file (.npy)", help_text=ROUTE_FILE_FORMAT)

    class Meta:
        model = Track
        fields = ["title", "slug", "description", "directions"]
        help_texts = {"slug": "The track's name in URLs and for the simulator; empty: made from the title."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False  # filled from the title (as the page does while typing)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            return cleaned
        if not cleaned.get("slug") and cleaned.get("title"):
            cleaned["slug"] = slugify(cleaned["title"])[:64]
            self.instance.slug = cleaned["slug"]
        upload = cleaned.get("route_upload")
        if upload is None:
            raise forms.ValidationError("Upload a .npy route file to import a track.")
        data = upload.read(MAX_ROUTE_FILE_BYTES + 1)
        try:
            track_parse_route(data)
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None
        cleaned["route_bytes"] = data
        return cleaned


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    form = TrackImportForm
    list_display = ["title", "slug", "source", "directions", "length_m", "width_m", "waypoint_count", "race_count"]
    readonly_fields = ["preview_image"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_races=Count("races"))

    @admin.display(description="Races", ordering="n_races")
    def race_count(self, track: Track) -> int:
        return track.n_races

    @admin.display(description="Preview")
    def preview_image(self, track: Track) -> str:
        if not track.pk:
            return "Rendered after the import."
        return format_html('<img src="{}" width="480" height="320" alt="">',
                           reverse("races:track_preview", args=[track.slug]))

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["title"]} if obj is None else {}  # the slug never changes once imported

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["slug", "source", "length_m", "width_m", "waypoint_count", "preview_image"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["title", "slug", "description", "directions", "route_upload"]
        return ["title", "description", "directions", "slug", "source", "length_m", "width_m", "waypoint_count",
                "preview_image"]

    def save_model(self, request, obj, form, change):
        if change:
            track_update(obj)
            return
        imported = track_import(obj.title, form.cleaned_data["route_bytes"], slug=obj.slug,
                                description=obj.description, directions=obj.directions)
        obj.pk, obj.slug = imported.pk, imported.slug


# --- races ----------------------------------------------------------------------------------------------------
class RaceAdminForm(forms.ModelForm):
    box_positions = BoxPositionsField()

    class Meta:
        model = Race
        fields = ["name", "slug", "description", "kind", "organiser", *[f for f in SETTINGS_FIELDS if f not in (
            "name", "description")], "closed_early_at"]
        labels = RACE_SETTING_LABELS

    def clean(self):
        cleaned = super().clean()
        values = race_with_type_defaults({field: cleaned.get(field) for field in SETTINGS_FIELDS if field in cleaned})
        try:
            race_validate_settings(values)
        except RuleViolation as error:
            if error.field in self.fields:
                raise forms.ValidationError({error.field: error.message}) from None
            raise forms.ValidationError(error.message) from None
        cleaned.update(values)  # the race type's defaults are saved with the race
        return cleaned


class ParticipantInline(admin.TabularInline):
    model = RaceParticipant
    extra = 0
    readonly_fields = ["user", "joined_at"]
    fields = ["user", "joined_at", "removed_at"]


@admin.register(Race)
class RaceAdmin(admin.ModelAdmin):
    form = RaceAdminForm
    list_display = ["name", "kind", "track_and_direction", "ranking_method", time_column("opens_at", "Opens"),
                    time_column("closes_at", "Closes"), "phase_label", "submission_count", "leaderboard_link"]
    list_filter = ["kind", "ranking_method", "race_type", "track"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    date_hierarchy = "opens_at"
    inlines = [ParticipantInline]
    readonly_fields = ["objects_seed"]
    actions = ["clone_as_next_round", "open_now", "close_now", "start_bracket"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "kind", "organiser"]}),
        ("Track", {"fields": ["track", "direction"]}),
        ("Race and scoring", {"fields": ["race_type", "ranking_method", "total_laps", "minimum_laps",
                                         "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s"]}),
        # Each race type's section carries its type: races/admin_race_form.js shows only the chosen type's.
        ("Object avoidance", {"fields": ["box_count", "box_placement", "box_positions", "objects_seed"],
                              "classes": ["race-type-settings", "race-type-OBJECT_AVOIDANCE"],
                              "description": "Only for object-avoidance races (empty: 3 boxes, evenly spaced)."}),
        ("Head to bot", {"fields": ["bot_count", "bot_speed_mps", "bot_lane_change_s"],
                         "classes": ["race-type-settings", "race-type-HEAD_TO_BOT"],
                         "description": "Only for head-to-bot races (empty: 3 bots at 1 m/s keeping their lane)."}),
        ("Head to head", {"fields": ["bracket_size"],
                          "classes": ["race-type-settings", "race-type-HEAD_TO_HEAD"],
                          "description": "Only for head-to-head races (empty: 8): the top qualifiers race a "
                                         "knockout bracket after the close."}),
        ("Schedule and limits", {"fields": ["opens_at", "closes_at", "closed_early_at", "max_submissions_per_racer",
                                            "submission_cooldown_s"]}),
    ]

    class Media:
        js = ["races/admin_race_form.js"]
        css = LIST_STYLES

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("track").annotate(n_submissions=Count("submissions"))

    def get_changeform_initial_data(self, request):
        now = timezone.now().replace(second=0, microsecond=0)
        return {"kind": Race.Kind.VIRTUAL_CIRCUIT, "opens_at": now, "closes_at": now + timedelta(days=30)}

    @admin.display(description="Track", ordering="track__title")
    def track_and_direction(self, race: Race) -> str:
        return f"{race.track.title} ({race.get_direction_display().lower()})"

    @admin.display(description="Phase")
    def phase_label(self, race: Race) -> str:
        return race.phase()

    @admin.display(description="Submissions", ordering="n_submissions")
    def submission_count(self, race: Race) -> int:
        return race.n_submissions

    @admin.display(description="Page")
    def leaderboard_link(self, race: Race) -> str:
        return format_html('<a href="{}">view</a>', reverse("races:race_detail", args=[race.slug]))

    @admin.action(description="Clone as the next round (opens when the original closes, same length)")
    def clone_as_next_round(self, request, queryset):
        now = timezone.now()
        for race in queryset:
            opens = max(now, race.effective_close)
            clone = race_clone(race, f"{race.name} (next round)", opens, opens + (race.closes_at - race.opens_at))
            messages.success(request, f"Scheduled '{clone.name}' from {clone.opens_at:%b %d %H:%M}.")

    @admin.action(description="Open now")
    def open_now(self, request, queryset):
        messages.success(request, f"Opened {races_open_now(queryset)} race(s).")

    @admin.action(description="Close now")
    def close_now(self, request, queryset):
        messages.success(request, f"Closed {races_close_now(queryset)} race(s).")

    @admin.action(description="Start the bracket (head-to-head races, once closed)")
    def start_bracket(self, request, queryset):
        for race in queryset:
            try:
                matches = bracket_start(race, by=request.user)
            except RuleViolation as error:
                messages.error(request, f"{race.name}: {error.message}")
            else:
                messages.success(request, f"{race.name}: the bracket has started ({len(matches)} first-round "
                                          "match(es)).")


@admin.register(BracketMatch)
class BracketMatchAdmin(admin.ModelAdmin):
    """Head-to-head matches: watch them, and re-run one (e.g. after a failure)."""

    list_display = ["pk", "race", "round", "slot", "seed_a", "racer_a", "seed_b", "racer_b", "status", "winner",
                    "decided_at"]
    list_filter = ["status", "race"]
    list_select_related = ["race", "racer_a", "racer_b", "winner"]
    readonly_fields = [field.name for field in BracketMatch._meta.fields]
    actions = ["rerun"]

    def has_add_permission(self, request) -> bool:
        return False  # matches are made by the bracket

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or request.method == "GET"

    @admin.action(description="Re-run the match")
    def rerun(self, request, queryset):
        for match in queryset:
            try:
                bracket_match_rerun(match)
            except RuleViolation as error:
                messages.error(request, f"{match}: {error.message}")
            else:
                messages.success(request, f"{match}: queued again.")


# --- submissions and the queue -----------------------------------------------------------------------------------
ATTEMPT_COLUMNS = ["number", "status", "worker_id", "started_at", "heartbeat_at", "lease_expires_at", "finished_at",
                   "error"]


def attempts_table(attempts: list[EvaluationAttempt]) -> str:
    """The evaluation attempts of a submission, as a read-only table (they are named by kind and id, not by a
    foreign key, so no inline)."""
    if not attempts:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((EvaluationAttempt._meta.get_field(c).verbose_name,)
                                                for c in ATTEMPT_COLUMNS))
    rows = format_html_join("", "<tr>{}</tr>", (
        (format_html_join("", "<td>{}</td>", ((getattr(a, c) if getattr(a, c) not in (None, "") else "—",)
                                              for c in ATTEMPT_COLUMNS)),) for a in attempts))
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)


def _run_actions(request, queryset, action, done: str) -> None:
    count = 0
    for submission in queryset:
        try:
            action(submission)
            count += 1
        except RuleViolation as error:
            messages.error(request, f"#{submission.pk}: {error.message}")
    if count:
        messages.success(request, f"{done} {count} submission(s).")


class SubmissionActions:
    actions = ["rerun", "disqualify"]

    @admin.action(description="Re-run the evaluation (also reinstates disqualified ones)")
    def rerun(self, request, queryset):
        _run_actions(request, queryset, submission_rerun, "Re-queued")

    @admin.action(description="Disqualify (removes it from the leaderboard)")
    def disqualify(self, request, queryset):
        _run_actions(request, queryset, submission_disqualify, "Disqualified")


@admin.register(Submission)
class SubmissionAdmin(SubmissionActions, admin.ModelAdmin):
    list_display = ["pk", "race", "racer", "model", "sequence", "status", "score",
                    time_column("submitted_at", "Submitted")]  # finished: on its page (a wider list scrolled)
    list_filter = ["status", "race"]
    list_select_related = ["race", "user__racer", "model", "run"]
    search_fields = ["user__username", "user__racer__alias", "race__name", "model__name"]
    readonly_fields = ["race", "user", "model", "sequence", "status", "failure_reason", "submitted_at", "started_at",
                       "finished_at", "run_link", "attempts"]
    fields = readonly_fields

    class Media:
        css = LIST_STYLES

    def has_add_permission(self, request) -> bool:
        return False  # racers submit through the site; admins re-run

    @admin.display(description="Racer", ordering="user__racer__alias")
    def racer(self, submission: Submission) -> str:
        return racer_name(submission.user)

    @admin.display(description="Score")
    def score(self, submission: Submission) -> str:
        run = getattr(submission, "run", None)
        if run is None:
            return "—"
        return qualified_score(run) or "not qualified"

    @admin.display(description="Run")
    def run_link(self, submission: Submission) -> str:
        return format_html('<a href="{}">submission page</a>', reverse("races:submission_detail", args=[submission.pk]))

    @admin.display(description="Evaluation attempts")
    def attempts(self, submission: Submission) -> str:
        return attempts_table(list(submission.attempts.order_by("number")))


@admin.register(RacerModel)
class RacerModelAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "status", "size_bytes", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "owner__username", "sha256"]
    readonly_fields = ["owner", "name", "archive", "sha256", "size_bytes", "metadata", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # archives enter only through the validated upload


@admin.register(ModelEvaluation)
class ModelEvaluationAdmin(admin.ModelAdmin):
    list_display = ["pk", "model", "track", "direction", "race_type", "total_laps", "status", "created_at"]
    list_filter = ["status", "race_type"]
    search_fields = ["model__name", "model__owner__username"]
    readonly_fields = [f.name for f in ModelEvaluation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # racers start evaluations from their model's page (races.services.model_evaluations)


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(admin.ModelAdmin):
    list_display = ["race", "user", "ranking_score_ms", "best_lap_ms", "laps_completed", "submitted_at"]
    list_filter = ["race"]
    readonly_fields = [f.name for f in LeaderboardEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # rows come from scored runs only


# --- garage -------------------------------------------------------------------------------------------------------
class VehicleAdminForm(forms.ModelForm):
    class Meta:
        model = Vehicle
        fields = ["owner", "name", "config"]
        help_texts = {"config": "The vehicle document (as a vehicle file of sim/world/vehicles): sensor, "
                                "neural_network, action_space_type, action_space."}

    def clean(self):
        cleaned = super().clean()
        if isinstance(cleaned.get("config"), dict):
            try:
                vehicle_build(cleaned["config"], name=cleaned.get("name") or "")
            except RuleViolation as error:
                self.add_error("config", error.message)
        elif "config" in cleaned:
            self.add_error("config", "The vehicle must be a JSON object.")
        return cleaned


@admin.register(Vehicle)
class VehicleAdmin(admin.ModelAdmin):
    """Racers' garage vehicles; saved and deleted through ``races.services.garage``."""

    form = VehicleAdminForm
    list_display = ["name", "owner", "summary", "updated_at"]
    search_fields = ["name", "owner__username"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="Vehicle")
    def summary(self, vehicle: Vehicle) -> str:
        facts = vehicle_facts(vehicle.config)
        actions = "continuous" if facts["action_space_type"] == "continuous" else f"{len(facts['actions'])} actions"
        return f"{' + '.join(facts['sensors'])}, {facts['network']}, {actions}"

    def save_model(self, request, obj: Vehicle, form, change: bool) -> None:
        if change:
            vehicle_update(obj, obj.name, obj.config)
        else:
            created = vehicle_create(obj.owner, obj.name, obj.config)
            obj.pk, obj.config, obj.created_at = created.pk, created.config, created.created_at

    def delete_model(self, request, obj: Vehicle) -> None:
        vehicle_delete(obj)

    def delete_queryset(self, request, queryset) -> None:
        for vehicle in queryset:
            vehicle_delete(vehicle)


# --- seasons ----------------------------------------------------------------------------------------------------
class SeasonAdminForm(forms.ModelForm):
    class Meta:
        model = Season
        fields = ["name", "slug", "description", "kind", "organiser", "starts_at", "ends_at", "points_table",
                  "best_results", "final_size", "final_track"]

    def clean(self):
        cleaned = super().clean()
        try:
            season_validate_settings(cleaned)
        except RuleViolation as error:
            raise forms.ValidationError(error.message) from None
        return cleaned


class SeasonRaceInline(admin.TabularInline):
    """The races counting for the season (attach or detach them on the season's page or the schedule)."""

    model = Race
    fk_name = "season"
    extra = 0
    can_delete = False
    fields = ["name", "race_type", "opens_at", "closes_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Season)
class SeasonAdmin(admin.ModelAdmin):
    """Raw season data; the season's page (linked) shows the standings and runs it."""

    form = SeasonAdminForm
    list_display = ["name", "kind", "starts_at", "ends_at", "final_size", "finished_at", "final_race", "page_link"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["finished_at", "final_race", "final_note"]
    inlines = [SeasonRaceInline]

    @admin.display(description="Page")
    def page_link(self, season: Season) -> str:
        return format_html('<a href="{}">standings</a>', reverse("races:season_detail", args=[season.slug]))


# --- training ---------------------------------------------------------------------------------------------------
@admin.register(TrainingQuota)
class TrainingQuotaAdmin(admin.ModelAdmin):
    """The league's training quotas: one row, saved through ``training_quota_update``."""

    list_display = ["__str__", "max_concurrent_per_racer", "minutes_per_racer_per_day", "max_concurrent_total"]

    def changelist_view(self, request, extra_context=None):
        quota = training_quota()  # the one row exists: the list opens it at once
        return redirect(reverse("admin:races_trainingquota_change", args=[quota.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: TrainingQuota, form, change) -> None:
        try:
            training_quota_update(obj.max_concurrent_per_racer, obj.minutes_per_racer_per_day,
                                  obj.max_concurrent_total)
        except RuleViolation as error:
            messages.error(request, error.message)


class TrainingJobTrackInline(admin.TabularInline):
    model = TrainingJobTrack
    extra = 0
    can_delete = False
    readonly_fields = ["track", "position"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    """Racers' training jobs (read only: racers start and stop them; the admin can stop one)."""

    list_display = ["name", "owner", "status", "iterations", "episodes", "trained_minutes", "max_minutes", "model",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "owner__username"]
    inlines = [TrainingJobTrackInline]
    actions = ["stop_jobs"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TrainingJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # jobs start through training_start (quotas, validation)

    @admin.display(description="trained (min)")
    def trained_minutes(self, job: TrainingJob) -> str:
        return f"{job.trained_seconds / 60:.1f}"

    @admin.action(description="Stop (keeps the model trained so far)")
    def stop_jobs(self, request, queryset) -> None:
        stopped = 0
        for job in queryset:
            try:
                training_stop(job, job.owner)  # on the owner's behalf: the admin may stop any job
                stopped += 1
            except RuleViolation as error:
                messages.warning(request, f"{job.name}: {error.message}")
        messages.success(request, f"Stopping {stopped} training job(s).")
