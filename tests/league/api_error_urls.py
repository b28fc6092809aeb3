"""URLs for test_api_errors: views that fail the way real API views can."""

from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response


@api_view(["GET"])
def drf_crash(request):
    raise RuntimeError("boom inside a DRF view")


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def private(request):
    return Response({"user": request.user.get_username()})


def plain_crash(request):
    raise RuntimeError("boom inside a plain Django view")


urlpatterns = [
    path("api/drf-crash/", drf_crash),
    path("api/plain-crash/", plain_crash),
    path("api/private/", private),
    path("page-crash/", plain_crash),
    path("", include("league.urls")),
]
handler404 = "league.views.page_not_found"
handler500 = "league.views.server_error"
