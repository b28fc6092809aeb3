"""The training console's pages: the create-model form (the console's *Create model*, which starts a training job),
the racer's training jobs, and each job's live page (owner only) with the small JSON it polls. Rules are
``races.services.training``'s; pictures ``races.services.pictures``'."""

from __future__ import annotations

import tempfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from races.forms import TrainingForm
from races.models import Track, TrainingJob
from races.services import RuleViolation
from races.services.garage import vehicle_facts
from races.services.pictures import training_trajectories_png
from races.services.presenters import network_words, sensor_words
from races.services.reward_functions import reward_function_examples
from races.services.training import (
    training_camera_gif,
    training_job_for,
    training_jobs_of,
    training_logs_archive,
    training_progress,
    training_start,
    training_stop,
    training_stored_file,
)
from races.views.common import png_response

# The service names a refusal's field after TrainingRequest; the form's fields are named for the racer.
TRAINING_FIELDS = {"reward_function_source": "reward_function", "tracks": "track", "hyperparameters": None}


@login_required
def training_new(request):
    status = 200
    if request.method == "POST":
        form = TrainingForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                job = training_start(request.user, form.training_request())
            except RuleViolation as error:
                field = TRAINING_FIELDS.get(error.field, error.field)
                form.add_error(field if field in form.fields else None, error.message)
            else:
                return redirect("races:training_detail", pk=job.pk)
        status = 400
    else:
        initial = {key: request.GET[key] for key in ("vehicle", "clone_of", "track") if request.GET.get(key)}
        form = TrainingForm(initial=initial, user=request.user)
    fans = {key: _fan(config) for key, _, config in form.vehicles}
    directions = {track.slug: track.directions for track in Track.objects.all()}
    return render(request, "races/training_form.html", {
        "form": form, "fans": fans, "track_directions": directions,
        "reward_examples": reward_function_examples(),
        "validate_url": reverse("races:api_reward_function_validate"),
        "racing_line_url": reverse("races:api_reward_function_racing_line"),
    }, status=status)


def _fan(config: dict) -> dict:
    facts = vehicle_facts(config)
    return {"type": facts["action_space_type"], "actions": facts["actions"], "ranges": facts.get("ranges"),
            "max_speed": facts["max_speed"],
            "summary": f"{' + '.join(facts['sensors'])} · {facts['network']} · "
                       + ("continuous" if facts["action_space_type"] == "continuous"
                          else f"{len(facts['actions'])} actions")}


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
    sensors = vehicle.get("sensor", [])
    return render(request, "races/training_detail.html", {
        "job": job,
        "progress": training_progress(job),
        "tracks": tracks,
        "camera_width": 960 if "STEREO_CAMERAS" in sensors else 480,  # 3x the lenses' 160 x 120 pixels
        "sensors": sensor_words(sensors),
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
    camera = data["camera_iteration"]
    data["camera_url"] = (f"{reverse('races:training_camera', args=[pk])}?i={camera}"
                          if camera is not None else None)
    data["model_url"] = reverse("races:model_detail", args=[job.model_id]) if job.model_id else None
    data["submission_url"] = (reverse("races:submission_detail", args=[job.submission_id])
                              if job.submission_id else None)
    return JsonResponse(data)


@login_required
def training_trajectories(request, pk: int):
    return png_response(training_trajectories_png(own_job(request, pk)), "No evaluation episode yet.")


@login_required
def training_camera(request, pk: int):
    """What the first evaluation car saw in the latest iteration, as an animated GIF (made from checked frames)."""
    gif = training_camera_gif(own_job(request, pk))
    if gif is None:
        raise Http404("No camera film yet.")
    # Its URL names the iteration (?i=): a new film is a new URL, so the browser may keep this one.
    return HttpResponse(gif, content_type="image/gif", headers={"Cache-Control": "private, max-age=3600"})


@login_required
def training_reward_graph(request, pk: int):
    """The simulator's own reward graph PNG, as last stored (the page draws the live one with Chart.js)."""
    return png_response(training_stored_file(own_job(request, pk), "reward_graph.png"), "No reward graph yet.")


@login_required
def training_logs(request, pk: int):
    """The job's model folder without checkpoints, as a .tar.gz that deepracer-utils reads once unpacked."""
    job = own_job(request, pk)
    if not job.stored_files:
        raise Http404("Nothing stored yet: the first files arrive with the first iteration.")
    archive = tempfile.SpooledTemporaryFile(max_size=16 * 1024**2)  # noqa: SIM115 (FileResponse closes it)
    training_logs_archive(job, archive)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"{job.name}-logs.tar.gz",
                        content_type="application/gzip")


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
