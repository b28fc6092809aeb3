from django.urls import path

from races.api import views

urlpatterns = [
    path("tracks/", views.TrackList.as_view(), name="api_tracks"),
    path("tracks/<slug:slug>/", views.TrackDetail.as_view(), name="api_track_detail"),
    path("models/", views.ModelList.as_view(), name="api_models"),
    path("models/<int:pk>/", views.ModelDetail.as_view(), name="api_model_detail"),
    path("races/", views.RaceList.as_view(), name="api_races"),
    path("races/join/", views.RaceJoin.as_view(), name="api_race_join"),
    path("races/<slug:slug>/", views.RaceDetail.as_view(), name="api_race_detail"),
    path("races/<slug:slug>/leaderboard/", views.RaceLeaderboard.as_view(), name="api_race_leaderboard"),
    path("races/<slug:slug>/leaderboard.csv", views.RaceLeaderboardCsv.as_view(), name="api_race_leaderboard_csv"),
    path("races/<slug:slug>/bracket/", views.RaceBracket.as_view(), name="api_race_bracket"),
    path("races/<slug:slug>/reset-code/", views.RaceResetCode.as_view(), name="api_race_reset_code"),
    path("races/<slug:slug>/close/", views.RaceClose.as_view(), name="api_race_close"),
    path("races/<slug:slug>/participants/", views.RaceParticipants.as_view(), name="api_race_participants"),
    path("races/<slug:slug>/participants/<int:user_id>/", views.RaceParticipantRemove.as_view(),
         name="api_race_participant_remove"),
    path("matches/<int:pk>/", views.MatchDetail.as_view(), name="api_match_detail"),
    path("seasons/", views.SeasonList.as_view(), name="api_seasons"),
    path("seasons/<slug:slug>/", views.SeasonDetail.as_view(), name="api_season_detail"),
    path("seasons/<slug:slug>/standings/", views.SeasonStandings.as_view(), name="api_season_standings"),
    path("seasons/<slug:slug>/standings.csv", views.SeasonStandingsCsv.as_view(), name="api_season_standings_csv"),
    path("racers/<slug:alias>/", views.RacerProfile.as_view(), name="api_racer_profile"),
    path("submissions/", views.SubmissionList.as_view(), name="api_submissions"),
    path("submissions/<int:pk>/", views.SubmissionDetail.as_view(), name="api_submission_detail"),
    path("training/", views.TrainingList.as_view(), name="api_training"),
    path("training/clone/", views.TrainingClone.as_view(), name="api_training_clone"),
    path("training/<int:pk>/", views.TrainingDetail.as_view(), name="api_training_detail"),
    path("training/<int:pk>/stop/", views.TrainingStop.as_view(), name="api_training_stop"),
]
