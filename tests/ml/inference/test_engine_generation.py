"""What the engine streams for a request: the same text as `generate`, cut as asked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ml.inference import Engine, Message, Usage
from tests.ml.inference.support import PROMPT, Reference, TinyModels, request, run

PROMPTS: list[list[Message]] = [
    PROMPT,
    [{"role": "user", "content": "Hello, how are you today?"}],
    [
        {"role": "system", "content": "你是一个助手。"},
        {"role": "user", "content": "工资什么时候发？"},
        {"role": "assistant", "content": "明天。"},
        {"role": "user", "content": "谢谢[微笑]"},
    ],
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device="cpu")


@pytest.mark.parametrize("messages", PROMPTS, ids=["chinese", "english", "conversation"])
def test_greedy_output_equals_generate(
    engine: Engine, tiny: TinyModels, reference: Reference, messages: list[Message]
) -> None:
    expected, ids = reference.greedy(tiny.base, messages, max_new_tokens=40)
    streamed = run(engine, request(tiny.base, messages, max_tokens=40))
    assert streamed.text == expected
    assert streamed.final.finish_reason == "length"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens == len(ids) == 40


def test_streams_token_by_token_in_order(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    expected, _ = reference.greedy(tiny.base, max_new_tokens=40)
    streamed = run(engine, request(tiny.base, max_tokens=40))
    # Many pieces, not one block at the end. (Fewer than 40: this untrained model emits stray
    # UTF-8 bytes, and a piece waits until the bytes before it form whole characters.)
    assert len(streamed.deltas) > 10
    assert "".join(streamed.deltas) == expected
    prompt_tokens = len(reference.prompt(tiny.base))
    assert streamed.final.usage == Usage(prompt_tokens=prompt_tokens, completion_tokens=40)


def test_end_of_sequence_token_finishes_with_stop(
    engine: Engine, tiny: TinyModels, reference: Reference, tmp_path: Path
) -> None:
    # Declare the 4th greedy token the model's end-of-sequence token (in a copy of the model).
    _, ids = reference.greedy(tiny.base, max_new_tokens=40)
    eos = next(t for i, t in enumerate(ids) if i >= 3 and t not in ids[:i])
    copy = shutil.copytree(tiny.base, tmp_path / "eos-model")
    config_file = copy / "generation_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "eos_token_id": eos}))
    _, expected_ids = reference.greedy(copy, max_new_tokens=40)
    assert expected_ids[-1] == eos
    # The end-of-sequence token ends the text; its own text is never part of it.
    expected = reference.tokenizer(copy).decode(expected_ids[:-1])

    streamed = run(engine, request(copy, max_tokens=40))
    assert streamed.text == expected
    assert streamed.final.finish_reason == "stop"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens == len(expected_ids)


@pytest.mark.parametrize("max_tokens", [1, 2, 7])
def test_max_tokens_ends_with_length_and_the_exact_count(
    engine: Engine, tiny: TinyModels, reference: Reference, max_tokens: int
) -> None:
    expected, _ = reference.greedy(tiny.base, max_new_tokens=max_tokens)
    streamed = run(engine, request(tiny.base, max_tokens=max_tokens))
    assert streamed.text == expected
    assert streamed.final.finish_reason == "length"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens == max_tokens


def test_stop_sequence_cuts_the_text_before_it(engine: Engine, tiny: TinyModels) -> None:
    full = run(engine, request(tiny.base, max_tokens=40)).text
    stop = full[10:12]
    streamed = run(engine, request(tiny.base, max_tokens=40, stop=[stop]))
    assert streamed.text == full[: full.index(stop)]
    assert streamed.final.finish_reason == "stop"
    assert stop not in "".join(streamed.deltas)


def test_stop_sequence_split_across_tokens(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    _, ids = reference.greedy(tiny.base, max_new_tokens=40)
    tokenizer = reference.tokenizer(tiny.base)
    pieces = [tokenizer.decode([t]) for t in ids]
    # A token boundary between two whole-text tokens, past the first few tokens.
    k = next(
        i
        for i in range(5, len(pieces) - 1)
        if all(p and "\ufffd" not in p for p in pieces[i : i + 2])
    )
    stop = pieces[k][-1] + pieces[k + 1][:2]
    full = tokenizer.decode(ids, skip_special_tokens=True)

    streamed = run(engine, request(tiny.base, max_tokens=40, stop=["never there", stop]))
    assert streamed.text == full[: full.index(stop)]
    assert streamed.final.finish_reason == "stop"
    assert streamed.final.usage is not None
    assert streamed.final.usage.completion_tokens <= k + 2


def test_stop_sequence_that_never_comes_changes_nothing(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    expected, _ = reference.greedy(tiny.base, max_new_tokens=20)
    streamed = run(engine, request(tiny.base, max_tokens=20, stop=["never there"]))
    assert streamed.text == expected
    assert streamed.final.finish_reason == "length"


def test_seed_makes_sampling_reproducible(engine: Engine, tiny: TinyModels) -> None:
    def sample(seed: int, top_p: float = 1.0) -> str:
        chat = request(tiny.base, max_tokens=30, temperature=1.0, seed=seed, top_p=top_p)
        return run(engine, chat).text

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)
    assert sample(3, top_p=0.9) == sample(3, top_p=0.9)
    # Without a seed two samples differ (30 tokens from a near-uniform distribution).
    unseeded = request(tiny.base, max_tokens=30, temperature=1.0)
    assert run(engine, unseeded).text != run(engine, unseeded).text


def test_tiny_top_p_keeps_only_the_most_likely_token(
    engine: Engine, tiny: TinyModels, reference: Reference
) -> None:
    expected, _ = reference.greedy(tiny.base, max_new_tokens=20)
    chat = request(tiny.base, max_tokens=20, temperature=0.8, top_p=1e-6, seed=1)
    assert run(engine, chat).text == expected


def test_model_without_chat_template_gets_the_plain_text(
    engine: Engine, tiny: TinyModels, reference: Reference, tmp_path: Path
) -> None:
    copy = shutil.copytree(tiny.base, tmp_path / "no-template")
    (copy / "chat_template.jinja").unlink()
    tokenizer = reference.tokenizer(copy)
    assert not tokenizer.chat_template
    messages: list[Message] = [
        {"role": "user", "content": "明天下午"},
        {"role": "user", "content": "三点开会"},
    ]
    prompt = tokenizer("明天下午\n三点开会")["input_ids"]
    expected, _ = reference.generate(copy, prompt, max_new_tokens=15)
    streamed = run(engine, request(copy, messages, max_tokens=15))
    assert streamed.text == expected
