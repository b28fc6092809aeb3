from django.apps import AppConfig


class LeagueConfig(AppConfig):
    """Site shell (home, accounts, racer alias, API token, /healthz) and the Dramatiq integration."""

    name = "league"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Before races/evaluator are ready (and before any actor module is imported): actors bind to
        # the global broker at declaration time.
        from league.broker import install_broker

        install_broker()
