from django.urls import include, path

from races.views import brackets, community, models, races, schedule, seasons, submissions, tracks

app_name = "races"

urlpatterns = [
    path("races/", races.race_list, name="race_list"),
    path("tracks/", tracks.track_list, name="track_list"),
    path("tracks/<slug:slug>/preview.png", tracks.track_preview_png, name="track_preview"),
    path("tracks/<slug:slug>/outline.json", tracks.track_outline_json, name="track_outline"),
    path("races/community/", community.community_list, name="community_list"),
    path("races/community/new/", community.community_create, name="community_create"),
    path("races/join/", community.race_join_page, name="race_join"),
    path("races/join/<slug:code>/", community.race_join_page, name="race_join_code"),
    path("races/<slug:slug>/", races.race_detail, name="race_detail"),
    path("races/<slug:slug>/submit/", races.race_submit, name="race_submit"),
    path("races/<slug:slug>/leaderboard.json", races.race_leaderboard_json, name="race_leaderboard_json"),
    path("races/<slug:slug>/leaderboard.csv", races.race_leaderboard_csv, name="race_leaderboard_csv"),
    path("races/<slug:slug>/track.png", races.race_track_png, name="race_track_png"),
    path("races/<slug:slug>/manage/", community.race_manage, name="race_manage"),
    path("races/<slug:slug>/manage/<slug:action>/", community.race_action, name="race_action"),
    path("submissions/<int:pk>/", submissions.submission_detail, name="submission_detail"),
    path("submissions/<int:pk>/status.json", submissions.submission_status_json, name="submission_status_json"),
    path("submissions/<int:pk>/simtrace.csv", submissions.submission_simtrace_csv, name="submission_simtrace"),
    path("submissions/<int:pk>/trajectory.png", submissions.submission_trajectory_png, name="submission_trajectory"),
    path("matches/<int:pk>/", brackets.match_detail, name="match_detail"),
    path("matches/<int:pk>/match.json", brackets.match_json, name="match_json"),
    path("matches/<int:pk>/trajectory.png", brackets.match_trajectory_png, name="match_trajectory"),
    path("models/", models.model_list, name="model_list"),
    path("models/<int:pk>/", models.model_detail, name="model_detail"),
    path("models/<int:pk>/delete/", models.model_remove, name="model_delete"),
    path("seasons/", seasons.season_list, name="season_list"),
    path("seasons/new/", seasons.season_create_view, name="season_create"),
    path("seasons/<slug:slug>/", seasons.season_detail, name="season_detail"),
    path("seasons/<slug:slug>/standings.csv", seasons.season_standings_csv_view, name="season_standings_csv"),
    path("seasons/<slug:slug>/edit/", seasons.season_edit, name="season_edit"),
    path("seasons/<slug:slug>/manage/<slug:action>/", seasons.season_action, name="season_action"),
    path("racers/<slug:alias>/", seasons.racer_profile_view, name="racer_profile"),
    path("schedule/", schedule.schedule, name="schedule"),
    path("schedule/new/", schedule.schedule_create, name="schedule_create"),
    path("schedule/<slug:slug>/<slug:action>/", schedule.schedule_action, name="schedule_action"),
    path("api/", include("races.api.urls")),
]
