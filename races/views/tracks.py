from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control

from races.models import Race, Track
from races.services import track_outline
from races.services.pictures import track_preview


def track_list(request):
    return render(request, "races/track_list.html", {"tracks": Track.objects.all()})


@cache_control(max_age=3600)
def track_preview_png(request, slug: str):
    return HttpResponse(track_preview(get_object_or_404(Track, slug=slug)), content_type="image/png")


@cache_control(max_age=3600)
def track_outline_json(request, slug: str):
    """Centre line and borders in driving order (``?direction=clockwise``) for the replay canvas."""
    direction = request.GET.get("direction", Race.Direction.COUNTERCLOCKWISE)
    if direction not in Race.Direction.values:
        return JsonResponse({"detail": "direction must be counterclockwise or clockwise."}, status=400)
    return JsonResponse(track_outline(get_object_or_404(Track, slug=slug), direction))
