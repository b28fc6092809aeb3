"""Admin: every evaluation attempt (read-only), with the sandbox's state on this machine above the list."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone

from evaluator import sandbox
from evaluator.models import EvaluationAttempt


@admin.register(EvaluationAttempt)
class EvaluationAttemptAdmin(admin.ModelAdmin):
    list_display = ["pk", "submission", "match", "number", "status", "worker_id", "started_at", "lease_expires_at",
                    "finished_at", "sandbox_mode", "sandbox_seconds", "short_error"]
    list_filter = ["status", "sandbox_mode"]
    search_fields = ["error", "worker_id", "submission__pk", "match__pk"]
    list_select_related = ["submission", "match__race"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in EvaluationAttempt._meta.fields]

    def changelist_view(self, request, extra_context=None):
        healthy, line = sandbox.status_line(bool(getattr(settings, "PITLANE_SANDBOX_ALLOW_FALLBACK", False)))
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
