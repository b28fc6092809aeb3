from __future__ import annotations

from rest_framework import serializers

from races.models import Race, RacerModel, Track


class TrackSerializer(serializers.ModelSerializer):
    class Meta:
        model = Track
        fields = ["slug", "title", "description", "source", "length_m", "width_m", "waypoint_count"]


class RacerModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = RacerModel
        fields = ["id", "name", "sha256", "size_bytes", "metadata", "status", "created_at"]


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    archive = serializers.FileField()


class RaceSerializer(serializers.ModelSerializer):
    track = serializers.SlugRelatedField(slug_field="slug", queryset=Track.objects.all())
    phase = serializers.SerializerMethodField()
    organiser = serializers.SerializerMethodField()

    class Meta:
        model = Race
        fields = [
            "slug", "name", "description", "kind", "organiser", "race_type", "track", "direction",
            "ranking_method", "total_laps", "minimum_laps", "off_track_penalty_s", "collision_penalty_s",
            "max_resets", "time_cap_s", "opens_at", "closes_at", "closed_early_at", "max_submissions_per_racer",
            "submission_cooldown_s", "phase",
        ]
        read_only_fields = ["slug", "kind", "organiser", "closed_early_at", "phase"]

    def get_phase(self, race: Race) -> str:
        return race.phase()

    def get_organiser(self, race: Race) -> str | None:
        racer = getattr(race.organiser, "racer", None) if race.organiser else None
        return racer.alias if racer else None


class JoinSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)


class SubmissionCreateSerializer(serializers.Serializer):
    race = serializers.SlugField()
    model = serializers.IntegerField(min_value=1)


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    racer = serializers.CharField()
    time = serializers.CharField()
    time_ms = serializers.IntegerField()
    gap_ms = serializers.IntegerField()
    best_lap_ms = serializers.IntegerField(allow_null=True)
    off_track_count = serializers.IntegerField()
    reset_count = serializers.IntegerField()
    crash_count = serializers.IntegerField()
    laps = serializers.IntegerField()
    submission_count = serializers.IntegerField()
    submission_id = serializers.IntegerField()
    submitted_at = serializers.DateTimeField()
