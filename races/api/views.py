from __future__ import annotations

from functools import wraps

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from evaluator.services import queue_position
from races.api.serializers import (
    JoinSerializer,
    LeaderboardRowSerializer,
    ModelUploadSerializer,
    RacerModelSerializer,
    RaceSerializer,
    SubmissionCreateSerializer,
    TrackSerializer,
)
from races.models import Race, Submission, Track
from races.services import (
    RuleViolation,
    leaderboard_csv,
    leaderboard_table,
    model_delete,
    model_upload,
    models_of,
    participant_remove,
    race_close_early,
    race_create,
    race_delete,
    race_join,
    race_reset_invite_code,
    race_visible_to,
    submission_create,
)
from races.services.runs import submission_summary


def rules_as_json(view):
    """A refused business rule is a 400 (403 for permission rules) with the service's message."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except RuleViolation as error:
            code = status.HTTP_403_FORBIDDEN if error.code == "forbidden" else status.HTTP_400_BAD_REQUEST
            return Response({"detail": error.message, "code": error.code}, status=code)

    return wrapper


def _race(request, slug: str) -> Race:
    return get_object_or_404(race_visible_to(request.user), slug=slug)


@extend_schema(responses=TrackSerializer(many=True))
@api_view(["GET"])
@permission_classes([AllowAny])
def tracks(request):
    return Response(TrackSerializer(Track.objects.all(), many=True).data)


@extend_schema(responses=TrackSerializer)
@api_view(["GET"])
@permission_classes([AllowAny])
def track_detail(request, slug: str):
    return Response(TrackSerializer(get_object_or_404(Track, slug=slug)).data)


@extend_schema(
    request=ModelUploadSerializer, responses={200: RacerModelSerializer(many=True), 201: RacerModelSerializer}
)
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
@parser_classes([MultiPartParser])
@rules_as_json
def models(request):
    if request.method == "GET":
        return Response(RacerModelSerializer(models_of(request.user), many=True).data)
    upload = ModelUploadSerializer(data=request.data)
    upload.is_valid(raise_exception=True)
    archive = upload.validated_data["archive"]
    model = model_upload(request.user, upload.validated_data["name"], archive, size=archive.size)
    return Response(RacerModelSerializer(model).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=RacerModelSerializer)
@api_view(["GET", "DELETE"])
@permission_classes([IsAuthenticated])
def model_detail(request, pk: int):
    model = get_object_or_404(models_of(request.user), pk=pk)
    if request.method == "DELETE":
        model_delete(model)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(RacerModelSerializer(model).data)


@extend_schema(
    request=RaceSerializer,
    responses=RaceSerializer(many=True),
    parameters=[OpenApiParameter("phase", str, enum=["open", "upcoming", "closed"]),
                OpenApiParameter("kind", str, enum=["virtual_circuit", "community"])],
)
@api_view(["GET", "POST"])
@permission_classes([AllowAny])
@parser_classes([JSONParser])
@rules_as_json
def races(request):
    if request.method == "POST":
        if not request.user.is_authenticated:
            return Response({"detail": "Sign in to create a community race."}, status=status.HTTP_401_UNAUTHORIZED)
        serializer = RaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        race = race_create(Race.Kind.COMMUNITY, organiser=request.user, **serializer.validated_data)
        return Response(RaceSerializer(race).data | {"invite_code": race.invite_code}, status=status.HTTP_201_CREATED)
    queryset = race_visible_to(request.user)
    kind = request.query_params.get("kind")
    if kind:
        if kind not in Race.Kind.values:
            return Response({"detail": f"kind must be one of {', '.join(Race.Kind.values)}"}, status=400)
        queryset = queryset.filter(kind=kind)
    phase = request.query_params.get("phase")
    if phase and phase not in ("open", "upcoming", "closed"):
        return Response({"detail": "phase must be open, upcoming or closed"}, status=400)
    selected = [race for race in queryset if not phase or race.phase() == phase]
    return Response(RaceSerializer(selected, many=True).data)


@extend_schema(responses=RaceSerializer)
@api_view(["GET", "DELETE"])
@permission_classes([AllowAny])
@rules_as_json
def race_detail(request, slug: str):
    race = _race(request, slug)
    if request.method == "DELETE":
        race_delete(race, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = RaceSerializer(race).data
    if race.is_community and race.organiser_id == request.user.pk:
        data["invite_code"] = race.invite_code
    return Response(data)


@extend_schema(responses=LeaderboardRowSerializer(many=True))
@api_view(["GET"])
@permission_classes([AllowAny])
def race_leaderboard(request, slug: str):
    return Response(leaderboard_table(_race(request, slug)))


@extend_schema(responses={(200, "text/csv"): str})
@api_view(["GET"])
@permission_classes([AllowAny])
def race_leaderboard_csv(request, slug: str):
    race = _race(request, slug)
    response = HttpResponse(leaderboard_csv(race), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{race.slug}-leaderboard.csv"'
    return response


@extend_schema(request=JoinSerializer, responses=RaceSerializer)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@rules_as_json
def race_join_code(request):
    serializer = JoinSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return Response(RaceSerializer(race_join(serializer.validated_data["code"], request.user)).data)


@extend_schema(request=None, responses={200: dict})
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@rules_as_json
def race_reset_code(request, slug: str):
    return Response({"invite_code": race_reset_invite_code(_race(request, slug), request.user)})


@extend_schema(request=None, responses=RaceSerializer)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@rules_as_json
def race_close(request, slug: str):
    race = _race(request, slug)
    race_close_early(race, request.user)
    return Response(RaceSerializer(race).data)


@extend_schema(responses={200: dict})
@api_view(["GET"])
@permission_classes([IsAuthenticated])
@rules_as_json
def race_participants(request, slug: str):
    race = _race(request, slug)
    if race.organiser_id != request.user.pk and not request.user.is_staff:
        raise RuleViolation("Only the organiser can list participants.", "forbidden")
    rows = race.participants.filter(removed_at__isnull=True).select_related("user__racer")
    return Response([{"user": p.user_id, "racer": getattr(getattr(p.user, "racer", None), "alias", ""),
                      "joined_at": p.joined_at} for p in rows])


@extend_schema(request=None, responses={204: None})
@api_view(["DELETE"])
@permission_classes([IsAuthenticated])
@rules_as_json
def race_participant_remove(request, slug: str, user_id: int):
    race = _race(request, slug)
    participant_remove(race, request.user, get_object_or_404(get_user_model(), pk=user_id))
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=SubmissionCreateSerializer, responses={200: dict, 201: dict})
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
@parser_classes([JSONParser])
@rules_as_json
def submissions(request):
    if request.method == "GET":
        mine = Submission.objects.filter(user=request.user).select_related("race", "model", "user__racer")[:100]
        return Response([submission_summary(s) | {"run": None} for s in mine])
    serializer = SubmissionCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    race = _race(request, serializer.validated_data["race"])
    model = get_object_or_404(models_of(request.user), pk=serializer.validated_data["model"])
    submission = submission_create(request.user, race, model)
    return Response(submission_summary(submission, queue_position(submission)), status=status.HTTP_201_CREATED)


@extend_schema(responses={200: dict})
@api_view(["GET"])
@permission_classes([AllowAny])
def submission_detail(request, pk: int):
    submission = get_object_or_404(
        Submission.objects.select_related("race", "model", "user__racer").filter(
            race__in=race_visible_to(request.user)
        ),
        pk=pk,
    )
    return Response(submission_summary(submission, queue_position(submission)))
