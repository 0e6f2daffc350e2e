"""A 100-message page through /graphql against a bare Starlette JSON route running the same SQL.

Same process, same data, same auth: the server (uvicorn, one worker) runs in a child process
with both routes; this process generates a bounded concurrent load over keep-alive HTTP/1.1
connections with a minimal client, so that the client costs little of the machine.

    .venv/bin/python tests/bench/bench_graphql.py [--seconds 10] [--connections 8] [--mysql URL]

Prints requests/s and p50/p99 latency of each, and the ratio (target: GraphQL >= 0.5x bare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

QUERY = """query($upload: ID!) {
  messages(uploadId: $upload, first: 100) {
    edges { node { id sender text kind timestamp isSelf } }
  }
}"""


def serve(settings_kwargs: dict[str, Any], port: int, ready: Any) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from server.app import create_app
    from server.auth import authenticate, bearer
    from server.rest.responses import JSON
    from server.services import messages
    from server.services.messages import MessageFilter
    from server.settings import Settings

    settings = Settings(**settings_kwargs)
    app = create_app(settings)

    async def bare(request: Request) -> Response:
        """What a hand-written JSON route would do for the same page: auth, SQL, JSON."""
        resources = request.app.state.resources
        credential = bearer(request.headers.get("authorization"))
        assert credential is not None
        principal = await authenticate(resources.settings, resources.sessionmaker, credential)
        upload_id = request.query_params["upload"]
        async with resources.sessionmaker() as session:
            page = await messages.page(
                session, principal.user_id, upload_id, MessageFilter(), first=100, after=None
            )
        edges = [
            {
                "node": {
                    "id": row["id"],
                    "sender": row["sender"],
                    "text": row["text"],
                    "kind": row["kind"].upper(),
                    "timestamp": messages.local_time(row).isoformat(),
                    "isSelf": row["is_self"],
                }
            }
            for row in page.rows
        ]
        return JSON({"data": {"messages": {"edges": edges}}})

    app.router.routes.append(Route("/bench/bare", bare))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.05)
        ready.set()
        await task

    asyncio.run(main())


async def seed(settings_kwargs: dict[str, Any]) -> tuple[str, str]:
    """A user with one parsed upload of 1,000 messages; returns (token, upload id)."""
    from sqlalchemy import insert

    from server.auth import issue_access_token
    from server.db.migrate import upgrade
    from server.db.models import Message, Upload, User
    from server.db.session import create_engine, create_sessionmaker
    from server.db.types import new_id
    from server.settings import Settings

    settings = Settings(**settings_kwargs)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    sessionmaker = create_sessionmaker(engine)
    user_id, upload_id = new_id(), new_id()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    async with sessionmaker() as session:
        session.add(User(id=user_id, email=f"{user_id}@bench", name="bench", password_hash="x"))
        await session.flush()
        session.add(
            Upload(
                id=upload_id,
                user_id=user_id,
                filename="bench.txt",
                object_key="none",
                status="parsed",
                message_count=1000,
            )
        )
        await session.flush()
        await session.execute(
            insert(Message),
            [
                {
                    "id": new_id(),
                    "user_id": user_id,
                    "upload_id": upload_id,
                    "seq": n,
                    "key": f"k{n}",
                    "sender": "张三" if n % 2 else "我",
                    "timestamp": start + timedelta(minutes=n),
                    "utc_offset": 480,
                    "text": f"老板又拖欠工资了，第 {n} 条消息 😀",
                    "kind": "text",
                    "is_self": n % 2 == 0,
                    "raw": None,
                }
                for n in range(1000)
            ],
        )
        await session.commit()
    await engine.dispose()
    return issue_access_token(settings, user_id)[0], upload_id


async def load(
    port: int, request: bytes, seconds: float, connections: int
) -> tuple[int, list[float], bytes]:
    """Keep `connections` requests in flight for `seconds`; (count, latencies, one body)."""
    latencies: list[float] = []
    body = b""
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal body
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head + payload)
            body = payload
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), latencies, body


def http_get(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n").encode()


def http_post(path: str, token: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def report(name: str, count: int, latencies: list[float], seconds: float) -> float:
    rate = count / seconds
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{name:>8}: {rate:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--mysql", help="a MySQL URL instead of a SQLite file")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="weft-bench-")
    settings_kwargs: dict[str, Any] = {
        "data_dir": Path(folder),
        "jwt_secret": "bench-secret-0123456789abcdef0123456789",
        "log_level": "WARNING",
    }
    if args.mysql:
        settings_kwargs["database_url"] = args.mysql
    token, upload_id = asyncio.run(seed(settings_kwargs))

    from tests.support.services import free_port

    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    server = context.Process(target=serve, args=(settings_kwargs, port, ready), daemon=True)
    server.start()
    ready.wait(60)
    try:
        graphql = http_post("/graphql", token, {"query": QUERY, "variables": {"upload": upload_id}})
        bare = http_get(f"/bench/bare?upload={upload_id}", token)
        # Warm up both paths, and check they answer the same JSON.
        _, _, graphql_body = asyncio.run(load(port, graphql, 1.0, 2))
        _, _, bare_body = asyncio.run(load(port, bare, 1.0, 2))
        assert json.loads(graphql_body) == json.loads(bare_body), "the two routes disagree"
        print(
            f"100-message page, {args.connections} connections, {args.seconds:g} s each, "
            f"{'MySQL' if args.mysql else 'SQLite'}"
        )
        rates = {}
        for name, request in (("bare", bare), ("graphql", graphql)):
            count, latencies, _ = asyncio.run(load(port, request, args.seconds, args.connections))
            rates[name] = report(name, count, latencies, args.seconds)
        print(
            f"   ratio: {rates['graphql'] / rates['bare']:.2f}x of the bare route (target >= 0.5x)"
        )
    finally:
        server.terminate()
        server.join()
        os.system(f"rm -rf {folder}")


if __name__ == "__main__":
    main()
