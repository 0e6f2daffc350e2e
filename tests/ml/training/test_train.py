from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.training import (
    COMPLETE_MARKER,
    TrainConfig,
    TrainingCancelled,
    TrainingError,
    is_complete,
    load_trained,
    merge_adapter,
    train,
)
from ml.training.adapters import adapter_base
from tests.ml.training.support import PAIRS, greedy_replies, pair_rows, write_jsonl

PROMPTS = [prompt for prompt, _ in PAIRS]
COMPLETIONS = [completion for _, completion in PAIRS]
# Settings under which the tiny model learns PAIRS by heart.
MEMORIZE_LORA = TrainConfig(
    max_steps=60,
    batch_size=4,
    learning_rate=5e-3,
    lr_scheduler="constant",
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.0,
    logging_steps=10,
    eval_every_steps=30,
)


@pytest.fixture(scope="module")
def lora_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One memorizing LoRA run shared by the tests that inspect its outcome."""
    tmp = tmp_path_factory.mktemp("lora")
    train_file = write_jsonl(tmp / "train.jsonl", pair_rows())
    events: list[dict[str, Any]] = []
    result = train(
        MEMORIZE_LORA,
        str(tiny_model),
        train_file,
        train_file,
        tmp / "out",
        on_event=events.append,
        dataset_info={"dataset_id": "d1", "version": 3},
    )
    return {"result": result, "events": events, "out": tmp / "out"}


def test_lora_loss_falls_and_the_adapter_changes_generations(
    lora_run: dict[str, Any], tiny_model: Path
) -> None:
    logs = [e for e in lora_run["events"] if e["type"] == "log"]
    evals = [e for e in lora_run["events"] if e["type"] == "eval"]
    # LoRA leaves the tiny model's (random) embeddings and norms alone: its loss cannot go far.
    assert logs[-1]["loss"] < logs[0]["loss"] - 0.5
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]

    model, tokenizer = load_trained(lora_run["out"])
    tuned = greedy_replies(model, tokenizer, PROMPTS)
    base = greedy_replies(
        model.get_base_model().__class__.from_pretrained(tiny_model), tokenizer, PROMPTS
    )

    assert sum(t == c for t, c in zip(tuned, COMPLETIONS, strict=True)) >= 3
    assert all(t != b for t, b in zip(tuned, base, strict=True))


def test_events_report_progress_evaluation_and_the_end(lora_run: dict[str, Any]) -> None:
    events = lora_run["events"]
    assert [e["type"] for e in events][:2] == ["start", "log"]
    assert events[-1]["type"] == "done"
    json.dumps(events, allow_nan=False)  # every event can go over the wire as it is

    logs = [e for e in events if e["type"] == "log"]
    assert [e["step"] for e in logs] == list(range(10, 61, 10))
    for log in logs:
        assert log["max_steps"] == 60
        assert log["epoch"] == log["step"]  # four examples, batch of four
        assert log["learning_rate"] == pytest.approx(5e-3)
        assert log["tokens_per_second"] > 0
        assert log["eta_seconds"] >= 0
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [30, 60]
    for point in evals:
        assert point["perplexity"] == pytest.approx(2.718281828 ** point["eval_loss"])


def test_a_finished_run_leaves_adapter_tokenizer_card_metrics_and_marker(
    lora_run: dict[str, Any], tiny_model: Path
) -> None:
    out: Path = lora_run["out"]
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
    assert {"README.md", "metrics.json", COMPLETE_MARKER} <= names
    assert is_complete(out)
    assert adapter_base(out) == str(tiny_model)

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["base_model"] == str(tiny_model)
    assert metrics["config"]["target_modules"] == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    ]  # fmt: skip
    assert metrics["dataset"]["info"] == {"dataset_id": "d1", "version": 3}
    assert metrics["dataset"]["train"]["examples"] == 4
    assert metrics["metrics"]["steps"] == 60
    assert metrics["metrics"]["eval_loss"] == lora_run["result"].metrics["eval_loss"]
    assert len(metrics["curve"]) == 6
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f'base_model: "{tiny_model}"' in card
    assert "library_name: peft" in card
    assert "| dataset_id | d1 |" in card
    assert "## Training curve" in card


def test_merged_adapter_generates_like_base_plus_adapter(
    lora_run: dict[str, Any], tiny_model: Path, tmp_path: Path
) -> None:
    merged_dir = merge_adapter(str(tiny_model), lora_run["out"], tmp_path / "merged")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    adapted, _ = load_trained(lora_run["out"])

    assert not (merged_dir / "adapter_config.json").exists()
    assert greedy_replies(merged, tokenizer, PROMPTS) == greedy_replies(adapted, tokenizer, PROMPTS)


def test_full_fine_tune_memorizes_and_saves_whole_weights(tiny_model: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        method="full", max_steps=40, batch_size=4, learning_rate=3e-3, lr_scheduler="constant",
        logging_steps=10,
    )  # fmt: skip
    losses: list[float] = []
    train(
        config,
        str(tiny_model),
        write_jsonl(tmp_path / "train.jsonl", pair_rows()),
        None,
        tmp_path / "out",
        on_event=lambda e: losses.append(e["loss"]) if e["type"] == "log" else None,
    )

    assert losses[-1] < losses[0] / 2
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not (tmp_path / "out" / "adapter_config.json").exists()
    model, tokenizer = load_trained(tmp_path / "out")
    assert greedy_replies(model, tokenizer, PROMPTS) == COMPLETIONS


@pytest.mark.parametrize("fmt", ["prompt_completion", "sharegpt", "alpaca"])
def test_each_dataset_format_trains(tiny_model: Path, tmp_path: Path, fmt: str) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", pair_rows(fmt))
    eval_file = write_jsonl(tmp_path / "eval.jsonl", list(pair_rows(fmt))[:2])

    result = train(
        TrainConfig(max_steps=2, batch_size=2),
        str(tiny_model),
        train_file,
        eval_file,
        tmp_path / "out",
    )

    assert result.dataset["train"]["format"] == fmt
    assert result.dataset["eval"]["examples"] == 2
    assert result.metrics["eval_loss"] > 0
    assert is_complete(tmp_path / "out")


def test_gradient_accumulation_matches_one_big_batch(tiny_model: Path, tmp_path: Path) -> None:
    # Loss is averaged over target tokens across the accumulated micro-batches, so two batches
    # of two make the same update as one batch of four.
    train_file = write_jsonl(tmp_path / "train.jsonl", pair_rows())
    common = TrainConfig(max_steps=3, lora_dropout=0.0, group_by_length=False, learning_rate=1e-2)
    big = train(replace(common, batch_size=4), str(tiny_model), train_file, None, tmp_path / "a")
    small = train(
        replace(common, batch_size=2, gradient_accumulation=2),
        str(tiny_model), train_file, None, tmp_path / "b",
    )  # fmt: skip

    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert big.metrics["train_loss"] == pytest.approx(small.metrics["train_loss"], rel=1e-4)


def test_gradient_checkpointing_and_llama_defaults(tiny_llama: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_steps=2, batch_size=2, gradient_checkpointing=True)
    result = train(
        config,
        str(tiny_llama),
        write_jsonl(tmp_path / "t.jsonl", pair_rows()),
        None,
        tmp_path / "out",
    )

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"]["target_modules"][0] == "q_proj"
    assert result.metrics["train_loss"] > 0


def test_other_architectures_get_lora_on_their_linear_layers(
    tiny_model: Path, tokenizer: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    config = GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    base = tmp_path / "neox"
    AutoModelForCausalLM.from_config(config).save_pretrained(base)  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(base)

    train(
        TrainConfig(max_steps=2, batch_size=2),
        str(base),
        write_jsonl(tmp_path / "t.jsonl", pair_rows()),
        None,
        tmp_path / "out",
    )

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["config"]["target_modules"]) == {
        "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"
    }  # fmt: skip


def test_bad_base_paths_fail_early_and_clearly(pairs_file: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_steps=1)
    with pytest.raises(TrainingError, match=r"base model path .*nowhere does not exist"):
        train(config, str(tmp_path / "nowhere"), pairs_file, None, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match=r"has no config\.json"):
        train(config, str(tmp_path / "empty"), pairs_file, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_datasets_fail_early_and_clearly(tiny_model: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_steps=1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\nnot json\n', encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")

    with pytest.raises(TrainingError, match="line 2: not valid JSON"):
        train(config, str(tiny_model), bad, None, tmp_path / "out")
    with pytest.raises(TrainingError, match="has no usable examples"):
        train(config, str(tiny_model), empty, None, tmp_path / "out")
    with pytest.raises(TrainingError, match="does not exist"):
        train(config, str(tiny_model), tmp_path / "missing.jsonl", None, tmp_path / "out")


def test_should_stop_cancels_without_marking_complete(
    tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    steps: list[int] = []

    with pytest.raises(TrainingCancelled, match="cancelled at step 3"):
        train(
            TrainConfig(max_steps=50, logging_steps=1),
            str(tiny_model),
            pairs_file,
            None,
            tmp_path / "out",
            on_event=lambda e: steps.append(e["step"]) if e["type"] == "log" else None,
            should_stop=lambda: len(steps) >= 2,
        )
    assert not is_complete(tmp_path / "out")


def test_bf16_keeps_adapters_in_fp32_and_full_weights_in_the_bases_dtype(
    tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bf16_base = tmp_path / "bf16-base"
    AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).save_pretrained(
        bf16_base
    )
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(bf16_base)
    # bf16 runs on a GPU by default; asked for explicitly, the CPU's autocast runs the same path.
    config = TrainConfig(max_steps=2, batch_size=2, bf16=True, learning_rate=1e-3)

    lora = train(config, str(bf16_base), pairs_file, pairs_file, tmp_path / "lora")
    full = train(
        replace(config, method="full"), str(bf16_base), pairs_file, None, tmp_path / "full"
    )

    assert lora.metrics["precision"] == full.metrics["precision"] == "bf16"
    assert lora.metrics["eval_loss"] > 0
    adapter = load_file(tmp_path / "lora" / "adapter_model.safetensors")
    assert {t.dtype for t in adapter.values()} == {torch.float32}  # trained in fp32
    weights = load_file(tmp_path / "full" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}  # stored as the base was
