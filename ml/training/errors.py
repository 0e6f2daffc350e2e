"""The exceptions of the training package: each carries a message meant for the user."""

from __future__ import annotations


class TrainingError(Exception):
    """Training could not run or did not finish: bad base model, bad dataset, crash, NaN loss."""


class TrainConfigError(TrainingError, ValueError):
    """A training option is missing, of the wrong type or out of range."""


class TrainingCancelled(TrainingError):
    """Training stopped because the caller asked it to; nothing was marked complete."""


class TrainingCrashed(TrainingError):
    """The training process failed unexpectedly (a bug, out of memory, killed by a signal).

    `details` holds the child's traceback where there was one.
    """

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details
