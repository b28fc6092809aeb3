"""The create-model page: the console's *Create model* form, which starts a training job."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from races.forms import TrainingForm
from races.models import Track
from races.services import RuleViolation
from races.services.garage import vehicle_facts
from races.services.reward_functions import reward_function_examples


@login_required
def training_new(request):
    status = 200
    if request.method == "POST":
        form = TrainingForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                # Imported here: the training services (and their engine target) are another module's, and this
                # page must load wherever they are not installed yet.
                from races.services.training import training_start
            except ImportError:
                form.add_error(None, "Training in the browser is not available on this server yet: train with "
                                     "python -m sim train and upload the archive.")
            else:
                try:
                    job = training_start(request.user, form.training_request())
                except RuleViolation as error:
                    form.add_error(error.field if error.field in form.fields else None, error.message)
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
    }, status=status)


def _fan(config: dict) -> dict:
    facts = vehicle_facts(config)
    return {"type": facts["action_space_type"], "actions": facts["actions"], "ranges": facts.get("ranges"),
            "summary": f"{' + '.join(facts['sensors'])} · {facts['network']} · "
                       + ("continuous" if facts["action_space_type"] == "continuous"
                          else f"{len(facts['actions'])} actions")}



