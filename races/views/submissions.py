from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from evaluator.services import queue_position
from races.services.runs import run_trajectory_png, submission_summary
from races.views.common import visible_submission


def submission_detail(request, pk: int):
    submission = visible_submission(request, pk)
    return render(request, "races/submission_detail.html", {
        "submission": submission,
        "summary": submission_summary(submission, queue_position(submission)),
        "events": submission.events.all(),
        "is_mine": submission.user_id == request.user.pk,
    })


def submission_status_json(request, pk: int):
    submission = visible_submission(request, pk)
    return JsonResponse(submission_summary(submission, queue_position(submission)))


def submission_trajectory_png(request, pk: int):
    submission = visible_submission(request, pk)
    png = run_trajectory_png(submission)
    if png is None:
        return HttpResponse(status=404)
    return HttpResponse(png, content_type="image/png")
