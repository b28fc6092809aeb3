from django.apps import AppConfig


class LeagueConfig(AppConfig):
    """Site shell (home, accounts, racer alias, API token, /healthz) and the Dramatiq integration."""

    name = "league"
    default_auto_field = "django.db.models.BigAutoField"
