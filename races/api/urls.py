from django.urls import path

from races.api import views

urlpatterns = [
    path("tracks/", views.tracks, name="api_tracks"),
    path("tracks/<slug:slug>/", views.track_detail, name="api_track_detail"),
    path("models/", views.models, name="api_models"),
    path("models/<int:pk>/", views.model_detail, name="api_model_detail"),
    path("races/", views.races, name="api_races"),
    path("races/join/", views.race_join_code, name="api_race_join"),
    path("races/<slug:slug>/", views.race_detail, name="api_race_detail"),
    path("races/<slug:slug>/leaderboard/", views.race_leaderboard, name="api_race_leaderboard"),
    path("races/<slug:slug>/leaderboard.csv", views.race_leaderboard_csv, name="api_race_leaderboard_csv"),
    path("races/<slug:slug>/reset-code/", views.race_reset_code, name="api_race_reset_code"),
    path("races/<slug:slug>/close/", views.race_close, name="api_race_close"),
    path("races/<slug:slug>/participants/", views.race_participants, name="api_race_participants"),
    path("races/<slug:slug>/participants/<int:user_id>/", views.race_participant_remove,
         name="api_race_participant_remove"),
    path("submissions/", views.submissions, name="api_submissions"),
    path("submissions/<int:pk>/", views.submission_detail, name="api_submission_detail"),
]
