"""`train`: one LoRA or full fine-tuning run, reporting events as it goes.

A plain loop rather than transformers' Trainer: it does the same work per step (forward,
backward, clip, AdamW, schedule), and owning it gives exact control over what a step reports,
where cancellation is checked and what a finished folder contains. Events are JSON-ready dicts:

- {"type": "start", max_steps, train/eval dataset stats, device, precision, parameters}
- {"type": "log", step, max_steps, epoch, loss, learning_rate, grad_norm, tokens_per_second,
  eta_seconds, progress} every `logging_steps` steps and at the last step
- {"type": "eval", step, epoch, eval_loss, perplexity} every `eval_every_steps` and at the end
- {"type": "done", output_dir, metrics}
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ml.training.artifacts import clear_marker, mark_complete, write_metrics, write_model_card
from ml.training.batching import Batch, collate, epoch_order
from ml.training.config import TrainConfig
from ml.training.encoding import ChatEncoder, EncodedDataset, encode_dataset
from ml.training.errors import TrainingCancelled, TrainingError
from ml.training.loss import LossFn, summed_loss_fn
from ml.training.modeling import (
    Precision,
    attach_lora,
    load_model,
    load_tokenizer,
    parameter_counts,
    resolve_precision,
)

Event = dict[str, Any]
_SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class TrainResult:
    """A finished run: where its artifacts are and what it measured."""

    output_dir: Path
    method: str
    metrics: dict[str, Any]
    curve: list[dict[str, Any]] = field(default_factory=list)
    eval_curve: list[dict[str, Any]] = field(default_factory=list)
    dataset: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "method": self.method,
            "metrics": self.metrics,
            "curve": self.curve,
            "eval_curve": self.eval_curve,
            "dataset": self.dataset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainResult:
        return cls(
            output_dir=Path(data["output_dir"]),
            method=data["method"],
            metrics=dict(data["metrics"]),
            curve=list(data.get("curve", [])),
            eval_curve=list(data.get("eval_curve", [])),
            dataset=dict(data.get("dataset", {})),
        )


def train(
    config: TrainConfig,
    base_model: str,
    train_path: str | Path,
    eval_path: str | Path | None,
    output_dir: str | Path,
    *,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dataset_info: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune `base_model` (a local folder or hub id) on a JSONL dataset into `output_dir`.

    Writes the adapter (LoRA) or the full weights, the tokenizer, metrics.json, a README.md
    model card and, last, the COMPLETE marker. `dataset_info` (the caller's dataset id, version,
    content hash...) goes into metrics and card as given. Raises `TrainingError` early for a bad
    base model or dataset, `TrainingCancelled` when `should_stop()` turns true (checked after
    every optimizer step), `TrainConfigError` for an invalid config.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    run = _Run(config, base_model, on_event or (lambda _: None), should_stop or (lambda: False))
    return run.execute(
        Path(train_path),
        Path(eval_path) if eval_path is not None else None,
        Path(output_dir),
        dict(dataset_info or {}),
    )


class _Run:
    def __init__(
        self,
        config: TrainConfig,
        base_model: str,
        emit: Callable[[Event], None],
        should_stop: Callable[[], bool],
    ) -> None:
        self.config = config
        self.base_model = base_model
        self.emit = emit
        self.should_stop = should_stop
        self.curve: list[dict[str, Any]] = []
        self.eval_curve: list[dict[str, Any]] = []

    def execute(
        self, train_path: Path, eval_path: Path | None, out: Path, info: dict[str, Any]
    ) -> TrainResult:
        config = self.config
        started = time.perf_counter()
        for path in (train_path, eval_path):
            if path is not None and not path.is_file():
                raise TrainingError(f"dataset file {path} does not exist")
        precision = resolve_precision(config)
        _seed_everything(config.seed)

        tokenizer = load_tokenizer(self.base_model)
        train_data, eval_data = _encode(
            ChatEncoder(tokenizer, config.max_seq_length), train_path, eval_path
        )
        model, targets = _prepare_model(self.base_model, config, precision)
        trainable, total = parameter_counts(model)

        schedule = _Schedule.plan(config, len(train_data))
        optimizer = _optimizer(model, config, precision)
        from transformers import get_scheduler

        scheduler = get_scheduler(
            _SCHEDULERS[config.lr_scheduler],
            optimizer,
            num_warmup_steps=schedule.warmup_steps,
            num_training_steps=schedule.max_steps,
        )
        out.mkdir(parents=True, exist_ok=True)
        clear_marker(out)
        if precision.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(precision.device)
        dataset = {
            "info": info,
            "train": train_data.stats.to_dict(),
            "eval": eval_data.stats.to_dict() if eval_data is not None else None,
        }
        environment = _environment(precision)
        self.emit(
            {
                "type": "start",
                "max_steps": schedule.max_steps,
                "train": dataset["train"],
                "eval": dataset["eval"],
                "trainable_parameters": trainable,
                "total_parameters": total,
                **environment,
            }
        )
        loss_fn = summed_loss_fn(model)
        autocast = _autocast(precision)
        try:
            summary = self._loop(
                model, loss_fn, optimizer, scheduler, schedule, train_data, eval_data, tokenizer,
                precision, autocast,
            )  # fmt: skip
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(
                "out of GPU memory: lower batch_size or max_seq_length, or turn on "
                "gradient_checkpointing"
            ) from None

        metrics: dict[str, Any] = {
            **summary,
            "trainable_parameters": trainable,
            "total_parameters": total,
            **environment,
        }
        if precision.device.type == "cuda":
            metrics["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(precision.device)
        _save_weights(model, tokenizer, out, self.base_model, config)
        metrics["runtime_seconds"] = round(time.perf_counter() - started, 3)
        resolved = {**config.to_dict(), "learning_rate": config.lr}
        if targets is not None:
            resolved["target_modules"] = list(targets)
        report = {
            "base_model": self.base_model,
            "method": config.method,
            "config": resolved,
            "dataset": dataset,
            "metrics": metrics,
            "curve": self.curve,
            "eval_curve": self.eval_curve,
        }
        write_metrics(out, report)
        write_model_card(out, report)
        mark_complete(out)  # last: only now is the folder a finished artifact
        result = TrainResult(out, config.method, metrics, self.curve, self.eval_curve, dataset)
        self.emit({"type": "done", **result.to_dict()})
        return result

    def _loop(
        self,
        model: Any,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        schedule: _Schedule,
        train_data: EncodedDataset,
        eval_data: EncodedDataset | None,
        tokenizer: Any,
        precision: Precision,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> dict[str, Any]:
        config = self.config
        device = precision.device
        pad_id = int(tokenizer.pad_token_id)
        batches = _batch_stream(train_data, config, pad_id)
        params = [p for p in model.parameters() if p.requires_grad]
        window = _Window.start(device)
        total_loss = torch.zeros((), device=device)
        total_targets = total_tokens = 0
        train_seconds = 0.0
        micro_done = 0
        last_log: dict[str, Any] = {}
        for step in range(1, schedule.max_steps + 1):
            count = min(config.gradient_accumulation, schedule.micro_batches - micro_done)
            micro = [next(batches) for _ in range(count)]
            micro_done += count
            targets = sum(b.targets for b in micro)
            for batch in micro:
                with autocast():
                    loss_sum = loss_fn(batch.to(device))
                (loss_sum / targets).backward()  # type: ignore[no-untyped-call]
                window.loss += loss_sum.detach().float()
            window.add(targets, sum(b.tokens for b in micro))
            grad_norm = (
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                if config.max_grad_norm > 0
                else None
            )
            learning_rate = float(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if self.should_stop():
                raise TrainingCancelled(f"training was cancelled at step {step}")

            epoch = micro_done / schedule.micro_batches_per_epoch
            if step % config.logging_steps == 0 or step == schedule.max_steps:
                loss_value, seconds = window.close()
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"the loss became {loss_value} at step {step}: "
                        "lower the learning rate or check the data"
                    )
                train_seconds += seconds
                total_loss += window.loss
                total_targets += window.targets
                total_tokens += window.tokens
                last_log = {
                    "type": "log",
                    "step": step,
                    "max_steps": schedule.max_steps,
                    "epoch": round(epoch, 4),
                    "loss": loss_value,
                    "learning_rate": learning_rate,
                    "grad_norm": _finite(grad_norm),
                    "tokens_per_second": round(window.tokens / seconds, 1) if seconds else None,
                    "eta_seconds": round((schedule.max_steps - step) * train_seconds / step, 1),
                    "progress": round(step / schedule.max_steps, 4),
                }
                self.curve.append(
                    {k: last_log[k] for k in ("step", "epoch", "loss", "learning_rate")}
                )
                self.emit(last_log)
                window = _Window.start(device)
            every = config.eval_every_steps
            if eval_data is not None and every and step % every == 0 and step < schedule.max_steps:
                paused = time.perf_counter()
                self._evaluate(model, loss_fn, eval_data, pad_id, precision, autocast, step, epoch)
                window.started += time.perf_counter() - paused  # evaluating is not training

        summary: dict[str, Any] = {
            "steps": schedule.max_steps,
            "epochs": round(micro_done / schedule.micro_batches_per_epoch, 4),
            "train_loss": float(total_loss.item()) / max(total_targets, 1),
            "final_loss": last_log.get("loss"),
            "train_tokens": total_tokens,
            "train_seconds": round(train_seconds, 3),
            "tokens_per_second": round(total_tokens / train_seconds, 1) if train_seconds else None,
        }
        if eval_data is not None:
            final_epoch = micro_done / schedule.micro_batches_per_epoch
            point = self._evaluate(
                model, loss_fn, eval_data, pad_id, precision, autocast, schedule.max_steps,
                final_epoch,
            )  # fmt: skip
            summary["eval_loss"] = point["eval_loss"]
            summary["perplexity"] = point["perplexity"]
        return summary

    def _evaluate(
        self,
        model: Any,
        loss_fn: LossFn,
        data: EncodedDataset,
        pad_id: int,
        precision: Precision,
        autocast: Callable[[], AbstractContextManager[Any]],
        step: int,
        epoch: float,
    ) -> dict[str, Any]:
        model.eval()
        total = torch.zeros((), device=precision.device)
        targets = 0
        # No activations are kept for a backward pass: twice the batch fits.
        order = np.argsort(-data.lengths, kind="stable")
        size = self.config.batch_size * 2
        with torch.inference_mode():
            for start in range(0, len(order), size):
                batch = collate(data, order[start : start + size], pad_id)
                with autocast():
                    total += loss_fn(batch.to(precision.device)).float()
                targets += batch.targets
        model.train()
        loss = float(total.item()) / targets
        point = {
            "type": "eval",
            "step": step,
            "epoch": round(epoch, 4),
            "eval_loss": loss,
            "perplexity": math.exp(loss) if loss < 700 else None,  # None: beyond a float
        }
        self.eval_curve.append({k: v for k, v in point.items() if k != "type"})
        self.emit(point)
        return point


@dataclass
class _Schedule:
    max_steps: int
    micro_batches: int  # forward/backward passes in all
    micro_batches_per_epoch: int
    warmup_steps: int

    @classmethod
    def plan(cls, config: TrainConfig, examples: int) -> _Schedule:
        per_epoch = math.ceil(examples / config.batch_size)
        if config.max_steps is not None:
            micro = config.max_steps * config.gradient_accumulation
        else:
            micro = max(1, math.ceil(config.epochs * per_epoch))
        steps = math.ceil(micro / config.gradient_accumulation)
        warmup = config.warmup_steps or math.ceil(config.warmup_ratio * steps)
        return cls(steps, micro, per_epoch, min(warmup, steps))


@dataclass
class _Window:
    """Loss, targets and tokens since the last log line, and when that was."""

    loss: torch.Tensor
    started: float
    targets: int = 0
    tokens: int = 0

    @classmethod
    def start(cls, device: torch.device) -> _Window:
        return cls(torch.zeros((), device=device), time.perf_counter())

    def add(self, targets: int, tokens: int) -> None:
        self.targets += targets
        self.tokens += tokens

    def close(self) -> tuple[float, float]:
        """(mean loss per target token, seconds); reading the loss waits for the device."""
        loss = float(self.loss.item()) / max(self.targets, 1)
        return loss, time.perf_counter() - self.started


def _encode(
    encoder: ChatEncoder, train_path: Path, eval_path: Path | None
) -> tuple[EncodedDataset, EncodedDataset | None]:
    train_data = encode_dataset(train_path, encoder)
    if not len(train_data):
        skipped = train_data.stats.skipped
        why = f" ({skipped} had no reply token within max_seq_length)" if skipped else ""
        raise TrainingError(f"dataset {train_path} has no usable examples{why}")
    eval_data = encode_dataset(eval_path, encoder) if eval_path is not None else None
    if eval_data is not None and not len(eval_data):
        eval_data = None  # an empty eval split (eval ratio 0) means: no evaluation
    return train_data, eval_data


def _prepare_model(
    base_model: str, config: TrainConfig, precision: Precision
) -> tuple[Any, tuple[str, ...] | None]:
    """The model ready to train, and the LoRA target modules (None for a full fine-tune)."""
    model = load_model(base_model, precision)
    if config.gradient_checkpointing:
        _enable_checkpointing(model)
    targets: tuple[str, ...] | None = None
    if config.method == "lora":
        model, targets = attach_lora(model, config)
    model.train()
    return model, targets


def _batch_stream(data: EncodedDataset, config: TrainConfig, pad_id: int) -> Iterator[Batch]:
    lengths = data.lengths
    epoch = 0
    while True:
        order: list[npt.NDArray[np.int64]] = epoch_order(
            lengths,
            config.batch_size,
            seed=config.seed,
            epoch=epoch,
            group_by_length=config.group_by_length,
        )
        for indices in order:
            yield collate(data, indices, pad_id)
        epoch += 1


def _enable_checkpointing(model: Any) -> None:
    # Non-reentrant checkpointing needs no input gradients, so it works under LoRA too.
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _optimizer(model: Any, config: TrainConfig, precision: Precision) -> torch.optim.Optimizer:
    # No weight decay on biases and norm weights (1-D), as is usual for transformers.
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = precision.device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, fused=fused)


def _autocast(precision: Precision) -> Callable[[], AbstractContextManager[Any]]:
    dtype = precision.autocast_dtype
    if dtype is None:
        return nullcontext
    device_type = precision.device.type
    return lambda: torch.autocast(device_type=device_type, dtype=dtype)


def _environment(precision: Precision) -> dict[str, Any]:
    device = precision.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": str(device), "device_name": name, "precision": precision.name}


def _save_weights(
    model: Any, tokenizer: Any, out: Path, base_model: str, config: TrainConfig
) -> None:
    if config.method == "full":
        stored = _checkpoint_dtype(base_model)
        if stored in (torch.bfloat16, torch.float16):
            model = model.to(stored)  # keep the base's storage dtype: half the size of fp32
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _checkpoint_dtype(base_model: str) -> torch.dtype | None:
    from transformers import AutoConfig

    dtype = getattr(AutoConfig.from_pretrained(base_model), "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else None


def _finite(value: torch.Tensor | None) -> float | None:
    """A float for an event, or None where JSON has no number for it (inf, nan)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # third-party code may draw from the global generator
    torch.manual_seed(seed)
