"""The worker's one error type (edge layer): a message a user can act on, and an exit code."""

from __future__ import annotations


class StepFailed(Exception):
    """The step cannot succeed; the message names what is wrong and how to fix it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
