"""The app over real HTTP and WebSocket: health, GraphiQL, auth on subscriptions."""

import json
from pathlib import Path

import pytest
import websockets

from graph.schema import schema
from tests.support.live import Client, GraphQLError, LiveServer


async def test_health_query_needs_no_login(anon: Client) -> None:
    data = await anon.query("{ health { ok backends { name ok backend } } }")
    assert data["health"]["ok"] is True
    assert {b["name"] for b in data["health"]["backends"]} == {"database", "redis", "storage"}


async def test_healthz(anon: Client) -> None:
    response = await anon.http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_graphiql_in_the_browser(anon: Client) -> None:
    response = await anon.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_job_query_needs_a_token(anon: Client) -> None:
    with pytest.raises(GraphQLError) as error:
        await anon.query('{ job(id: "0") { id } }')
    assert error.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_token_is_refused(anon: Client) -> None:
    anon.token = "not-a-token"
    with pytest.raises(GraphQLError) as error:
        await anon.query('{ job(id: "0") { id } }')
    assert error.value.errors[0]["message"] == "the access token is invalid"


async def test_missing_job_is_null(user: Client) -> None:
    assert (await user.query('{ job(id: "00000000000000000000000000000000") { id } }'))[
        "job"
    ] is None


async def test_websocket_without_token_is_rejected(server: LiveServer) -> None:
    url = server.url.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_subscription_to_missing_job_errors(user: Client) -> None:
    query = 'subscription { jobProgress(jobId: "00000000000000000000000000000000") { id } }'
    async with user.subscribe(query) as subscription:
        with pytest.raises(GraphQLError, match="no such job"):
            await anext(aiter(subscription))


def test_schema_file_is_current() -> None:
    committed = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", (
        "schema.graphql is stale: regenerate it with\n"
        "  strawberry export-schema graph.schema:schema > schema.graphql"
    )


async def test_http_client_sees_json_errors_not_500(anon: Client) -> None:
    response = await anon.http.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
