"""Chat through the API against direct generation on the same model, in the same run.

    .venv/bin/python tests/bench/bench_chat.py [--tokens 128] [--hidden 256] [--layers 4]
                                               [--device cpu|cuda] [--runs 3]

Builds a random-init Qwen2-shaped model (size from the flags), registers it as a ready "full"
model of a user in an embedded weft data folder, and serves that folder with `weft serve` in a
child process (the inference worker runs inside it). Then, from this process:
- direct: `model.generate` (greedy, exactly --tokens new tokens) on the same model and device;
- subscription: the GraphQL `chat` subscription over a real WebSocket, greedy, same prompt;
- 8 streams: eight subscriptions at once.
Prints tokens/s and time to first token of each, and the ratios (targets: >= 0.95x tokens/s,
first-token overhead <= 20 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SECRET = "bench-secret-0123456789abcdef0123456789"
PROMPT = [{"role": "user", "content": "工资什么时候发？"}]
CHAT = """subscription($input: ChatInput!) {
  chat(input: $input) { delta done finishReason usage { completionTokens } }
}"""


async def register_model(
    data_dir: Path, model_dir: Path, env: dict[str, str] | None = None
) -> tuple[str, str]:
    """A user and a ready full model, stored where weft configured by `env` looks for them."""
    from server.auth import issue_access_token
    from server.db.models import Model, User
    from server.db.types import new_id
    from server.resources import Resources
    from server.services.models import artifact_key
    from server.settings import Settings
    from tasks.artifacts import upload_folder

    settings = Settings.from_env(env or {"WEFT_DATA_DIR": str(data_dir), "WEFT_JWT_SECRET": SECRET})
    resources = await Resources.open(settings, {}, migrate=True)
    try:
        user_id, model_id = new_id(), new_id()
        key = artifact_key(user_id, model_id)
        stored = await upload_folder(resources.storage, key, model_dir, data_dir / "scratch")
        async with resources.sessionmaker() as session:
            session.add(User(id=user_id, email=f"{user_id}@bench", name="bench", password_hash="x"))
            await session.flush()
            session.add(
                Model(
                    id=model_id,
                    user_id=user_id,
                    name="bench",
                    base_model=str(model_dir),
                    method="full",
                    config={},
                    status="ready",
                    object_key=key,
                    artifact_size=stored.size,
                )
            )
            await session.commit()
    finally:
        await resources.close()
    return issue_access_token(settings, user_id)[0], model_id


def direct(model_dir: Path, tokens: int, device: str, runs: int) -> tuple[float, float]:
    """(tokens/s, seconds to the first token) of plain greedy generate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt")
    ids = (ids["input_ids"] if hasattr(ids, "keys") else ids).to(device)

    def run(count: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                ids, max_new_tokens=count, min_new_tokens=count, do_sample=False, pad_token_id=0
            )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started

    run(4)
    rate = max(tokens / run(tokens) for _ in range(runs))
    first = min(run(1) for _ in range(runs))
    return rate, first


async def subscription(
    url: str, token: str, model_id: str, tokens: int
) -> tuple[int, float, float]:
    """(tokens, seconds to the first chunk, seconds in all) of one chat subscription."""
    import websockets

    started = time.perf_counter()
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        await socket.recv()
        variables = {
            "input": {
                "modelId": model_id,
                "messages": [{"role": "USER", "content": PROMPT[0]["content"]}],
                "temperature": 0,
                "maxTokens": tokens,
            }
        }
        started = time.perf_counter()
        await socket.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": CHAT, "variables": variables}}
            )
        )
        first = 0.0
        count = 0
        while True:
            message = json.loads(await socket.recv())
            if message["type"] != "next":
                break
            chunk = message["payload"]["data"]["chat"]
            if not first and chunk["delta"]:
                first = time.perf_counter() - started
            if chunk["done"]:
                count = chunk["usage"]["completionTokens"]
        return count, first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from ml.tiny import make_tiny_model
    from tests.support.services import free_port

    folder = Path(tempfile.mkdtemp(prefix="weft-bench-chat-"))
    model_dir = make_tiny_model(
        folder / "model",
        hidden_size=args.hidden,
        layers=args.layers,
        heads=max(4, args.hidden // 64),
        kv_heads=2,
        intermediate_size=args.hidden * 4,
        vocab_size=2000,
    )
    data_dir = folder / "data"
    token, model_id = asyncio.run(register_model(data_dir, model_dir))
    port = free_port()
    env = {
        **os.environ,
        "WEFT_DATA_DIR": str(data_dir),
        "WEFT_JWT_SECRET": SECRET,
        "WEFT_LOG_LEVEL": "WARNING",
        "WEFT_INFERENCE_THREADS": "1",
        "WEFT_INFERENCE_DEVICE": args.device,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        from tests.support.services import wait_for_port

        wait_for_port(port, 120)
        url = f"ws://127.0.0.1:{port}/graphql"
        params = f"{args.hidden} hidden x {args.layers} layers, {args.tokens} tokens, {args.device}"
        print(f"chat benchmark: {params}")

        async def measure() -> tuple[float, float, float]:
            await subscription(url, token, model_id, 4)  # loads the model
            runs = [await subscription(url, token, model_id, args.tokens) for _ in range(args.runs)]
            rate = max(count / total for count, _, total in runs)
            first = min(first for _, first, _ in runs)
            many = time.perf_counter()
            results = await asyncio.gather(
                *(subscription(url, token, model_id, args.tokens) for _ in range(8))
            )
            aggregate = sum(count for count, _, _ in results) / (time.perf_counter() - many)
            return rate, first, aggregate

        api_rate, api_first, aggregate = asyncio.run(measure())
        server_pid = server.pid
        os.kill(server_pid, signal.SIGSTOP)  # the direct baseline gets the machine to itself
        try:
            direct_rate, direct_first = direct(model_dir, args.tokens, args.device, args.runs)
        finally:
            os.kill(server_pid, signal.SIGCONT)
        for name, rate, first in (
            ("direct generate", direct_rate, direct_first),
            ("subscription", api_rate, api_first),
        ):
            print(f"  {name + ':':18}{rate:8.1f} tokens/s  first token {first * 1000:6.1f} ms")
        print(f"  8 streams:        {aggregate:8.1f} tokens/s in all")
        print(
            f"  ratio: {api_rate / direct_rate:.2f}x tokens/s (target >= 0.95x), first-token "
            f"overhead {(api_first - direct_first) * 1000:+.1f} ms (target <= 20 ms)"
        )
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
