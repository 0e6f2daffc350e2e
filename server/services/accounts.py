"""Sign-up, login and API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import hash_password, issue_access_token, new_api_token, verify_password
from server.db.models import ApiToken, User
from server.db.repositories import ApiTokenRepository, UserRepository
from server.db.types import utcnow
from server.services.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from server.settings import Settings

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    token: str
    expires_at: int


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def register(
    settings: Settings, session: AsyncSession, *, email: str, password: str, name: str
) -> Session:
    email = normalize_email(email)
    name = name.strip()
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidInput("enter a valid e-mail address", field="email")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
    if not 1 <= len(name) <= 100:
        raise InvalidInput("the name must have 1 to 100 characters", field="name")
    users = UserRepository(session)
    if await users.by_email(email) is not None:
        raise Conflict("an account with this e-mail already exists", field="email")
    user = users.add(User(email=email, name=name, password_hash=await hash_password(password)))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("an account with this e-mail already exists", field="email") from None
    token, expires = issue_access_token(settings, user.id)
    return Session(user=user, token=token, expires_at=expires)


async def login(settings: Settings, session: AsyncSession, *, email: str, password: str) -> Session:
    user = await UserRepository(session).by_email(normalize_email(email))
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthenticated("wrong e-mail or password", field="password")
    token, expires = issue_access_token(settings, user.id)
    return Session(user=user, token=token, expires_at=expires)


async def create_api_token(session: AsyncSession, user_id: str, name: str) -> tuple[ApiToken, str]:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("the token name must have 1 to 100 characters", field="name")
    secret, digest = new_api_token()
    token = ApiTokenRepository(session, user_id).add(ApiToken(name=name, token_hash=digest))
    await session.commit()
    return token, secret


async def revoke_api_token(session: AsyncSession, user_id: str, token_id: str) -> ApiToken:
    token = await ApiTokenRepository(session, user_id).get(token_id)
    if token is None:
        raise NotFound("no such API token", field="id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.commit()
    return token
