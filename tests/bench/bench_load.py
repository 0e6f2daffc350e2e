"""Load: 50 users uploading, labeling and paging at once, with 8 chat streams open.

    .venv/bin/python tests/bench/bench_load.py [--seconds 30] [--users 50] [--streams 8]
                                               [--mode production|embedded]

Production mode runs the real processes on loopback: `weft serve`, `weft worker parse`,
`weft worker label` and `weft inference-worker`, on a fresh MariaDB database, a Redis database
of its own and a SeaweedFS S3 server; embedded mode runs `weft serve` alone. Each user registers,
then loops until time is up: upload a 40-message export, wait for it to parse, label it with the
default rules, page through its messages. Meanwhile `--streams` chat subscriptions run back to
back on a small model. At the end every upload is checked: parsed, with exactly its messages.
Prints requests/s, p50/p99 latency per operation, chat tokens/s, errors and lost rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import websockets

from tests.bench.bench_chat import register_model
from tests.support import services
from tests.support.exports import memotrace_txt

SECRET = "bench-secret-0123456789abcdef0123456789"
MESSAGES = 40
UPLOAD = """mutation($file: Upload!) { uploadChat(file: $file) {
  __typename ... on UploadChatSuccess { upload { id } job { id } } } }"""
LABEL = """mutation($u: ID!) { labelMessages(uploadId: $u) {
  ... on LabelMessagesSuccess { job { id } } } }"""
PAGE = """query($u: ID!, $a: String) { messages(uploadId: $u, first: 25, after: $a) {
  pageInfo { hasNextPage endCursor } edges { node { id text labels { key value } } } } }"""
CHAT = """subscription($i: ChatInput!) { chat(input: $i) {
  delta done usage { completionTokens } } }"""


class Stats:
    def __init__(self) -> None:
        self.latency: defaultdict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.tokens = 0

    async def timed(self, name: str, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await call
        except Exception as error:
            self.errors.append(f"{name}: {type(error).__name__}: {error}")
            raise
        finally:
            self.latency[name].append(time.perf_counter() - started)


async def gql(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{response.status_code} {body}")
    return body["data"]


async def wait_job(http: httpx.AsyncClient, token: str, job_id: str) -> str:
    while True:
        data = await gql(http, token, "query($j: ID!) { job(id: $j) { status } }", {"j": job_id})
        if data["job"]["status"] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
            return str(data["job"]["status"])
        await asyncio.sleep(0.25)


async def user_loop(
    base: str, deadline: float, stats: Stats, uploads: list[tuple[str, str]]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        registered = await stats.timed(
            "register",
            gql(
                http,
                "",
                """mutation($e: String!) { register(email: $e, password: "load test pw",
                     name: "u") { ... on AuthSuccess { token } } }""",
                {"e": f"{random.getrandbits(64):x}@load.test"},
            ),
        )
        token = registered["register"]["token"]
        while time.perf_counter() < deadline:
            operations = {"query": UPLOAD, "variables": {"file": None}}
            response = await stats.timed(
                "upload",
                http.post(
                    "/graphql",
                    data={
                        "operations": json.dumps(operations),
                        "map": json.dumps({"0": ["variables.file"]}),
                    },
                    files={"0": ("chat.txt", memotrace_txt(MESSAGES), "text/plain")},
                    headers={"Authorization": f"Bearer {token}"},
                ),
            )
            result = response.json()["data"]["uploadChat"]
            upload_id = result["upload"]["id"]
            uploads.append((token, upload_id))
            status = await stats.timed("parse (wait)", wait_job(http, token, result["job"]["id"]))
            if status != "SUCCEEDED":
                stats.errors.append(f"parse ended {status}")
                continue
            labeled = await stats.timed("label", gql(http, token, LABEL, {"u": upload_id}))
            job_id = labeled["labelMessages"]["job"]["id"]
            await stats.timed("label (wait)", wait_job(http, token, job_id))
            after = None
            while True:
                page = await stats.timed(
                    "page", gql(http, token, PAGE, {"u": upload_id, "a": after})
                )
                info = page["messages"]["pageInfo"]
                if not info["hasNextPage"]:
                    break
                after = info["endCursor"]


async def chat_loop(url: str, token: str, model_id: str, deadline: float, stats: Stats) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
                init = {"type": "connection_init", "payload": {"token": token}}
                await socket.send(json.dumps(init))
                await socket.recv()
                chat = {
                    "modelId": model_id,
                    "messages": [{"role": "USER", "content": "你好"}],
                    "maxTokens": 32,
                    "temperature": 0.7,
                }
                payload = {"query": CHAT, "variables": {"i": chat}}
                await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                while True:
                    message = json.loads(await socket.recv())
                    if message["type"] != "next":
                        break
                    chunk = message["payload"]["data"]["chat"]
                    if chunk["done"]:
                        stats.tokens += chunk["usage"]["completionTokens"]
        except Exception as error:
            stats.errors.append(f"chat: {type(error).__name__}: {error}")
        stats.latency["chat stream"].append(time.perf_counter() - started)


async def lost_rows(base: str, uploads: list[tuple[str, str]], stats: Stats) -> int:
    """Uploads whose parse finished without exactly their messages."""
    lost = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for token, upload_id in uploads:
            data = await gql(
                http,
                token,
                """query($u: ID!) { upload(id: $u) { status }
                     messages(uploadId: $u) { totalCount } }""",
                {"u": upload_id},
            )
            if data["upload"]["status"] in {"UPLOADED", "PARSING"}:
                continue  # still in flight when time ran out
            if data["messages"]["totalCount"] != MESSAGES:
                lost += 1
                stats.errors.append(f"upload {upload_id}: {data}")
    return lost


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )


def report(args: argparse.Namespace, elapsed: float, stats: Stats, uploads: int, lost: int) -> None:
    requests = sum(len(v) for k, v in stats.latency.items() if "wait" not in k)
    print(f"{args.mode}: {args.users} users + {args.streams} chat streams for {elapsed:.0f} s")
    print(
        f"  {requests / elapsed:.1f} requests/s, {uploads} uploads parsed and labeled, "
        f"{stats.tokens / elapsed:.1f} chat tokens/s"
    )
    for name, values in sorted(stats.latency.items()):
        ordered = sorted(values)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
        print(f"  {name:>14}: {len(values):5d}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    print(f"  errors: {len(stats.errors)}, lost rows: {lost}")
    for error in stats.errors[:10]:
        print(f"    {error[:300]}")


async def run(args: argparse.Namespace, env: dict[str, str], folder: Path) -> None:
    from ml.tiny import make_tiny_model

    model_dir = make_tiny_model(folder / "model", hidden_size=128, layers=2, vocab_size=1000)
    token, model_id = await register_model(Path(env["WEFT_DATA_DIR"]), model_dir, env)
    port = services.free_port()
    log = folder / "processes.log"
    processes = [start(["serve", "--port", str(port)], env, log)]
    if env.get("WEFT_REDIS_URL"):
        for role in (["worker", "parse"], ["worker", "label"], ["inference-worker"]):
            processes.append(start(role, env, log))
    try:
        services.wait_for_port(port, 120)
        base = f"http://127.0.0.1:{port}"
        stats = Stats()
        uploads: list[tuple[str, str]] = []
        started = time.perf_counter()
        deadline = started + args.seconds
        ws = base.replace("http", "ws", 1) + "/graphql"
        results = await asyncio.gather(
            *(user_loop(base, deadline, stats, uploads) for _ in range(args.users)),
            *(chat_loop(ws, token, model_id, deadline, stats) for _ in range(args.streams)),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
        for result in results:
            if isinstance(result, Exception):
                stats.errors.append(f"user: {type(result).__name__}: {result}")
        lost = await lost_rows(base, uploads, stats)
        report(args, elapsed, stats, len(uploads), lost)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--mode", choices=["production", "embedded"], default="production")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="weft-load-"))
    env = {
        **os.environ,
        "WEFT_DATA_DIR": str(folder / "data"),
        "WEFT_JWT_SECRET": SECRET,
        "WEFT_LOG_LEVEL": "WARNING",
        "WEFT_LOGIN_RATE_PER_MINUTE": "100000",
        "WEFT_UPLOAD_RATE_PER_MINUTE": "100000",
        "WEFT_INFERENCE_THREADS": "1",
        "WEFT_INFERENCE_QUEUE_LIMIT": "64",
    }
    try:
        if args.mode == "embedded":
            asyncio.run(run(args, env, folder))
            return
        import redis

        with services.mysql_database() as database, services.seaweedfs() as s3:
            env.update(
                WEFT_DATABASE_URL=database,
                WEFT_REDIS_URL=f"redis://127.0.0.1:6379/{1 + random.randrange(15)}",
                WEFT_S3_BUCKET="weft-load",
                WEFT_S3_ENDPOINT=s3,
                WEFT_S3_ACCESS_KEY="weft",
                WEFT_S3_SECRET_KEY="weft-secret",
            )
            client = redis.Redis.from_url(env["WEFT_REDIS_URL"])
            client.flushdb()
            try:
                asyncio.run(run(args, env, folder))
            finally:
                client.flushdb()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
