from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """Evaluation attempts, their Dramatiq actors and the sandbox that runs untrusted models."""

    name = "evaluator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from league import periodic

        def reap() -> None:
            import logging

            from evaluator.dbretry import DATABASE_ERRORS, with_database_retry
            from evaluator.services import attempts_reap

            try:
                # Retried once (a connection dropped since the last tick), then left to the next tick.
                with_database_retry(attempts_reap, patience_s=0)
            except DATABASE_ERRORS as error:  # the database is down: one line per tick, not a traceback
                logging.getLogger("evaluator.reaper").warning("Reaper skipped: database unavailable (%s)",
                                                              str(error).strip()[:200])

        def start_brackets() -> None:
            import logging

            from evaluator.dbretry import DATABASE_ERRORS
            from races.services.brackets import brackets_start_due

            try:
                brackets_start_due()
            except DATABASE_ERRORS as error:
                logging.getLogger("evaluator.reaper").warning("Brackets not checked: database unavailable (%s)",
                                                              str(error).strip()[:200])

        # Every worker process runs the reaper; it is idempotent (row locks, skip_locked), so many are fine.
        every = float(getattr(settings, "PITLANE_EVAL_REAP_EVERY_S", 15))
        periodic.register(reap, every_seconds=every, name="evaluator.reap")
        # Head-to-head races start their bracket on the same tick once qualifying has closed (idempotent too).
        periodic.register(start_brackets, every_seconds=every, name="races.brackets_start")
