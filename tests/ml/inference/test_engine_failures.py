"""Cancelled, failed and concurrent requests: each ends cleanly and the engine stays usable."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pytest

from ml.inference import Chunk, Engine, Message, Usage
from tests.ml.inference.support import Reference, Streamed, TinyModels, request, run


@pytest.fixture
def engine() -> Engine:
    return Engine(device="cpu")


def test_cancel_before_the_first_token(engine: Engine, tiny: TinyModels) -> None:
    streamed = run(engine, request(tiny.base), cancelled=lambda: True)
    assert streamed.deltas == []
    assert streamed.final.finish_reason == "cancelled"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens == 0
    assert streamed.final.usage.prompt_tokens > 0


def test_cancel_mid_stream_stops_at_the_next_token(engine: Engine, tiny: TinyModels) -> None:
    flag = threading.Event()
    chunks = []
    for chunk in engine.generate(request(tiny.base, max_tokens=200), cancelled=flag.is_set):
        chunks.append(chunk)
        if len(chunks) == 3:
            flag.set()
    streamed = Streamed(chunks)
    assert len(chunks) == 4, "no text after the cancel, then the final chunk"
    assert streamed.final.finish_reason == "cancelled"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens < 20


def test_closing_the_stream_frees_the_engine(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    stream = engine.generate(request(tiny.base, max_tokens=200))
    next(stream)
    stream.close()  # the client went away
    expected, _ = reference.greedy(tiny.base, max_new_tokens=40)
    assert run(engine, request(tiny.base)).text == expected


def test_missing_adapter_fails_that_request_only(
    engine: Engine, tiny: TinyModels, reference: Reference, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-adapter"
    failed = run(engine, request(tiny.base, adapter=missing))
    assert failed.deltas == []
    assert failed.final.finish_reason == "error"
    assert failed.final.error is not None
    assert str(missing) in failed.final.error
    assert "adapter_config.json" in failed.final.error

    expected, _ = reference.greedy(tiny.base, adapter=tiny.adapter_a)
    assert run(engine, request(tiny.base, adapter=tiny.adapter_a)).text == expected


def test_missing_base_model_fails_with_its_path(engine: Engine, tmp_path: Path) -> None:
    failed = run(engine, request(tmp_path / "nothing-here"))
    assert failed.final.finish_reason == "error"
    assert failed.final.error is not None
    assert "nothing-here" in failed.final.error


def test_adapter_for_another_architecture_fails_cleanly(
    engine: Engine, tiny: TinyModels, reference: Reference, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    failed = run(engine, request(tiny.base, adapter=broken))
    assert failed.final.finish_reason == "error"
    assert failed.final.error is not None
    assert "cannot load adapter" in failed.final.error

    expected, _ = reference.greedy(tiny.base, adapter=tiny.adapter_b)
    assert run(engine, request(tiny.base, adapter=tiny.adapter_b)).text == expected


@pytest.fixture(scope="module")
def short_context_model(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base with a 64-token context window."""
    copy = shutil.copytree(tiny.base, tmp_path_factory.mktemp("short") / "model")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    return copy


def test_prompt_longer_than_the_context_window(engine: Engine, short_context_model: Path) -> None:
    long_prompt: list[Message] = [{"role": "user", "content": "谢谢你的帮助！ " * 20}]
    failed = run(engine, request(short_context_model, long_prompt))
    assert failed.final.finish_reason == "error"
    assert failed.final.error is not None
    assert "context window is 64" in failed.final.error


def test_context_window_ends_a_request_without_max_tokens(
    engine: Engine, short_context_model: Path, reference: Reference
) -> None:
    prompt = reference.prompt(short_context_model)
    streamed = run(engine, request(short_context_model, max_tokens=None))
    assert streamed.final.finish_reason == "length"
    assert streamed.final.usage == Usage(len(prompt), 64 - len(prompt))


def test_error_mid_stream_reports_the_tokens_so_far(
    engine: Engine, tiny: TinyModels, reference: Reference, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("the client's connection broke")
        return False

    with caplog.at_level(logging.ERROR, logger="ml.inference.engine"):
        failed = run(engine, request(tiny.base), cancelled=cancelled)
    assert failed.final.finish_reason == "error"
    assert failed.final.error == "RuntimeError: the client's connection broke"
    assert "the client's connection broke" in caplog.text
    assert failed.final.usage is not None
    assert failed.final.usage.completion_tokens == 3

    expected, _ = reference.greedy(tiny.base)
    assert run(engine, request(tiny.base)).text == expected


def test_concurrent_callers_are_served_one_after_another(
    tiny: TinyModels, reference: Reference
) -> None:
    engine = Engine(device="cpu")
    adapters = [tiny.adapter_a, tiny.adapter_b, None, tiny.adapter_c] * 2
    expected = {
        adapter: reference.greedy(tiny.base, adapter=adapter)[0] for adapter in set(adapters)
    }
    results: dict[int, str] = {}

    def call(index: int, adapter: Path | None) -> None:
        results[index] = run(engine, request(tiny.base, adapter=adapter)).text

    threads = [
        threading.Thread(target=call, args=(index, adapter))
        for index, adapter in enumerate(adapters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {index: expected[adapter] for index, adapter in enumerate(adapters)}


def test_stream_can_be_resumed_from_different_threads(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    """As an asyncio worker does with run_in_executor(next, stream): one step per thread."""
    import torch

    stream = engine.generate(request(tiny.base))
    chunks: list[Chunk] = []
    while not chunks or not chunks[-1].done:
        step = threading.Thread(target=lambda: chunks.append(next(stream)))
        step.start()
        step.join(timeout=30)
    assert Streamed(chunks).text == reference.greedy(tiny.base)[0]
    assert torch.is_grad_enabled(), "no grad mode leaks into the caller's thread"
