from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """Evaluation attempts, their Dramatiq actors and the sandbox that runs untrusted models."""

    name = "evaluator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from league import periodic

        def reap() -> None:
            from evaluator.dbretry import with_database_retry
            from evaluator.services import attempts_reap

            with_database_retry(attempts_reap, attempts=2)  # a connection dropped since the last tick

        # Every worker process runs the reaper; it is idempotent (row locks, skip_locked), so many are fine.
        every = float(getattr(settings, "PITLANE_EVAL_REAP_EVERY_S", 15))
        periodic.register(reap, every_seconds=every, name="evaluator.reap")
