"""The one error type of the league's business rules: views and the API show its message to the user."""


class RuleViolation(Exception):
    """A business rule refused the action; ``message`` is written for the racer. ``field`` names the setting
    the rule is about, when there is one, so a form can show the message beside that field."""

    def __init__(self, message: str, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
