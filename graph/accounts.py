"""Accounts: register, login, `me`, and long-lived API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError

from graph.context import Info
from graph.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
    user_error,
)
from server.db.models import ApiToken as ApiTokenRow
from server.db.models import User as UserRow
from server.db.repositories import ApiTokenRepository, UserRepository
from server.services import accounts
from server.services.errors import ServiceError
from server.services.limits import client_key


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    name: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            id=strawberry.ID(row.id), email=row.email, name=row.name, created_at=row.created_at
        )


@strawberry.type(
    description="A long-lived token for scripts. Its secret is shown once, at creation."
)
class ApiToken:
    id: strawberry.ID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> ApiToken:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type(description="A signed-in session: send `Bearer <token>` in Authorization.")
class AuthSuccess:
    token: str
    expires_at: datetime
    user: User


@strawberry.type
class CreateApiTokenSuccess:
    token: ApiToken
    secret: str = strawberry.field(description="Shown only now; store it safely.")


@strawberry.type
class RevokeApiTokenSuccess:
    token: ApiToken


RegisterPayload = Annotated[
    AuthSuccess | InvalidInputError | ConflictError | RateLimitedError,
    strawberry.union("RegisterPayload"),
]
LoginPayload = Annotated[
    AuthSuccess | UnauthenticatedError | RateLimitedError, strawberry.union("LoginPayload")
]
CreateApiTokenPayload = Annotated[
    CreateApiTokenSuccess | InvalidInputError, strawberry.union("CreateApiTokenPayload")
]
RevokeApiTokenPayload = Annotated[
    RevokeApiTokenSuccess | NotFoundError, strawberry.union("RevokeApiTokenPayload")
]


def _auth(session: accounts.Session) -> AuthSuccess:
    return AuthSuccess(
        token=session.token,
        expires_at=datetime.fromtimestamp(session.expires_at).astimezone(),
        user=User.from_row(session.user),
    )


@strawberry.type
class AccountQueries:
    @strawberry.field(description="The caller.")
    async def me(self, info: Info) -> User:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await UserRepository(session).get(user_id)
        if row is None:
            raise GraphQLError(
                "the account no longer exists", extensions={"code": "UNAUTHENTICATED"}
            )
        return User.from_row(row)

    @strawberry.field(description="Your API tokens, revoked ones included.")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            repository = ApiTokenRepository(session, user_id)
            rows = await session.scalars(repository.select().order_by(ApiTokenRow.created_at))
            return [ApiToken.from_row(row) for row in rows]


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, email: str, password: str, name: str) -> RegisterPayload:
        resources = info.context.resources
        try:
            await resources.limits.hit("register", client_key(info.context.request))
            async with resources.sessionmaker() as session:
                result = await accounts.register(
                    resources.settings, session, email=email, password=password, name=name
                )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return _auth(result)

    @strawberry.mutation(description="Sign in with e-mail and password.")
    async def login(self, info: Info, email: str, password: str) -> LoginPayload:
        resources = info.context.resources
        try:
            await resources.limits.hit("login", client_key(info.context.request))
            async with resources.sessionmaker() as session:
                result = await accounts.login(
                    resources.settings, session, email=email, password=password
                )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return _auth(result)

    @strawberry.mutation(description="A long-lived token for scripts; the secret is shown once.")
    async def create_api_token(self, info: Info, name: str) -> CreateApiTokenPayload:
        user_id = info.context.user_id
        try:
            async with info.context.resources.sessionmaker() as session:
                token, secret = await accounts.create_api_token(session, user_id, name)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return CreateApiTokenSuccess(token=ApiToken.from_row(token), secret=secret)

    @strawberry.mutation(description="Revoke an API token; it stops working at once.")
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> RevokeApiTokenPayload:
        user_id = info.context.user_id
        try:
            async with info.context.resources.sessionmaker() as session:
                token = await accounts.revoke_api_token(session, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return RevokeApiTokenSuccess(token=ApiToken.from_row(token))
