from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """Evaluation attempts, their Dramatiq actors and the sandbox that runs untrusted models."""

    name = "evaluator"
    default_auto_field = "django.db.models.BigAutoField"
