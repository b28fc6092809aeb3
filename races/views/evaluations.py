"""A racer's own evaluations of their models on any track: start one from the model page, follow it, see the laps,
trajectory and replay, download the simtrace. Only the model's owner sees them (others get a 404)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from races.forms import ModelEvaluationForm
from races.models import ModelEvaluation
from races.services import RuleViolation, models_of
from races.services.model_evaluations import (
    model_evaluation_create,
    model_evaluation_queue_position,
    model_evaluation_race,
    model_evaluation_summary,
    model_evaluations_of,
)
from races.services.pictures import model_evaluation_trajectory_png
from races.views.common import png_response


def _own_evaluation(request, pk: int) -> ModelEvaluation:
    return get_object_or_404(model_evaluations_of(request.user), pk=pk)


@login_required
@require_POST
def model_evaluate(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    form = ModelEvaluationForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{form.fields[field].label or field}: {' '.join(errors)}")
        return redirect("races:model_detail", pk=pk)
    try:
        evaluation = model_evaluation_create(request.user, model, **form.cleaned_data)
    except RuleViolation as error:
        messages.error(request, error.message)
        return redirect("races:model_detail", pk=pk)
    return redirect("races:evaluation_detail", pk=evaluation.pk)


@login_required
def evaluation_detail(request, pk: int):
    evaluation = _own_evaluation(request, pk)
    return render(request, "races/evaluation_detail.html", {
        "evaluation": evaluation, "race": model_evaluation_race(evaluation),
        "summary": model_evaluation_summary(evaluation, model_evaluation_queue_position(evaluation),
                                            include_trace=False),
    })


@login_required
@cache_control(no_cache=True, private=True)
def evaluation_status_json(request, pk: int):
    evaluation = _own_evaluation(request, pk)
    return JsonResponse(model_evaluation_summary(evaluation, model_evaluation_queue_position(evaluation)))


@login_required
def evaluation_trajectory_png(request, pk: int):
    return png_response(model_evaluation_trajectory_png(_own_evaluation(request, pk)), "Not evaluated yet.")


@login_required
def evaluation_simtrace_csv(request, pk: int):
    evaluation = _own_evaluation(request, pk)
    if not evaluation.simtrace:
        raise Http404("No simtrace recorded.")
    name = f"{evaluation.model.name}-{evaluation.track.slug}-evaluation-{evaluation.pk}-simtrace.csv"
    return FileResponse(evaluation.simtrace.open("rb"), as_attachment=True, filename=name, content_type="text/csv")
