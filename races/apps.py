from django.apps import AppConfig


class RacesConfig(AppConfig):
    """Tracks, uploaded models, races, submissions and leaderboards."""

    name = "races"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from races import signals  # noqa: F401  (connects the leaderboard-version receivers)
