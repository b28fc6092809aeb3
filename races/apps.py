from django.apps import AppConfig


class RacesConfig(AppConfig):
    """Tracks, uploaded models, races, submissions and leaderboards."""

    name = "races"
    default_auto_field = "django.db.models.BigAutoField"
