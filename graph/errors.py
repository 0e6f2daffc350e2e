"""Expected failures, returned as data: every mutation payload is a union of a success type and
the error types below, all implementing UserError (message, field, code)."""

from __future__ import annotations

from enum import Enum

import strawberry
from graphql import GraphQLError

from server.services import errors


@strawberry.enum
class ErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    CONFLICT = "CONFLICT"
    TOO_LARGE = "TOO_LARGE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"


@strawberry.interface(
    description="An expected failure: what went wrong, and which input caused it."
)
class UserError:
    message: str
    field: str | None = strawberry.field(description="The input field at fault, when there is one.")
    code: ErrorCode


@strawberry.type(description="The object does not exist or is not yours.")
class NotFoundError(UserError):
    pass


@strawberry.type(description="An input is invalid; `field` names it.")
class InvalidInputError(UserError):
    pass


@strawberry.type(description="The request conflicts with the current state.")
class ConflictError(UserError):
    pass


@strawberry.type(description="The upload is larger than the server accepts.")
class TooLargeError(UserError):
    limit: float | None = None


@strawberry.type(description="Wrong credentials.")
class UnauthenticatedError(UserError):
    pass


@strawberry.type(description="Too many requests; try again later.")
class RateLimitedError(UserError):
    retry_after: float | None = None


@strawberry.type(description="A backend (storage, queue, model worker) is unavailable.")
class UnavailableError(UserError):
    pass


ERROR_TYPES: dict[type[errors.ServiceError], type[UserError]] = {
    errors.NotFound: NotFoundError,
    errors.InvalidInput: InvalidInputError,
    errors.Conflict: ConflictError,
    errors.TooLarge: TooLargeError,
    errors.Unauthenticated: UnauthenticatedError,
    errors.RateLimited: RateLimitedError,
    errors.Unavailable: UnavailableError,
}


def query_error(error: errors.ServiceError) -> GraphQLError:
    """A service failure in a query (queries have no payload union): a coded GraphQL error."""
    return GraphQLError(error.message, extensions={"code": error.code, "field": error.field})


def user_error(error: errors.ServiceError) -> UserError:
    """The payload error for a service failure."""
    code = ErrorCode(error.code)
    if isinstance(error, errors.TooLarge):
        return TooLargeError(message=error.message, field=error.field, code=code, limit=error.limit)
    if isinstance(error, errors.RateLimited):
        return RateLimitedError(
            message=error.message, field=error.field, code=code, retry_after=error.retry_after
        )
    kind = ERROR_TYPES.get(type(error), InvalidInputError)
    return kind(message=error.message, field=error.field, code=code)
