"""The garage pages: your vehicles and the example vehicles, the vehicle form with its live action table."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from races.forms import VehicleForm
from races.services import RuleViolation
from races.services.garage import (
    vehicle_action_table,
    vehicle_copy_example,
    vehicle_create,
    vehicle_delete,
    vehicle_examples,
    vehicle_facts,
    vehicle_update,
    vehicles_of,
)


@login_required
def garage(request):
    vehicles = [(vehicle, *_with_fan(vehicle.config)) for vehicle in vehicles_of(request.user)]
    examples = [(example, *_with_fan(example.config)) for example in vehicle_examples()]
    return render(request, "races/garage.html", {"vehicles": vehicles, "examples": examples})


def _with_fan(config: dict) -> tuple[dict, str]:
    """The vehicle's facts and the JSON its action-space picture is drawn from (garage.js)."""
    facts = vehicle_facts(config)
    return facts, json.dumps({"type": facts["action_space_type"], "actions": facts["actions"],
                              "ranges": facts.get("ranges")})


@login_required
@require_POST
def garage_copy_example(request, slug: str):
    try:
        vehicle = vehicle_copy_example(request.user, slug)
    except RuleViolation as error:
        messages.error(request, error.message)
        return redirect("races:garage")
    messages.success(request, f"'{vehicle.name}' is in your garage: change what you like.")
    return redirect("races:vehicle_edit", pk=vehicle.pk)


@login_required
def vehicle_new(request):
    return _vehicle_form(request, None)


@login_required
def vehicle_edit(request, pk: int):
    return _vehicle_form(request, get_object_or_404(vehicles_of(request.user), pk=pk))


def _vehicle_form(request, vehicle):
    status = 200
    if request.method == "POST":
        form = VehicleForm(request.POST)
        if "regenerate" in request.POST:  # without JavaScript: show the table the four inputs generate
            form.regenerate()
        elif form.is_valid():
            try:
                if vehicle is None:
                    vehicle = vehicle_create(request.user, form.cleaned_data["name"], form.document(),
                                             form.granularity())
                else:
                    vehicle_update(vehicle, form.cleaned_data["name"], form.document(), form.granularity())
            except RuleViolation as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, f"Vehicle '{vehicle.name}' saved.")
                return redirect("races:garage")
        status = 400 if form.errors else 200
    else:
        form = VehicleForm(config=vehicle.config if vehicle else None)
    return render(request, "races/vehicle_form.html", {"form": form, "vehicle": vehicle}, status=status)


@login_required
@require_POST
def vehicle_remove(request, pk: int):
    vehicle = get_object_or_404(vehicles_of(request.user), pk=pk)
    vehicle_delete(vehicle)
    messages.success(request, f"Vehicle '{vehicle.name}' deleted; models trained with it keep their own copy.")
    return redirect("races:garage")


@login_required
@require_GET
def action_table_json(request):
    """The action table the console's four inputs generate (the vehicle form's live table), or the refusal."""
    values = {}
    for key, kind in (("max_steering_angle", float), ("steering_granularity", int), ("max_speed", float),
                      ("speed_granularity", int)):
        text = request.GET.get(key, "")
        try:
            values[key] = kind(text)
        except ValueError:
            return JsonResponse({"detail": f"{key} must be a number, got {text[:20]!r}.", "field": key}, status=400)
    try:
        return JsonResponse({"actions": vehicle_action_table(values)})
    except RuleViolation as error:
        return JsonResponse({"detail": error.message, "field": error.field}, status=400)
