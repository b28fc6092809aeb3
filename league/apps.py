from django.apps import AppConfig


class LeagueConfig(AppConfig):
    """Site shell (home, accounts, racer alias, API token, /healthz) and the Dramatiq integration."""

    name = "league"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin
        from django_dramatiq.models import Task

        # django_dramatiq's task log is filled only by its AdminMiddleware, which the league does not use (the
        # evaluator's attempts are the record of every job): an always-empty admin page would only mislead.
        # The admin's own ready() has already run autodiscover (it is installed first), so Task is registered.
        if admin.site.is_registered(Task):
            admin.site.unregister(Task)
        # The model list beside every page took 300 px from the change lists: with the filter column too, the
        # races, submissions and attempts lists scrolled sideways at 1280 px. The admin's home page lists the models.
        admin.site.enable_nav_sidebar = False
