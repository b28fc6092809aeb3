from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control

from races.models import Race, Track
from races.services import track_outline
from races.services.pictures import track_preview
from races.services.tracks import track_route_npy


def track_list(request):
    return render(request, "races/track_list.html", {"tracks": Track.objects.all()})


@cache_control(max_age=3600)
def track_preview_png(request, slug: str):
    return HttpResponse(track_preview(get_object_or_404(Track, slug=slug)), content_type="image/png")


@cache_control(max_age=3600)
def track_route_file(request, slug: str):
    """The track's ``.npy`` route file, to train on it locally (the geometry of a track never changes)."""
    response = HttpResponse(track_route_npy(get_object_or_404(Track, slug=slug)),
                            content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{slug}.npy"'
    return response


@cache_control(max_age=3600)
def track_outline_json(request, slug: str):
    """Centre line and borders in driving order (``?direction=clockwise``) for the replay canvas."""
    direction = request.GET.get("direction", Race.Direction.COUNTERCLOCKWISE)
    if direction not in Race.Direction.values:
        return JsonResponse({"detail": "direction must be counterclockwise or clockwise."}, status=400)
    return JsonResponse(track_outline(get_object_or_404(Track, slug=slug), direction))
