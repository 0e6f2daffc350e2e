"""What can go wrong in inference, as exceptions with a message a user can read."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error the inference package raises on purpose."""


class InvalidRequestError(InferenceError):
    """The request itself is malformed (no messages, a negative temperature, ...)."""


class ModelNotFoundError(InferenceError):
    """The base model directory is missing or holds no model."""


class AdapterNotFoundError(InferenceError):
    """The adapter directory is missing or holds no PEFT adapter."""


class PromptTooLongError(InferenceError):
    """The prompt leaves no room for a completion in the model's context window."""


class ModelLoadError(InferenceError):
    """A model or adapter directory exists but could not be loaded (corrupt, mismatched base)."""
