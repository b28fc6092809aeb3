"""The racer's models: upload (validated by ``races.services.model_upload``), details and removal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from league.uploads import upload_refusal
from races.forms import ModelEvaluationForm, ModelUploadForm
from races.models import RacerModel
from races.services import RuleViolation, model_delete, model_upload, models_of
from races.services.pictures import model_reward_graph_png
from races.services.presenters import model_summary, network_words, qualified_score, sensor_words, submission_badge
from races.services.racer_models import UPLOAD_TOO_LARGE, model_contents, upload_limit_bytes
from races.services.submissions import races_open_to
from races.services.training import training_job_of_model
from races.views.common import png_response
from sim.race.scoring import format_lap_time


@login_required
def model_list(request):
    form = ModelUploadForm()
    status = 200
    if request.method == "POST":
        form = ModelUploadForm(request.POST, request.FILES)
        refusal = upload_refusal(request)  # the body passed the size limit: the file was not read
        if refusal is not None:
            form.is_valid()
            form.errors.pop("archive", None)  # "required" would be wrong: it was too large
            form.add_error("archive", refusal)
            status = 413
        elif form.is_valid():
            upload = form.cleaned_data["archive"]
            try:
                model = model_upload(request.user, form.cleaned_data["name"], upload, size=upload.size)
            except RuleViolation as error:
                form.add_error("name" if "model named" in error.message else "archive", error.message)
                status = 413 if error.code == UPLOAD_TOO_LARGE else status
            else:
                messages.success(request, f"Model '{model.name}' uploaded and validated.")
                return redirect("races:model_detail", pk=model.pk)
    models = list(models_of(request.user))
    for model in models:  # the vehicle in words ("front-facing camera", "3-layer CNN")
        model.sensor_text, model.network_text = sensor_words(model.sensors), network_words(model.neural_network)
    return render(request, "races/model_list.html", {
        "models": models, "form": form, "upload_limit_mb": upload_limit_bytes() // 2**20,
    }, status=status)


@login_required
def model_detail(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    submissions = list(model.submissions.select_related("race", "run").order_by("-submitted_at")[:50])
    for submission in submissions:
        run = getattr(submission, "run", None)
        submission.score_text = qualified_score(run) or ""
        submission.badge = submission_badge(submission.status, run.qualified if run is not None else None)
    evaluations = list(model.evaluations.select_related("track")[:10])
    for evaluation in evaluations:
        best = (evaluation.score or {}).get("best_lap_ms")
        evaluation.best_lap = format_lap_time(best) if best else None
    return render(request, "races/model_detail.html", {
        "model": model, "submissions": submissions, "summary": model_summary(model, model_contents(model)),
        "open_races": races_open_to(request.user) if model.status == RacerModel.Status.VALID else [],
        "evaluate_form": ModelEvaluationForm(), "evaluations": evaluations,
        "trained_by": training_job_of_model(model) if model.owner_id == request.user.pk else None,
    })


@login_required
def model_reward_graph(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    return png_response(model_reward_graph_png(model, model_contents(model)),
                        "This model's archive has no training metrics.", {"Cache-Control": "private, max-age=86400"})


@login_required
def model_download(request, pk: int):
    """The racer's own ``model.tar.gz``, as validated and stored (uploaded or trained here)."""
    model = get_object_or_404(models_of(request.user), pk=pk)
    return FileResponse(model.archive.open("rb"), as_attachment=True, filename=f"{model.name}.tar.gz",
                        content_type="application/gzip")


@login_required
@require_POST
def model_remove(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    model_delete(model)
    messages.success(request, f"Model '{model.name}' deleted.")
    return redirect("races:model_list")
