from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """The generic engine for sandboxed jobs: attempts, leases, the reaper, the Dramatiq actors, the sandbox and the
    runner that executes inside it. Domain apps register their target kinds (``evaluator.engine``)."""

    name = "evaluator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evaluator.config import evaluator_settings
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

        # Every worker process runs the reaper; it is idempotent (row locks, skip_locked), so many are fine.
        periodic.register(reap, every_seconds=evaluator_settings().reap_every_s, name="evaluator.reap")
