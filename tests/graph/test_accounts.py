"""Accounts and tokens: register, login, me, API tokens, expired/forged/revoked tokens."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from server.app import create_app
from server.resources import Resources
from tests.conftest import TEST_SECRET, make_settings
from tests.support.live import Client, GraphQLError, LiveServer

REGISTER = """mutation($email: String!, $password: String!, $name: String!) {
  register(email: $email, password: $password, name: $name) {
    __typename
    ... on AuthSuccess { token expiresAt user { id email name } }
    ... on UserError { message field code }
  }
}"""
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    __typename ... on AuthSuccess { token } ... on UserError { message field code }
  }
}"""


async def test_register_normalizes_email_and_refuses_duplicates(anon: Client) -> None:
    first = await anon.query(
        REGISTER, {"email": " Alice@Example.COM ", "password": "long enough pw", "name": "爱丽丝"}
    )
    result = first["register"]
    if result["__typename"] == "ConflictError":  # the production run comes second
        assert result["field"] == "email"
        return
    assert result["__typename"] == "AuthSuccess"
    assert result["user"]["email"] == "alice@example.com"
    again = await anon.query(
        REGISTER, {"email": "alice@example.com", "password": "another pw!", "name": "x"}
    )
    assert again["register"] == {
        "__typename": "ConflictError",
        "message": "an account with this e-mail already exists",
        "field": "email",
        "code": "CONFLICT",
    }


@pytest.mark.parametrize(
    ("email", "password", "name", "field"),
    [
        ("not-an-email", "long enough pw", "n", "email"),
        ("a@b.cn", "short", "n", "password"),
        ("a@b.cn", "long enough pw", "  ", "name"),
    ],
)
async def test_register_validates(
    anon: Client, email: str, password: str, name: str, field: str
) -> None:
    data = await anon.query(REGISTER, {"email": email, "password": password, "name": name})
    assert data["register"]["__typename"] == "InvalidInputError"
    assert data["register"]["field"] == field


async def test_login_with_wrong_password(user: Client) -> None:
    data = await user.query(LOGIN, {"email": user.email, "password": "wrong password"})  # type: ignore[attr-defined]
    assert data["login"] == {
        "__typename": "UnauthenticatedError",
        "message": "wrong e-mail or password",
        "field": "password",
        "code": "UNAUTHENTICATED",
    }
    unknown = await user.query(LOGIN, {"email": "nobody@example.com", "password": "whatever1"})
    assert unknown["login"]["message"] == "wrong e-mail or password"


async def test_api_token_lifecycle(user: Client) -> None:
    created = await user.query(
        """mutation { createApiToken(name: "脚本") {
             __typename ... on CreateApiTokenSuccess { secret token { id name revokedAt } } } }"""
    )
    secret = created["createApiToken"]["secret"]
    token_id = created["createApiToken"]["token"]["id"]
    assert secret.startswith("weft_")
    script = Client(user.server, user.http, secret)
    assert (await script.query("{ me { id } }"))["me"]["id"] == user.user_id
    listed = await user.query("{ apiTokens { id name lastUsedAt } }")
    assert listed["apiTokens"][0]["id"] == token_id
    assert listed["apiTokens"][0]["lastUsedAt"] is not None
    assert "secret" not in str(listed)
    revoked = await user.query(
        "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }", {"id": token_id}
    )
    assert revoked["revokeApiToken"]["__typename"] == "RevokeApiTokenSuccess"
    with pytest.raises(GraphQLError, match="invalid or revoked"):
        await script.query("{ me { id } }")


async def test_expired_and_forged_tokens_are_refused(user: Client, resources: Resources) -> None:
    now = int(time.time())
    expired = jwt.encode(
        {"sub": user.user_id, "iat": now - 100, "exp": now - 10, "typ": "access"}, TEST_SECRET
    )
    forged = jwt.encode(
        {"sub": user.user_id, "iat": now, "exp": now + 100, "typ": "access"},
        "another secret that is long enough to sign",
    )
    for token, message in ((expired, "expired"), (forged, "invalid"), ("weft_madeup", "revoked")):
        caller = Client(user.server, user.http, token)
        with pytest.raises(GraphQLError, match=message):
            await caller.query("{ me { id } }")


async def test_login_rate_limit(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(
        "embedded", tmp_path_factory.mktemp("ratelimit"), request, login_rate_per_minute=3
    )
    live = LiveServer(create_app(settings))
    await live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url) as http:
            client = Client(live, http)
            results = []
            for _ in range(5):
                data = await client.query(
                    LOGIN, {"email": "x@example.com", "password": "whatever1"}
                )
                results.append(data["login"]["__typename"])
        assert results[:3] == ["UnauthenticatedError"] * 3
        assert results[3:] == ["RateLimitedError"] * 2
    finally:
        await live.stop()
