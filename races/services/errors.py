"""The one error type of the league's business rules: views and the API show its message to the user."""


class RuleViolation(Exception):
    """A business rule refused the action; ``message`` is written for the racer."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
