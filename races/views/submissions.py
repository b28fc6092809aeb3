from __future__ import annotations

from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import conditional_page

from races.models import Run
from races.services.pictures import run_trajectory_png
from races.services.presenters import submission_summary, submission_with_history
from races.services.submissions import submission_queue_position
from races.views.common import png_response, visible_submission


def submission_detail(request, pk: int):
    submission = visible_submission(request, pk)
    is_mine = submission.user_id == request.user.pk
    run = Run.objects.filter(submission=submission).only("simtrace").first()
    can_download = run is not None and bool(run.simtrace) and (is_mine or request.user.is_staff)
    summary, events = submission_with_history(submission, submission_queue_position)
    return render(request, "races/submission_detail.html", {
        "submission": submission,
        "summary": summary,
        "events": events,
        "is_mine": is_mine,
        "simtrace_url": reverse("races:submission_simtrace", args=[pk]) if can_download else None,
    })


@cache_control(no_cache=True, private=True)
@conditional_page
def submission_status_json(request, pk: int):
    submission = visible_submission(request, pk)
    return JsonResponse(submission_summary(submission, submission_queue_position(submission)))


def submission_trajectory_png(request, pk: int):
    submission = visible_submission(request, pk)
    return png_response(run_trajectory_png(submission), "No run recorded yet.")


def submission_simtrace_csv(request, pk: int):
    """The run's simtrace (SPEC §7) for its racer and the admins: other racers see the replay, not the log."""
    submission = visible_submission(request, pk)
    run = Run.objects.filter(submission=submission).first()
    if run is None or not run.simtrace or (submission.user_id != request.user.pk and not request.user.is_staff):
        raise Http404("No simtrace for you here.")
    name = f"{submission.race.slug}-{submission.sequence}-simtrace.csv"
    return FileResponse(run.simtrace.open("rb"), as_attachment=True, filename=name, content_type="text/csv")
