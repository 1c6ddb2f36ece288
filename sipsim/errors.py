"""Errors a user sees: one line that names the file, field, peer or certificate and what to do."""


class UserError(Exception):
    """A problem with the user's input or environment. The CLI prints it as one line, exit 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
