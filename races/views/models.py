from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from races.forms import ModelUploadForm
from races.services import RuleViolation, model_delete, model_upload, models_of


@login_required
def model_list(request):
    form = ModelUploadForm()
    if request.method == "POST":
        form = ModelUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["archive"]
            try:
                model = model_upload(request.user, form.cleaned_data["name"], upload, size=upload.size)
            except RuleViolation as error:
                form.add_error("archive" if "archive" in error.message.lower() else None, error.message)
            else:
                messages.success(request, f"Model '{model.name}' uploaded and validated.")
                return redirect("races:model_detail", pk=model.pk)
    return render(request, "races/model_list.html", {"models": models_of(request.user), "form": form})


@login_required
def model_detail(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    return render(request, "races/model_detail.html", {"model": model,
                                                        "submissions": model.submissions.select_related("race")[:50]})


@login_required
@require_POST
def model_remove(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    model_delete(model)
    messages.success(request, f"Model '{model.name}' deleted.")
    return redirect("races:model_list")
