"""Benchmark: ml.inference.Engine streaming against a direct `model.generate` on the same model.

    .venv/bin/python tests/bench/bench_infer.py                      # tiny model, CPU
    .venv/bin/python tests/bench/bench_infer.py --large --device cuda  # Qwen2.5-0.5B shape, GPU

Prints, for greedy and for sampled decoding, tokens/s and time to first token of both and their
ratio (engine / direct), then the same for 8 requests arriving at once from 8 threads (the engine
serves them one after another; the baseline runs 8 `generate` calls in a row). The models are
random-init (built locally, nothing downloaded): only the speed means anything here.

The direct baseline's first token is a one-token `generate` including the chat template and
tokenizing, as the engine does them; its tokens/s is a `generate` of exactly --tokens new tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ml.inference import ChatRequest, Engine, Message
from ml.tiny import make_tiny_model

PROMPT: list[Message] = [
    {"role": "system", "content": "你是一个乐于助人的助手。"},
    {"role": "user", "content": "你好，最近工作怎么样？明天下午三点开会，记得带材料。"},
]
# Qwen2.5-0.5B's body; the vocabulary stays the tiny tokenizer's, so its LM head is small.
LARGE_SHAPE: dict[str, int] = {
    "hidden_size": 896,
    "layers": 24,
    "heads": 14,
    "kv_heads": 2,
    "intermediate_size": 4864,
}


@dataclass(frozen=True)
class Sampling:
    name: str
    temperature: float
    top_p: float

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}


GREEDY = Sampling("greedy", 0.0, 1.0)
SAMPLED = Sampling("sampled, temperature 0.8, top_p 0.9", 0.8, 0.9)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Direct:
    """The baseline: `model.generate`, no streaming, exactly the asked number of new tokens."""

    def __init__(self, model_dir: Path, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
        self.model = cast(
            Any,
            AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, device_map=str(device)),
        )
        self.model.eval()
        self.input_ids = self.tokenize()

    def tokenize(self) -> torch.Tensor:
        text = self.tokenizer.apply_chat_template(
            PROMPT, add_generation_prompt=True, tokenize=False
        )
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return cast(torch.Tensor, ids.to(self.device))

    def generate(self, tokens: int, sampling: Sampling, input_ids: torch.Tensor) -> int:
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                **sampling.generate_kwargs(),
            )
        synchronize(self.device)
        return int(output.shape[1] - input_ids.shape[1])

    def tokens_per_second(self, tokens: int, sampling: Sampling) -> float:
        start = time.perf_counter()
        produced = self.generate(tokens, sampling, self.input_ids)
        return produced / (time.perf_counter() - start)

    def first_token_seconds(self, sampling: Sampling) -> float:
        start = time.perf_counter()
        self.generate(1, sampling, self.tokenize())
        return time.perf_counter() - start


class Streamed:
    """The engine: streamed requests, timed to their first text chunk and to their end."""

    def __init__(self, model_dir: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.engine = Engine(device=str(device), dtype=dtype)
        self.model_dir = model_dir
        self.engine.load(model_dir)

    def run(
        self, tokens: int, sampling: Sampling, start: float | None = None
    ) -> tuple[float, float, int]:
        """(seconds to the first text chunk, seconds to the end, completion tokens)."""
        start = time.perf_counter() if start is None else start
        request = ChatRequest(
            base_model=self.model_dir,
            messages=PROMPT,
            max_tokens=tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=0,
        )
        first: float | None = None
        completion = 0
        for chunk in self.engine.generate(request, cancelled=lambda: False):
            if first is None and chunk.delta:
                first = time.perf_counter() - start
            if chunk.done:
                if chunk.finish_reason == "error":
                    raise RuntimeError(chunk.error)
                assert chunk.usage is not None
                completion = chunk.usage.completion_tokens
        end = time.perf_counter() - start
        return (end if first is None else first), end, completion

    def tokens_per_second(self, tokens: int, sampling: Sampling) -> float:
        _, seconds, completion = self.run(tokens, sampling)
        return completion / seconds

    def first_token_seconds(self, sampling: Sampling) -> float:
        return self.run(1, sampling)[0]


def single_request(
    direct: Direct, streamed: Streamed, sampling: Sampling, tokens: int, repeats: int
) -> None:
    for _ in range(2):  # warm-up: kernels, allocator, lazy imports
        direct.tokens_per_second(8, sampling)
        streamed.tokens_per_second(8, sampling)
    rates: tuple[list[float], list[float]] = ([], [])
    firsts: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):  # interleaved, so the machine's drift hits both alike
        rates[0].append(direct.tokens_per_second(tokens, sampling))
        rates[1].append(streamed.tokens_per_second(tokens, sampling))
    for _ in range(repeats * 6):
        firsts[0].append(direct.first_token_seconds(sampling) * 1e3)
        firsts[1].append(streamed.first_token_seconds(sampling) * 1e3)
    d_rate, e_rate = (statistics.median(r) for r in rates)
    d_first, e_first = (statistics.median(f) for f in firsts)
    print(f"\n[{sampling.name}] one request, {tokens} new tokens, medians of {repeats} runs")
    print(f"  direct generate : {d_rate:8.1f} tok/s   first token {d_first:7.2f} ms")
    print(f"  engine streaming: {e_rate:8.1f} tok/s   first token {e_first:7.2f} ms")
    print(
        f"  ratio engine/direct tokens/s: {e_rate / d_rate:.3f}   "
        f"first-token overhead {e_first - d_first:+.2f} ms"
    )


def concurrent_requests(
    direct: Direct, streamed: Streamed, streams: int, tokens: int, repeats: int
) -> None:
    direct_rates: list[float] = []
    engine_rates: list[float] = []
    firsts: list[float] = []
    for _ in range(max(1, repeats // 2)):
        start = time.perf_counter()
        for _ in range(streams):
            direct.generate(tokens, GREEDY, direct.input_ids)
        direct_rates.append(streams * tokens / (time.perf_counter() - start))

        results: list[tuple[float, float, int]] = []
        start = time.perf_counter()

        def call(start: float = start, results: list[tuple[float, float, int]] = results) -> None:
            results.append(streamed.run(tokens, GREEDY, start))

        threads = [threading.Thread(target=call) for _ in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine_rates.append(sum(r[2] for r in results) / (time.perf_counter() - start))
        firsts.extend(r[0] * 1e3 for r in results)
    d_rate, e_rate = statistics.median(direct_rates), statistics.median(engine_rates)
    firsts.sort()
    print(f"\n[greedy] {streams} requests at once, {tokens} new tokens each")
    print(f"  direct generate, {streams} in a row: {d_rate:8.1f} tok/s in all")
    print(
        f"  engine, {streams} threads at once : {e_rate:8.1f} tok/s in all; first token "
        f"min {firsts[0]:.1f} / median {statistics.median(firsts):.1f} / max {firsts[-1]:.1f} ms"
        " (the wait in the queue included)"
    )
    print(f"  ratio engine/direct tokens/s: {e_rate / d_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", action="store_true", help="a Qwen2.5-0.5B-shaped model")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, else float32")
    parser.add_argument("--tokens", type=int, default=None, help="new tokens per request")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--streams", type=int, default=8, help="requests arriving at once")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    tokens = args.tokens or (32 if args.large and device.type == "cpu" else 256)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {card}; torch {torch.__version__}; intra-op threads {torch.get_num_threads()}")
    print(f"model: {'Qwen2.5-0.5B shape' if args.large else 'ml.tiny default'}, {dtype}")

    with tempfile.TemporaryDirectory() as scratch:
        shape = LARGE_SHAPE if args.large else {}
        model_dir = make_tiny_model(Path(scratch) / "model", **shape)  # type: ignore[arg-type]
        direct = Direct(model_dir, device, dtype)
        streamed = Streamed(model_dir, device, dtype)
        for sampling in (GREEDY, SAMPLED):
            single_request(direct, streamed, sampling, tokens, args.repeats)
        concurrent_requests(direct, streamed, args.streams, tokens, args.repeats)


if __name__ == "__main__":
    main()
