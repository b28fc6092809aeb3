"""The training console's pages: the racer's training jobs, and each job's live page (owner only) with the small
JSON it polls. Rules are ``races.services.training``'s; pictures ``races.services.pictures``'."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from races.models import TrainingJob
from races.services import RuleViolation
from races.services.pictures import training_trajectories_png
from races.services.presenters import network_words, sensor_words
from races.services.training import (
    training_job_for,
    training_jobs_of,
    training_progress,
    training_stop,
    training_stored_file,
)


def own_job(request, pk: int) -> TrainingJob:
    """The racer's own job, else 404 (another racer's job is not even confirmed to exist)."""
    try:
        return training_job_for(request.user, pk)
    except TrainingJob.DoesNotExist:
        raise Http404("No such training job.") from None


@login_required
def training_list(request):
    jobs = list(training_jobs_of(request.user)[:200])
    return render(request, "races/training_list.html", {"jobs": jobs})


@login_required
def training_detail(request, pk: int):
    job = own_job(request, pk)
    tracks = [row.track for row in job.track_rows.select_related("track")]
    vehicle = job.vehicle or {}
    return render(request, "races/training_detail.html", {
        "job": job,
        "progress": training_progress(job),
        "tracks": tracks,
        "sensors": sensor_words(vehicle.get("sensor", [])),
        "network": network_words(vehicle.get("neural_network", "")),
        "progress_url": reverse("races:training_progress", args=[job.pk]),
    })


@login_required
@cache_control(no_cache=True, private=True)
def training_progress_json(request, pk: int):
    """What the live page polls every ~2 s: ``training_progress`` plus the URLs of its pictures."""
    job = own_job(request, pk)
    data = training_progress(job)
    iteration = data["trajectories_iteration"]
    data["trajectories_url"] = (f"{reverse('races:training_trajectories', args=[pk])}?i={iteration}"
                                if iteration is not None else None)
    data["model_url"] = reverse("races:model_detail", args=[job.model_id]) if job.model_id else None
    data["submission_url"] = (reverse("races:submission_detail", args=[job.submission_id])
                              if job.submission_id else None)
    return JsonResponse(data)


@login_required
def training_trajectories(request, pk: int):
    png = training_trajectories_png(own_job(request, pk))
    if png is None:
        raise Http404("No evaluation episode yet.")
    return HttpResponse(png, content_type="image/png")


@login_required
def training_reward_graph(request, pk: int):
    """The simulator's own reward graph PNG, as last stored (the page draws the live one with Chart.js)."""
    png = training_stored_file(own_job(request, pk), "reward_graph.png")
    if png is None:
        raise Http404("No reward graph yet.")
    return HttpResponse(png, content_type="image/png")


@login_required
@require_POST
def training_stop_view(request, pk: int):
    job = own_job(request, pk)
    try:
        training_stop(job, request.user)
    except RuleViolation as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Stopping: the model trained so far is being saved.")
    return redirect("races:training_detail", pk=pk)
