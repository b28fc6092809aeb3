"""The league's REST API: thin DRF views over ``races.services``.

Every race is looked up through ``race_visible_to`` (a private race is a 404 with no hint); every refused
business rule becomes a JSON error carrying the service's message; lists are paginated.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.validators import slug_re
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from league.uploads import upload_refusal
from races.api.schema import LeagueAutoSchema
from races.api.serializers import (
    ExampleVehicleSerializer,
    InviteCodeSerializer,
    JoinSerializer,
    LeaderboardRowSerializer,
    ModelEvaluationCreateSerializer,
    ModelEvaluationSerializer,
    ModelUploadSerializer,
    ParticipantSerializer,
    RacerModelSerializer,
    RacerProfileSerializer,
    RaceSerializer,
    RacingLineRequestSerializer,
    RacingLineRewardSerializer,
    RewardCheckRequestSerializer,
    RewardCheckSerializer,
    SeasonSerializer,
    StandingsSerializer,
    SubmissionCreateSerializer,
    SubmissionSerializer,
    TrackSerializer,
    TrainingCloneSerializer,
    TrainingCreateSerializer,
    TrainingJobSerializer,
    VehicleSerializer,
    VehicleWriteSerializer,
)
from races.models import BracketMatch, Race, Submission, Track, TrainingJob
from races.services import (
    PHASES,
    RuleViolation,
    leaderboard_cache_key,
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
    races_in_phase,
    submission_allowance,
    submission_create,
)
from races.services.garage import vehicle_create, vehicle_delete, vehicle_examples, vehicle_update, vehicles_of
from races.services.model_evaluations import (
    model_evaluation_create,
    model_evaluation_queue_position,
    model_evaluation_summary,
    model_evaluations_of,
)
from races.services.presenters import bracket_match_detail, bracket_summary, submission_summary
from races.services.profiles import racer_by_alias, racer_profile
from races.services.racer_models import UPLOAD_TOO_LARGE
from races.services.reward_functions import (
    SOURCE_TOO_LARGE,
    reward_function_check_source,
    reward_function_racing_line,
    reward_function_throttle,
    reward_function_validate,
)
from races.services.seasons import (
    season_standings,
    season_standings_csv,
    season_standings_table,
    season_visible_to,
)
from races.services.submissions import submission_queue_position
from races.services.training import (
    TrainingRequest,
    training_clone,
    training_job_for,
    training_jobs_of,
    training_progress,
    training_start,
    training_stop,
)


class RuleRefused(APIException):
    """A refused business rule: 400 (403 for permission rules, 413 for the upload limit) with the service's
    message and code."""

    STATUS_BY_CODE = {
        "forbidden": status.HTTP_403_FORBIDDEN,
        UPLOAD_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        SOURCE_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "throttled": status.HTTP_429_TOO_MANY_REQUESTS,
        "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    }

    def __init__(self, violation: RuleViolation) -> None:
        self.status_code = self.STATUS_BY_CODE.get(violation.code, status.HTTP_400_BAD_REQUEST)
        where = {"field": violation.field} if violation.field else {}
        super().__init__({"detail": violation.message, "code": violation.code} | where)


class LeagueView(APIView):
    """Every API view: refused rules as JSON errors, and a schema that lists the errors each operation gives."""

    schema = LeagueAutoSchema()
    # Statuses the services may refuse with, per method (the schema adds the ones DRF itself gives).
    rule_refusals: dict[str, tuple[int, ...]] = {}

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(RuleRefused(exc) if isinstance(exc, RuleViolation) else exc)


def visible_race(request, slug: str) -> Race:
    return get_object_or_404(race_visible_to(request.user), slug=slug)


def visible_submissions(user):
    """Runs are as public as their race: leaderboards link to them."""
    return Submission.objects.select_related("race__track", "model", "user__racer").filter(
        race__in=race_visible_to(user)
    )


# --- tracks ---------------------------------------------------------------------------------------------------
class TrackList(LeagueView, generics.ListAPIView):
    """The tracks races can use (built-in and imported)."""

    permission_classes = [AllowAny]
    serializer_class = TrackSerializer
    queryset = Track.objects.all()


class TrackDetail(LeagueView, generics.RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = TrackSerializer
    queryset = Track.objects.all()
    lookup_field = "slug"


# --- models ---------------------------------------------------------------------------------------------------
class ModelList(LeagueView, generics.ListCreateAPIView):
    """Your uploaded models; POST a ``model.tar.gz`` (multipart: ``name``, ``archive``) to add one."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]
    serializer_class = RacerModelSerializer

    def get_queryset(self):
        return models_of(self.request.user)

    @extend_schema(request={"multipart/form-data": ModelUploadSerializer}, responses={201: RacerModelSerializer})
    def post(self, request, *args, **kwargs):
        upload = ModelUploadSerializer(data=request.data)
        refusal = upload_refusal(request)  # the body passed the size limit while streaming: the file was not read
        if refusal is not None:
            raise RuleViolation(refusal, UPLOAD_TOO_LARGE)
        upload.is_valid(raise_exception=True)
        archive = upload.validated_data["archive"]
        model = model_upload(request.user, upload.validated_data["name"], archive, size=archive.size)
        return Response(RacerModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetail(LeagueView, generics.RetrieveDestroyAPIView):
    """One of your models; DELETE hides a model that raced (its runs stay) and removes an unused one."""

    permission_classes = [IsAuthenticated]
    serializer_class = RacerModelSerializer

    def get_queryset(self):
        return models_of(self.request.user)

    def perform_destroy(self, instance) -> None:
        model_delete(instance)


# --- garage ---------------------------------------------------------------------------------------------------
class VehicleList(LeagueView, generics.ListCreateAPIView):
    """Your garage; POST a vehicle (name, sensor, neural_network, action_space_type, action_space) to add one."""

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    serializer_class = VehicleSerializer

    def get_queryset(self):
        return vehicles_of(self.request.user)

    @extend_schema(request=VehicleWriteSerializer, responses={201: VehicleSerializer})
    def post(self, request, *args, **kwargs):
        given = VehicleWriteSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        vehicle = vehicle_create(request.user, given.validated_data["name"], given.document())
        return Response(VehicleSerializer(vehicle).data, status=status.HTTP_201_CREATED)


class VehicleDetail(LeagueView, generics.RetrieveDestroyAPIView):
    """One of your vehicles; PUT replaces it (the same body as creating one), DELETE removes it (models trained
    with it keep their own copy)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    serializer_class = VehicleSerializer

    def get_queryset(self):
        return vehicles_of(self.request.user)

    @extend_schema(request=VehicleWriteSerializer, responses={200: VehicleSerializer})
    def put(self, request, *args, **kwargs):
        vehicle = self.get_object()
        given = VehicleWriteSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        vehicle_update(vehicle, given.validated_data["name"], given.document())
        return Response(VehicleSerializer(vehicle).data)

    def perform_destroy(self, instance) -> None:
        vehicle_delete(instance)


class VehicleExamples(LeagueView, generics.ListAPIView):
    """The example vehicles shipped with Pitlane (read-only; train with one, or copy its config)."""

    permission_classes = [AllowAny]
    serializer_class = ExampleVehicleSerializer
    pagination_class = None

    def get_queryset(self):
        return vehicle_examples()


# --- reward functions -----------------------------------------------------------------------------------------
class RewardFunctionValidate(LeagueView):
    """Validate a reward function as ``python -m sim validate-reward`` does: syntax and imports, then the function
    run on a few synthetic cars of the track, in the evaluator's sandbox. An invalid function is a 200 with
    ``valid: false``, the message and its line."""

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    rule_refusals = {"POST": (413, 429, 503)}

    @extend_schema(request=RewardCheckRequestSerializer, responses={200: RewardCheckSerializer})
    def post(self, request):
        given = RewardCheckRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        reward_function_check_source(given.validated_data["source"])  # an oversize text is refused before counting
        reward_function_throttle(request.user)
        check = reward_function_validate(given.validated_data["source"], given.validated_data["track"],
                                         given.validated_data["direction"])
        return Response(check.to_json())


class RewardFunctionRacingLine(LeagueView):
    """The community racing-line example for a track and a car: the track's minimum-curvature racing line, with
    target speeds up to the car's top speed, pasted into the reward function (as ``python -m sim train
    --reward-example community_racing_line --track NAME`` does)."""

    permission_classes = [IsAuthenticated]
    rule_refusals = {"GET": (400,)}

    @extend_schema(parameters=[RacingLineRequestSerializer], responses={200: RacingLineRewardSerializer})
    def get(self, request):
        given = RacingLineRequestSerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        track, direction = given.validated_data["track"], given.validated_data["direction"]
        max_speed = given.validated_data["max_speed"]
        source = reward_function_racing_line(track, direction, max_speed)
        return Response({"source": source, "track": track.slug, "direction": direction, "max_speed": max_speed})


# --- races ----------------------------------------------------------------------------------------------------
@extend_schema_view(  # the filters are read by GET only
    get=extend_schema(
        parameters=[
            OpenApiParameter("phase", str, enum=["", *PHASES], description="open, upcoming or closed (empty: all)"),
            OpenApiParameter("kind", str, enum=["", *Race.Kind.values],
                             description="virtual_circuit or community (empty: both)"),
        ]
    )
)
class RaceList(LeagueView, generics.ListCreateAPIView):
    """Races you can see; POST creates a private community race (you are its organiser)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [JSONParser]
    serializer_class = RaceSerializer

    def get_queryset(self):
        races = race_visible_to(self.request.user)
        kind = self.request.query_params.get("kind")
        if kind:
            if kind not in Race.Kind.values:
                raise RuleViolation(f"kind must be one of {', '.join(Race.Kind.values)}.")
            races = races.filter(kind=kind)
        phase = self.request.query_params.get("phase")
        if phase:
            if phase not in PHASES:
                raise RuleViolation("phase must be open, upcoming or closed.")
            return races_in_phase(races, phase)
        return races.order_by("-opens_at", "pk")

    def perform_create(self, serializer) -> None:
        serializer.instance = race_create(Race.Kind.COMMUNITY, organiser=self.request.user, **serializer.validated_data)


class RaceDetail(LeagueView, generics.RetrieveDestroyAPIView):
    """A race's settings and phase (plus your remaining submissions); DELETE: organisers delete their race."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = RaceSerializer
    lookup_field = "slug"
    rule_refusals = {"DELETE": (403,)}  # organisers only

    def get_queryset(self):
        return race_visible_to(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        race = self.get_object()
        data = self.get_serializer(race).data
        if request.user.is_authenticated:
            data["my_allowance"] = submission_allowance(race, request.user)
        return Response(data)

    def perform_destroy(self, instance) -> None:
        race_delete(instance, self.request.user)


class RaceLeaderboard(LeagueView, generics.ListAPIView):
    """Ranked rows: lower time first, ties to the earlier submission."""

    permission_classes = [AllowAny]
    serializer_class = LeaderboardRowSerializer

    def get_queryset(self):
        return leaderboard_table(visible_race(self.request, self.kwargs["slug"]))

    def list(self, request, *args, **kwargs):
        """Each page is serialised once per board version; a poller sending the ETag back gets a 304."""
        race = visible_race(request, self.kwargs["slug"])  # visibility first: a 304 must not leak a race
        key = f"{leaderboard_cache_key(race)}:api:{request.get_host()}{request.get_full_path()}"
        etag = f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        data = cache.get(key)
        if data is None:
            page = self.paginate_queryset(leaderboard_table(race))
            data = self.get_paginated_response(self.get_serializer(page, many=True).data).data
            cache.set(key, data, timeout=600)
        return Response(data, headers=headers)


class RaceLeaderboardCsv(LeagueView):
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, slug: str):
        race = visible_race(request, slug)
        response = HttpResponse(leaderboard_csv(race), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{race.slug}-leaderboard.csv"'
        return response


class RaceBracket(LeagueView):
    """The knockout bracket of a head-to-head race: state (qualifying, starting, too_few, racing, finished),
    champion and rounds of match cards (seeds, racers, winner, race times). Other race types: state "none"."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, slug: str):
        return Response(bracket_summary(visible_race(request, slug)))


class MatchDetail(LeagueView):
    """One bracket match: both cars' lap tables, start lanes and replay traces (as public as its race)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        match = get_object_or_404(BracketMatch.objects.select_related("race").filter(
            race__in=race_visible_to(request.user)), pk=pk)
        return Response(bracket_match_detail(match))


class RaceJoin(LeagueView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=JoinSerializer, responses=RaceSerializer)
    def post(self, request):
        serializer = JoinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        race = race_join(serializer.validated_data["code"], request.user)
        return Response(RaceSerializer(race, context={"request": request}).data)


class RaceResetCode(LeagueView):
    permission_classes = [IsAuthenticated]
    rule_refusals = {"POST": (403,)}  # organisers only

    @extend_schema(request=None, responses=InviteCodeSerializer)
    def post(self, request, slug: str):
        race = visible_race(request, slug)
        race_reset_invite_code(race, request.user)
        return Response(InviteCodeSerializer(race, context={"request": request}).data)


class RaceClose(LeagueView):
    permission_classes = [IsAuthenticated]
    rule_refusals = {"POST": (400, 403)}  # closed already; organisers only

    @extend_schema(request=None, responses=RaceSerializer)
    def post(self, request, slug: str):
        race = visible_race(request, slug)
        race_close_early(race, request.user)
        return Response(RaceSerializer(race, context={"request": request}).data)


class RaceParticipants(LeagueView, generics.ListAPIView):
    """Members of a community race (organiser only)."""

    permission_classes = [IsAuthenticated]
    serializer_class = ParticipantSerializer
    rule_refusals = {"GET": (403,)}  # organisers only

    def get_queryset(self):
        race = visible_race(self.request, self.kwargs["slug"])
        if race.organiser_id != self.request.user.pk and not self.request.user.is_staff:
            raise RuleViolation("Only the organiser can list participants.", "forbidden")
        return race.participants.filter(removed_at__isnull=True).select_related("user__racer").order_by("joined_at")


class RaceParticipantRemove(LeagueView):
    permission_classes = [IsAuthenticated]
    rule_refusals = {"DELETE": (400, 403)}  # the organiser or a non-member; organisers only

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str, user_id: int):
        race = visible_race(request, slug)
        participant_remove(race, request.user, get_object_or_404(get_user_model(), pk=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- submissions ----------------------------------------------------------------------------------------------
@extend_schema_view(  # the filter is read by GET only
    get=extend_schema(
        parameters=[OpenApiParameter("race", str, pattern=r"^[-a-zA-Z0-9_]*$",
                                     description="only submissions to this race (slug; empty: all races)")]
    )
)
class SubmissionList(LeagueView, generics.ListCreateAPIView):
    """Your submissions, newest first; POST enters one of your models in a race."""

    permission_classes = [IsAuthenticated]
    rule_refusals = {"POST": (404,)}  # the race or the model named in the body is not yours to see
    parser_classes = [JSONParser]
    serializer_class = SubmissionSerializer

    def get_queryset(self):
        mine = visible_submissions(self.request.user).filter(user=self.request.user).order_by("-submitted_at", "-pk")
        race = self.request.query_params.get("race")
        if race and not slug_re.fullmatch(race):
            raise RuleViolation("race must be a race slug (letters, digits, dashes, underscores).")
        return mine.filter(race__slug=race) if race else mine

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([submission_summary(s, include_trace=False) for s in page])

    @extend_schema(request=SubmissionCreateSerializer, responses={201: SubmissionSerializer})
    def post(self, request, *args, **kwargs):
        serializer = SubmissionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        race = visible_race(request, serializer.validated_data["race"])
        model = get_object_or_404(models_of(request.user), pk=serializer.validated_data["model"])
        submission = submission_create(request.user, race, model)
        return Response(submission_summary(submission, submission_queue_position(submission)),
                        status=status.HTTP_201_CREATED)


class SubmissionDetail(LeagueView, generics.RetrieveAPIView):
    """Status (with queue position while waiting), laps, score and the replay trace of one submission."""

    permission_classes = [AllowAny]
    serializer_class = SubmissionSerializer

    def get_queryset(self):
        return visible_submissions(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        submission = self.get_object()
        return Response(submission_summary(submission, submission_queue_position(submission)))


# --- a racer's own evaluations -------------------------------------------------------------------------------------
class ModelEvaluations(LeagueView, generics.ListCreateAPIView):
    """Evaluations of one of your models, newest first; POST races it alone on any track under race rules, for you
    only (lap table, trace, simtrace; nothing reaches a leaderboard)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    serializer_class = ModelEvaluationSerializer

    def get_queryset(self):
        return model_evaluations_of(self.request.user).filter(model=self.model())

    def model(self):
        return get_object_or_404(models_of(self.request.user), pk=self.kwargs["pk"])

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([model_evaluation_summary(e, include_trace=False) for e in page])

    @extend_schema(request=ModelEvaluationCreateSerializer, responses={201: ModelEvaluationSerializer})
    def post(self, request, *args, **kwargs):
        model = self.model()
        serializer = ModelEvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        track = get_object_or_404(Track, slug=values.pop("track"))
        evaluation = model_evaluation_create(request.user, model, track, **values)
        return Response(model_evaluation_summary(evaluation, model_evaluation_queue_position(evaluation)),
                        status=status.HTTP_201_CREATED)


class ModelEvaluationDetail(LeagueView, generics.RetrieveAPIView):
    """One of your evaluations: status (with queue position while waiting), laps, score and the replay trace."""

    permission_classes = [IsAuthenticated]
    serializer_class = ModelEvaluationSerializer

    def get_queryset(self):
        return model_evaluations_of(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        evaluation = self.get_object()
        return Response(model_evaluation_summary(evaluation, model_evaluation_queue_position(evaluation)))


# --- seasons and racers -------------------------------------------------------------------------------------------
def visible_season(request, slug: str):
    return get_object_or_404(season_visible_to(request.user), slug=slug)


class SeasonList(LeagueView, generics.ListAPIView):
    """Seasons you can see (community seasons: their organiser and members only), newest first."""

    permission_classes = [AllowAny]
    serializer_class = SeasonSerializer

    def get_queryset(self):
        return season_visible_to(self.request.user).select_related("final_track").order_by("-starts_at", "pk")


class SeasonDetail(LeagueView, generics.RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = SeasonSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return season_visible_to(self.request.user).select_related("final_track")


class SeasonStandings(LeagueView):
    """Rank, racer, points, races entered, best finish and each race's position and points, best first."""

    permission_classes = [AllowAny]

    @extend_schema(responses=StandingsSerializer)
    def get(self, request, slug: str):
        standings = season_standings(visible_season(request, slug))
        return Response({"season": standings.season.slug, "provisional": standings.provisional,
                         "races": [race.slug for race in standings.races],
                         "rows": season_standings_table(standings)})


class SeasonStandingsCsv(LeagueView):
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, slug: str):
        season = visible_season(request, slug)
        response = HttpResponse(season_standings_csv(season_standings(season)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{season.slug}-standings.csv"'
        return response


class RacerProfile(LeagueView):
    """A racer's public profile: seasons, races entered (rank, best lap) and models raced, as far as you can see
    their races."""

    permission_classes = [AllowAny]

    @extend_schema(responses=RacerProfileSerializer)
    def get(self, request, alias: str):
        profile = racer_by_alias(alias)
        if profile is None:
            raise NotFound("No racer has this alias.")
        data = racer_profile(profile, request.user)
        return Response({
            "alias": data["alias"], "since": data["since"],
            "seasons": [{"season": s["season"].slug, "name": s["season"].name, "rank": s["rank"], "of": s["of"],
                         "points": s["points"], "provisional": s["provisional"], "finalist": s["finalist"]}
                        for s in data["seasons"]],
            "races": [{"race": r["race"].slug, "name": r["race"].name, "phase": r["phase"], "rank": r["rank"],
                       "time": r["time"], "best_lap": r["best_lap"], "submissions": r["submissions"]}
                      for r in data["races"]],
            "models": data["models"],
        })


# --- training -------------------------------------------------------------------------------------------------
def own_training_job(request, pk: int) -> TrainingJob:
    """The racer's own job; anyone else's is a 404 (nobody learns whether it exists)."""
    try:
        return training_job_for(request.user, pk)
    except TrainingJob.DoesNotExist:
        raise NotFound() from None


def tracks_named(slugs: list[str]) -> tuple[Track, ...]:
    tracks = []
    for slug in slugs:
        if not slug_re.fullmatch(slug):
            raise RuleViolation(f"{slug[:40]!r} is not a track slug.", field="tracks")
        track = Track.objects.filter(slug=slug).first()
        if track is None:
            raise RuleViolation(f"There is no track {slug!r}.", field="tracks")
        tracks.append(track)
    return tuple(tracks)


class TrainingList(LeagueView, generics.ListAPIView):
    """Your training jobs, newest first; POST starts one (queued; quotas apply: a refusal says when they come
    back)."""

    permission_classes = [IsAuthenticated]
    rule_refusals = {"POST": (404,)}  # the model to clone or the race to enter is not yours to see
    parser_classes = [JSONParser]
    serializer_class = TrainingJobSerializer

    def get_queryset(self):
        return training_jobs_of(self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([training_progress(job) for job in page])

    @extend_schema(request=TrainingCreateSerializer, responses={201: TrainingJobSerializer})
    def post(self, request, *args, **kwargs):
        serializer = TrainingCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        clone_of = get_object_or_404(models_of(request.user), pk=data["clone_of"]) if data["clone_of"] else None
        submit_to = None
        if data["submit_to"]:
            if not slug_re.fullmatch(data["submit_to"]):
                raise RuleViolation("submit_to must be a race slug.", field="submit_to")
            submit_to = visible_race(request, data["submit_to"])
        job = training_start(request.user, TrainingRequest(
            name=data["name"], description=data["description"], tracks=tracks_named(data["tracks"]),
            direction=data["direction"], vehicle=data["vehicle"], race_type=data["race_type"],
            reward_function_source=data["reward_function_source"], hyperparameters=data["hyperparameters"],
            max_minutes=data["max_minutes"], best_by=data["best_by"], clone_of=clone_of,
            warm_start=data["warm_start"], submit_to=submit_to))
        return Response(training_progress(job), status=status.HTTP_201_CREATED)


class TrainingDetail(LeagueView):
    """One of your training jobs: status (queue position while queued), counters, the reward graph's values, the
    log tail, the resulting model. The live page polls it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: TrainingJobSerializer})
    def get(self, request, pk: int):
        return Response(training_progress(own_training_job(request, pk)))


class TrainingStop(LeagueView):
    """Stop one of your training jobs cleanly: it keeps (and stores) the model trained so far."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: TrainingJobSerializer})
    def post(self, request, pk: int):
        job = training_stop(own_training_job(request, pk), request.user)
        return Response(training_progress(job))


class TrainingClone(LeagueView):
    """Train one of your models further (a clone: same sensors, network and action shape)."""

    permission_classes = [IsAuthenticated]
    rule_refusals = {"POST": (404,)}  # the model is not yours
    parser_classes = [JSONParser]

    @extend_schema(request=TrainingCloneSerializer, responses={201: TrainingJobSerializer})
    def post(self, request):
        serializer = TrainingCloneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = get_object_or_404(models_of(request.user), pk=data["model"])
        job = training_clone(request.user, model, data["name"], data["max_minutes"],
                             tracks=tracks_named(data.get("tracks") or []),
                             reward_function_source=data.get("reward_function_source"))
        return Response(training_progress(job), status=status.HTTP_201_CREATED)
