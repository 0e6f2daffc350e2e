"""Expected failures of services: each has a code the API turns into a typed payload error."""

from __future__ import annotations


class ServiceError(Exception):
    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    code = "NOT_FOUND"


class InvalidInput(ServiceError):
    code = "INVALID_INPUT"


class Conflict(ServiceError):
    code = "CONFLICT"


class TooLarge(ServiceError):
    code = "TOO_LARGE"

    def __init__(self, message: str, *, limit: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.limit = limit


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"


class RateLimited(ServiceError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    code = "UNAVAILABLE"
