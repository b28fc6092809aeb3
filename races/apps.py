from django.apps import AppConfig


class RacesConfig(AppConfig):
    """Tracks, uploaded models, races, submissions and leaderboards."""

    name = "races"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evaluator.engine import evaluator_settings
        from league import periodic
        from races import signals  # noqa: F401  (connects the leaderboard-version receivers)
        from races.evaluation_targets import register_evaluation_targets
        from races.training_target import register_training_target

        register_evaluation_targets()
        register_training_target()

        def start_brackets() -> None:
            import logging

            from django.db import InterfaceError, OperationalError

            from races.services.brackets import brackets_start_due

            try:
                brackets_start_due()
            except (OperationalError, InterfaceError) as error:  # the database is down: one line per tick
                logging.getLogger("races.brackets").warning("Brackets not checked: database unavailable (%s)",
                                                            str(error).strip()[:200])

        # Head-to-head races start their bracket on the reaper's tick once qualifying has closed (idempotent: every
        # worker process runs it).
        periodic.register(start_brackets, every_seconds=evaluator_settings().reap_every_s,
                          name="races.brackets_start")

        def finish_seasons() -> None:
            import logging

            from django.db import InterfaceError, OperationalError

            from races.services.seasons import seasons_finish_due

            try:
                seasons_finish_due()
            except (OperationalError, InterfaceError) as error:
                logging.getLogger("races.seasons").warning("Seasons not checked: database unavailable (%s)",
                                                           str(error).strip()[:200])

        # Ended seasons get their final on the same tick, once their races have closed and been evaluated
        # (idempotent: a season is finished once).
        periodic.register(finish_seasons, every_seconds=evaluator_settings().reap_every_s, name="races.seasons_finish")
