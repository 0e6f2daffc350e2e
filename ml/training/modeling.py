"""Loading the base model and tokenizer, choosing device and precision, attaching LoRA."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ml.training.config import TrainConfig
from ml.training.errors import TrainingError

# All attention and MLP projections: LoRA on all of them learns better than on q/v alone
# (QLoRA paper; LLaMA-Factory's "all" default).
_DECODER_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "qwen2": _DECODER_PROJECTIONS,
    "qwen3": _DECODER_PROJECTIONS,
    "llama": _DECODER_PROJECTIONS,
    "mistral": _DECODER_PROJECTIONS,
}


@dataclass(frozen=True)
class Precision:
    """Where training runs and in which dtypes: weights as loaded, and autocast (if any)."""

    device: torch.device
    load_dtype: torch.dtype
    autocast_dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return "bf16" if self.autocast_dtype == torch.bfloat16 else "fp32"


def resolve_precision(config: TrainConfig) -> Precision:
    """cuda when there is one (or as asked); bf16 where CUDA supports it, or as asked.

    LoRA keeps the frozen base in bf16 (half the memory) and the adapters in fp32; a full
    fine-tune keeps fp32 master weights, since AdamW updates vanish in bf16; both compute the
    forward and backward passes in bf16 under autocast.
    """
    if config.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError(f"device {config.device} was asked for, but CUDA is not available")
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.bf16 and device.type == "cuda" and not cuda_bf16:
        raise TrainingError(f"bf16 was asked for, but {device} does not support it")
    # On the CPU only when asked for: fast where the CPU has bf16 units (AMX), slow elsewhere.
    bf16 = cuda_bf16 if config.bf16 is None else config.bf16
    if not bf16:
        return Precision(device, torch.float32, None)
    load = torch.bfloat16 if config.method == "lora" else torch.float32
    return Precision(device, load, torch.bfloat16)


def check_base_model(base_model: str) -> None:
    """Fail early and clearly on a local path that cannot be a model (hub ids pass through)."""
    path = Path(base_model)
    looks_local = path.is_absolute() or base_model.startswith(".") or path.exists()
    if not looks_local and base_model.count("/") <= 1 and base_model.strip():
        return  # a hub id such as Qwen/Qwen2.5-0.5B: from_pretrained says what is wrong
    if not path.exists():
        raise TrainingError(f"base model path {base_model} does not exist")
    if not path.is_dir():
        raise TrainingError(f"base model path {base_model} is not a directory")
    if not (path / "config.json").is_file():
        raise TrainingError(
            f"base model path {base_model} has no config.json: not a save_pretrained folder"
        )


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    check_base_model(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot load"
        raise TrainingError(f"cannot load the tokenizer of {base_model}: {_reason(exc)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base_model: str, precision: Precision) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model: Any = AutoModelForCausalLM.from_pretrained(base_model, dtype=precision.load_dtype)
    except Exception as exc:
        raise TrainingError(f"cannot load base model {base_model}: {_reason(exc)}") from None
    model.config.use_cache = False  # the KV cache is for generation; training only pays for it
    return model.to(precision.device)


def default_target_modules(model: Any) -> tuple[str, ...]:
    """The architecture's projections, or else every linear layer but the output head."""
    known = DEFAULT_TARGET_MODULES.get(getattr(model.config, "model_type", ""))
    if known:
        return known
    head = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    }
    if not names:
        raise TrainingError("the base model has no linear layers to attach LoRA to")
    return tuple(sorted(names))


def attach_lora(model: Any, config: TrainConfig) -> tuple[Any, tuple[str, ...]]:
    """Wrap the model with fresh LoRA adapters; returns the model and the modules used."""
    from peft import LoraConfig, get_peft_model

    targets = config.target_modules or default_target_modules(model)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets),
        bias="none",
    )
    try:
        with peft_warnings_silenced():
            return get_peft_model(model, lora), targets
    except ValueError as exc:  # e.g. "Target modules {...} not found in the base model"
        raise TrainingError(f"cannot attach LoRA: {exc}") from None


@contextmanager
def peft_warnings_silenced() -> Iterator[None]:
    """peft 0.21 reads an attribute that transformers 5 deprecates: not ours to fix, and
    under `-W error` (our test suite) it would fail every LoRA run."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 500 else first[:500] + "…"
