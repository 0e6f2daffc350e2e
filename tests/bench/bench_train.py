"""Benchmark: training tokens/s of ml.training (as the job runs it, in a child process) against a
plain peft + torch loop on the same model and the same data, in the same run.

    .venv/bin/python tests/bench/bench_train.py            # tiny Qwen2, CPU (a few minutes)
    .venv/bin/python tests/bench/bench_train.py --threads 1  # steadier on a busy machine
    python3 tests/bench/bench_train.py --qwen05b           # Qwen2.5-0.5B shape, GPU (~2 min)
    .venv/bin/python tests/bench/bench_train.py --qwen05b --steps 2 --batch-size 1 --scale 0.1
                                                           # the same path, as a CPU smoke run

Tokens are real (non-padding) tokens of the training batches, counted the same way on both
sides; each side's rate covers its optimizer steps only (model load, tokenization and saving are
reported apart, as the child's start-up cost). Both do the same step: LoRA r=8 on all
projections (no dropout), AdamW, linear schedule, gradient clipping, bf16 autocast on a GPU.
The baseline batches in shuffled order with per-batch padding; weft runs twice, with its
defaults (length-grouped batches) and with grouping off (the baseline's batching: loop overhead
only). Each side runs `--repeats` times, interleaved; medians and bests are compared (the
machine is shared and noisy). The models are random-init, built locally: only speed matters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ml.tiny import DEFAULT_TEXTS, make_tiny_model, train_tokenizer
from ml.training import ChatEncoder, EncodedDataset, TrainConfig, TrainingProcess, encode_dataset
from ml.training.modeling import DEFAULT_TARGET_MODULES

WORDS = [
    "你好", "最近", "工作", "怎么样", "还行", "老板", "又", "拖欠", "工资", "了", "明天", "下午",
    "三点", "开会", "记得", "带", "材料", "谢谢",
]  # fmt: skip


@dataclass(frozen=True)
class Measured:
    tokens_per_second: float
    seconds: float
    tokens: int
    wall_seconds: float
    peak_memory: int | None = None


def make_dataset(path: Path, examples: int, scale: float, seed: int = 0) -> Path:
    """Chat-like prompt/completion pairs of varied length (a long tail, as WeChat data has)."""
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(examples):
            prompt_words = max(1, int(rng.lognormal(3.0, 0.6) * scale))
            reply_words = max(1, int(rng.lognormal(2.3, 0.6) * scale))
            prompt = "".join(rng.choice(WORDS, prompt_words))
            reply = "".join(rng.choice(WORDS, reply_words))
            row = {"prompt": f"用户: {prompt}", "completion": f"回复: {reply}"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def make_qwen05b(directory: Path, dtype: torch.dtype) -> Path:
    """A random-init model of Qwen2.5-0.5B's shape, with a locally trained tokenizer."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    tokenizer: Any = train_tokenizer([*DEFAULT_TEXTS, " ".join(WORDS)])
    config = Qwen2Config(
        vocab_size=151_936,
        hidden_size=896,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        intermediate_size=4864,
        max_position_embeddings=32_768,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)  # type: ignore[no-untyped-call]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def run_weft(config: TrainConfig, base: Path, data: Path, out: Path) -> Measured:
    started = time.perf_counter()
    with TrainingProcess(config, str(base), data, None, out) as run:
        result = run.start().wait()
    wall = time.perf_counter() - started
    m = result.metrics
    return Measured(
        m["tokens_per_second"], m["train_seconds"], m["train_tokens"], wall,
        m.get("peak_gpu_memory_bytes"),
    )  # fmt: skip


def plain_batches(
    data: EncodedDataset, batch_size: int, pad_id: int, seed: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Shuffled batches padded to their longest example; labels -100 off the reply."""
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(data))
        for start in range(0, len(order), batch_size):
            rows = [data.example(int(i)) for i in order[start : start + batch_size]]
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            labels = torch.full((len(rows), width), -100, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, (tokens, targets) in enumerate(rows):
                t = torch.from_numpy(tokens.astype(np.int64))
                ids[r, : len(t)] = t
                mask[r, : len(t)] = 1
                labels[r, : len(t)] = torch.where(torch.from_numpy(targets), t, -100)
            yield {"input_ids": ids, "attention_mask": mask, "labels": labels}
        epoch += 1


def run_plain(config: TrainConfig, base: Path, data: EncodedDataset, device: str) -> Measured:
    """The textbook loop: peft model, model(**batch).loss, backward, clip, step."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    started = time.perf_counter()
    bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    model: Any = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    model = model.to(device)
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout, target_modules=list(DEFAULT_TARGET_MODULES["qwen2"]),
        ),
    )  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    steps = config.max_steps or 1
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=steps)
    pad_id = AutoTokenizer.from_pretrained(base).pad_token_id
    batches = plain_batches(data, config.batch_size, pad_id, config.seed)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    tokens = 0
    loop_start = time.perf_counter()
    for _ in range(steps):
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        tokens += int(batch["attention_mask"].sum())
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    last = float(loss.item())  # waits for the device
    seconds = time.perf_counter() - loop_start
    assert math.isfinite(last)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    wall = time.perf_counter() - started
    del model, optimizer, scheduler, batch, loss
    if device.startswith("cuda"):
        torch.cuda.empty_cache()  # leave the GPU's memory to the child process that runs next
    return Measured(tokens / seconds, seconds, tokens, wall, peak)


def padding_efficiency(data: EncodedDataset, batch_size: int, grouped: bool) -> float:
    from ml.training.batching import epoch_order

    lengths = data.lengths
    batches = epoch_order(lengths, batch_size, seed=0, epoch=0, group_by_length=grouped)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return float(lengths.sum()) / padded


def main() -> None:
    # peft reads an attribute transformers 5 deprecates; the baseline calls peft directly.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qwen05b", action="store_true", help="Qwen2.5-0.5B-shaped random model")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=None, help="example length multiplier")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each side")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads of both sides (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the child process
        torch.set_num_threads(args.threads)

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    steps = args.steps or (60 if args.qwen05b else 300)
    repeats = args.repeats or (1 if args.qwen05b else 2)
    scale = args.scale or (6.0 if args.qwen05b else 1.0)
    card = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {card}; torch {torch.__version__}")

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        if args.qwen05b:
            made = time.perf_counter()
            base = make_qwen05b(root / "base", torch.bfloat16 if cuda else torch.float32)
            print(f"model: Qwen2.5-0.5B shape, random init ({time.perf_counter() - made:.0f} s)")
        else:
            base = make_tiny_model(root / "base", [*DEFAULT_TEXTS, " ".join(WORDS)])
            print("model: ml.tiny Qwen2 (hidden 64, 2 layers)")
        data_file = make_dataset(root / "train.jsonl", args.examples, scale)
        from transformers import AutoTokenizer

        max_len = 1024
        encoded = encode_dataset(
            data_file, ChatEncoder(AutoTokenizer.from_pretrained(base), max_len)
        )
        s = encoded.stats
        print(
            f"data: {s.examples} examples, {s.tokens / s.examples:.0f} tokens each on average, "
            f"longest {s.max_length}; {steps} steps of batch {args.batch_size}, LoRA r=8"
        )
        for grouped in (False, True):
            name = "length-grouped" if grouped else "shuffled"
            eff = padding_efficiency(encoded, args.batch_size, grouped)
            print(f"  real tokens / padded tokens, {name} batches: {eff:.3f}")

        config = TrainConfig(
            max_steps=steps, batch_size=args.batch_size, lr_scheduler="linear",
            logging_steps=max(1, steps // 10), max_seq_length=max_len, group_by_length=False,
        )  # fmt: skip
        grouped_config = TrainConfig.from_dict({**config.to_dict(), "group_by_length": True})
        plain: list[Measured] = []
        weft: list[Measured] = []
        weft_grouped: list[Measured] = []
        for i in range(repeats):
            plain.append(run_plain(config, base, encoded, device))
            weft.append(run_weft(config, base, data_file, root / f"out{i}"))
            weft_grouped.append(run_weft(grouped_config, base, data_file, root / f"outg{i}"))

    def median(runs: list[Measured]) -> float:
        return statistics.median(r.tokens_per_second for r in runs)

    def best(runs: list[Measured]) -> float:
        return max(r.tokens_per_second for r in runs)

    print(f"\ntraining tokens/s over {repeats} run(s) each (optimizer steps only)")
    for label, runs in (
        ("plain peft + torch loop", plain),
        ("weft train, shuffled batches", weft),
        ("weft train, defaults (grouped)", weft_grouped),
    ):
        rates = ", ".join(f"{r.tokens_per_second:,.0f}" for r in runs)
        peak = max((r.peak_memory or 0) for r in runs)
        memory = f"; peak GPU memory {peak / 2**30:.2f} GiB" if peak else ""
        print(f"  {label:32s} median {median(runs):>9,.0f}  (runs: {rates}){memory}")
    for label, runs in (("same batching", weft), ("weft defaults", weft_grouped)):
        print(
            f"  ratio weft/plain, {label}: {median(runs) / median(plain):.3f} (medians), "
            f"{best(runs) / best(plain):.3f} (bests)"
        )
    w = weft[0]
    print(
        f"  weft child process wall time {w.wall_seconds:.1f} s, of which training "
        f"{w.seconds:.1f} s (the rest: spawn, imports, load, tokenize, save)"
    )


if __name__ == "__main__":
    main()
