"""Passwords, access tokens (JWT, HS256) and long-lived API tokens.

A bearer credential is either a JWT from register/login, or an API token `weft_<secret>` whose
sha256 is stored; both resolve to the user id they act for.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import update

from server.db.models import ApiToken
from server.db.repositories import ApiTokenRepository
from server.db.session import SessionMaker
from server.db.types import utcnow
from server.settings import Settings

API_TOKEN_PREFIX = "weft_"
_hasher = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("not a password")


class InvalidCredentials(Exception):
    """The bearer token is missing, malformed, expired, forged or revoked."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    # The API token in use, when the caller authenticated with one.
    token_id: str | None = None


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def issue_access_token(settings: Settings, user_id: str) -> tuple[str, int]:
    """A signed JWT for the user and its expiry (epoch seconds)."""
    now = int(time.time())
    expires = now + settings.jwt_ttl_seconds
    claims = {"sub": user_id, "iat": now, "exp": expires, "typ": "access"}
    return jwt.encode(claims, settings.secret(), algorithm="HS256"), expires


def new_api_token() -> tuple[str, str]:
    """(the secret shown once, the hash stored)."""
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, token_hash(secret)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise InvalidCredentials("the Authorization header must be 'Bearer <token>'")
    return credential.strip()


async def authenticate(
    settings: Settings, sessionmaker: SessionMaker, credential: str
) -> Principal:
    if credential.startswith(API_TOKEN_PREFIX):
        return await _api_token(sessionmaker, credential)
    try:
        claims = jwt.decode(
            credential,
            settings.secret(),
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidCredentials("the access token has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise InvalidCredentials("the access token is invalid") from None
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        raise InvalidCredentials("the access token is invalid")
    return Principal(user_id=claims["sub"])


async def _api_token(sessionmaker: SessionMaker, credential: str) -> Principal:
    digest = token_hash(credential)
    async with sessionmaker() as session:
        # Not scoped to a user: the token is how we learn who the user is.
        token = await ApiTokenRepository(session, "").by_hash(digest)
        if token is None or token.revoked_at is not None:
            raise InvalidCredentials("the API token is invalid or revoked")
        await session.execute(
            update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=utcnow())
        )
        await session.commit()
        return Principal(user_id=token.user_id, token_id=token.id)
