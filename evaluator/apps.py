from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """Evaluation attempts, their Dramatiq actors and the sandbox that runs untrusted models."""

    name = "evaluator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from league import periodic

        def reap() -> None:
            from django.db import close_old_connections

            from evaluator.services import attempts_reap

            close_old_connections()  # survive a database restart between runs
            attempts_reap()

        # Every worker process runs the reaper; it is idempotent (row locks, skip_locked), so many are fine.
        periodic.register(reap, every_seconds=15, name="evaluator.reap")
