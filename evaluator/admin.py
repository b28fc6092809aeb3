"""Admin: every evaluation attempt (read-only), and the evaluation queue in the order workers take it, with the
sandbox's state on this machine above both lists. Targets are shown through their kind's registered target."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html

from evaluator import sandbox
from evaluator.config import evaluator_settings
from evaluator.engine import (
    TargetActionRefused,
    TargetLabel,
    UnknownTargetKind,
    pending_in_fair_order,
    target_actions,
    target_for,
)
from evaluator.models import EvaluationAttempt, EvaluationQueue


def label_rows(attempts: Iterable[EvaluationAttempt]) -> None:
    """Give each row of one page its target's label (one query per kind, not one per row)."""
    rows = list(attempts)
    by_kind: dict[str, set[int]] = {}
    for attempt in rows:
        by_kind.setdefault(attempt.target_kind, set()).add(attempt.target_id)
    labels: dict[tuple[str, int], TargetLabel] = {}
    for kind, ids in by_kind.items():
        try:
            described = target_for(kind).describe(ids)
        except UnknownTargetKind:
            described = {}
        labels |= {(kind, target_id): label for target_id, label in described.items()}
    for attempt in rows:
        attempt.target_label = labels.get((attempt.target_kind, attempt.target_id))


LIST_STYLES = {"all": ["evaluator/admin_lists.css"]}  # the Media css of admins with wide change lists


def time_column(field: str, description: str) -> Callable[[object], str]:
    """A list column showing ``field`` as ``2026-12-04 10:47 UTC`` (the league's zone, named so it cannot be read as
    the admin's local time): the default, "Dec. 4, 2026, 10:47 a.m. UTC", wrapped over three lines and pushed the
    wide lists past a 1280 px screen."""

    @admin.display(description=description, ordering=field)
    def column(row: object) -> str:
        moment = getattr(row, field)
        if moment is None:
            return "-"
        local = timezone.localtime(moment)  # the date and the time each keep their line (admin_lists.css)
        return format_html('<span class="list-time">{}</span> <span class="list-time">{}</span>',
                           f"{local:%Y-%m-%d}", f"{local:%H:%M %Z}")

    column.__name__ = f"{field}_column"
    return column


class TargetColumn:
    """The target of each row, as its kind describes it (labels are attached per request, never to ``self``)."""

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        label_rows(changelist.result_list)  # evaluates this page once; the template shows these same objects
        return changelist

    @admin.display(description="Target")
    def target(self, attempt: EvaluationAttempt) -> str:
        label = getattr(attempt, "target_label", None)
        if label is None:
            return f"{attempt.target_kind} {attempt.target_id}"
        return format_html('<a href="{}">{}</a>', label.url, label.text) if label.url else label.text


@admin.register(EvaluationAttempt)
class EvaluationAttemptAdmin(TargetColumn, admin.ModelAdmin):
    list_display = ["pk", "target", "number", "status", "worker_id", time_column("started_at", "Started"),
                    time_column("lease_expires_at", "Lease expires"), time_column("finished_at", "Finished"),
                    "sandbox_mode", "sandbox_seconds", "short_error"]
    list_filter = ["status", "target_kind", "sandbox_mode"]
    search_fields = ["error", "worker_id", "=target_id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in EvaluationAttempt._meta.fields]

    class Media:
        css = LIST_STYLES

    def changelist_view(self, request, extra_context=None):
        healthy, line = sandbox.status_line(evaluator_settings().sandbox_allow_fallback)
        messages.add_message(request, messages.INFO if healthy else messages.WARNING, line)
        recent_fallback = EvaluationAttempt.objects.filter(
            sandbox_mode="fallback", finished_at__gte=timezone.now() - timedelta(days=1)
        ).count()
        if recent_fallback:
            messages.warning(request, f"{recent_fallback} evaluation(s) in the last 24 h ran in the fallback sandbox.")
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or request.method == "GET"  # a record of what happened: viewable, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Sandbox s")
    def sandbox_seconds(self, attempt: EvaluationAttempt):
        return (attempt.timings or {}).get("sandbox_s")

    @admin.display(description="Error")
    def short_error(self, attempt: EvaluationAttempt) -> str:
        return attempt.error[:120]


@admin.register(EvaluationQueue)
class EvaluationQueueAdmin(TargetColumn, admin.ModelAdmin):
    """Attempts waiting or running, with each waiting one's position in the order the workers will take them."""

    list_display = ["pk", "position", "target", "attempt", "created_at", "worker", "lease"]
    list_filter = ["target_kind"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status__in=EvaluationAttempt.ACTIVE).order_by("status",
                                                                                                   "created_at")

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # Computed per request, once for the whole queue, and attached to this request's rows.
        positions = {attempt.pk: position for position, attempt in enumerate(pending_in_fair_order(), start=1)}
        for attempt in changelist.result_list:
            attempt.queue_position = positions.get(attempt.pk)
        # The count under the list names how many wait and how many run (its pagination.html template).
        by_status = dict(changelist.queryset.order_by().values_list("status").annotate(n=Count("pk")))
        changelist.waiting = by_status.get(EvaluationAttempt.Status.PENDING, 0)
        changelist.running = by_status.get(EvaluationAttempt.Status.RUNNING, 0)
        return changelist

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": "Evaluation queue (in the order workers take it)"} | (extra_context or {})
        if not sandbox.bubblewrap_works():
            messages.warning(request, "bubblewrap is unavailable on this machine: " + (
                "evaluations run in the weaker rlimits-only fallback sandbox."
                if evaluator_settings().sandbox_allow_fallback
                else "evaluations are refused until it is installed (or the fallback is allowed)."))
        return super().changelist_view(request, extra_context)

    def get_actions(self, request):
        """The actions the registered target kinds offer (e.g. disqualify a submission), each on its own kind."""
        actions = super().get_actions(request)
        for kind, offered in target_actions().items():
            for name, action in offered.items():
                key = f"{kind}__{name}"
                actions[key] = (_target_action(kind, action), key, f"{action.description} ({kind}s)")
        return actions

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None  # the list with its actions, no edit form

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Position")
    def position(self, attempt: EvaluationAttempt):
        position = getattr(attempt, "queue_position", None)
        return "—" if position is None else position

    @admin.display(description="Attempt")
    def attempt(self, attempt: EvaluationAttempt) -> str:
        return f"#{attempt.number} {attempt.status}"

    @admin.display(description="Worker")
    def worker(self, attempt: EvaluationAttempt) -> str:
        return attempt.worker_id or "—"

    @admin.display(description="Lease expires")
    def lease(self, attempt: EvaluationAttempt):
        return attempt.lease_expires_at or "—"


def _target_action(kind: str, action):
    def run(modeladmin, request, queryset) -> None:
        done = 0
        for attempt in queryset.filter(target_kind=kind):
            try:
                action.run(attempt.target_id)
                done += 1
            except TargetActionRefused as error:
                messages.error(request, f"{kind} {attempt.target_id}: {error}")
        if done:
            messages.success(request, f"{action.done} {done} {action.noun}.")

    return run
