"""`TrainConfig`: every option of a training run, validated on construction, JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ml.training.errors import TrainConfigError

Method = Literal["lora", "full"]
Scheduler = Literal["linear", "cosine", "constant"]

METHODS: tuple[str, ...] = get_args(Method)
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
DEFAULT_LEARNING_RATE: dict[str, float] = {"lora": 2e-4, "full": 2e-5}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of one training run. Invalid values raise `TrainConfigError` at construction.

    `max_steps`, when set, overrides `epochs`. `learning_rate` None picks a default per method
    (2e-4 for LoRA, 2e-5 for a full fine-tune). `target_modules` None picks the projections of
    the architecture (see `ml.training.modeling.default_target_modules`). `bf16` None means
    "where the CUDA device supports it"; on the CPU training runs in float32. `warmup_steps`,
    when above zero, overrides `warmup_ratio`. `group_by_length` batches examples of similar
    length together (less padding); `max_grad_norm` 0 turns clipping off. `lora_dropout` is 0
    by default, as in peft and LLaMA-Factory: peft's dropout copies each adapted layer's input,
    which cost a quarter of the forward pass on the CPU.
    """

    method: Method = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None
    epochs: float = 3.0
    max_steps: int | None = None
    learning_rate: float | None = None
    lr_scheduler: Scheduler = "cosine"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 8
    gradient_accumulation: int = 1
    max_seq_length: int = 1024
    group_by_length: bool = True
    seed: int = 42
    eval_every_steps: int | None = None
    logging_steps: int = 10
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        modules: object = self.target_modules
        if isinstance(modules, list):  # from JSON, or a caller's list
            object.__setattr__(self, "target_modules", tuple(modules))
        for check in _CHECKS:
            check(self)

    @property
    def lr(self) -> float:
        """The learning rate in force: the given one, or the method's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LEARNING_RATE[self.method]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (target_modules as a list)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping such as `to_dict` writes; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise TrainConfigError(f"training config must be an object, not {_kind(data)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(
                f"unknown training option(s): {', '.join(map(str, unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        for name, value in data.items():
            _check_type(name, value)
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrainConfigError(f"training config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


# Expected JSON types per option (and whether null is allowed); bool is never accepted where a
# number is expected, although Python counts it as an int.
_INT = (int,)
_NUM = (int, float)
_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "method": ((str,), False),
    "lora_r": (_INT, False),
    "lora_alpha": (_INT, False),
    "lora_dropout": (_NUM, False),
    "target_modules": ((list, tuple), True),
    "epochs": (_NUM, False),
    "max_steps": (_INT, True),
    "learning_rate": (_NUM, True),
    "lr_scheduler": ((str,), False),
    "warmup_ratio": (_NUM, False),
    "warmup_steps": (_INT, False),
    "weight_decay": (_NUM, False),
    "max_grad_norm": (_NUM, False),
    "batch_size": (_INT, False),
    "gradient_accumulation": (_INT, False),
    "max_seq_length": (_INT, False),
    "group_by_length": ((bool,), False),
    "seed": (_INT, False),
    "eval_every_steps": (_INT, True),
    "logging_steps": (_INT, False),
    "bf16": ((bool,), True),
    "gradient_checkpointing": ((bool,), False),
    "device": ((str,), False),
}


_TYPE_NAMES: dict[tuple[type, ...], str] = {
    _INT: "an integer",
    _NUM: "a number",
    (bool,): "true or false",
    (list, tuple): "a list of module names",
}


def _check_type(name: str, value: object) -> None:
    types, nullable = _TYPES[name]
    if value is None:
        if nullable:
            return
        raise TrainConfigError(f"{name} must not be null")
    if isinstance(value, bool) and bool not in types:
        raise TrainConfigError(f"{name} must be {_TYPE_NAMES[types]}, not a boolean")
    if not isinstance(value, types):
        wanted = _TYPE_NAMES.get(types, "a string")
        raise TrainConfigError(f"{name} must be {wanted}, not {_kind(value)} {value!r}")
    if isinstance(value, int) and not -(2**53) <= value <= 2**53:  # JSON's exact integers
        raise TrainConfigError(f"{name} is out of range")


def _check_types(c: TrainConfig) -> None:
    for name in _TYPES:
        _check_type(name, getattr(c, name))
    if c.target_modules is not None:
        if not c.target_modules:
            raise TrainConfigError("target_modules must name at least one module (or be null)")
        for module in c.target_modules:
            if not isinstance(module, str) or not module.strip():
                raise TrainConfigError("target_modules must be non-empty module names")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise TrainConfigError(f"{name} must be {bound}, got {value}")


def _check_ranges(c: TrainConfig) -> None:
    if c.method not in METHODS:
        raise TrainConfigError(f"method must be one of {', '.join(METHODS)}, got {c.method!r}")
    if c.lr_scheduler not in SCHEDULERS:
        raise TrainConfigError(
            f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, got {c.lr_scheduler!r}"
        )
    _positive("lora_r", c.lora_r)
    _positive("lora_alpha", c.lora_alpha)
    if not 0 <= c.lora_dropout < 1:
        raise TrainConfigError(f"lora_dropout must be in [0, 1), got {c.lora_dropout}")
    _positive("epochs", c.epochs)
    if c.max_steps is not None:
        _positive("max_steps", c.max_steps)
    if c.learning_rate is not None:
        _positive("learning_rate", c.learning_rate)
    if not 0 <= c.warmup_ratio < 1:
        raise TrainConfigError(f"warmup_ratio must be in [0, 1), got {c.warmup_ratio}")
    _positive("warmup_steps", c.warmup_steps, allow_zero=True)
    _positive("weight_decay", c.weight_decay, allow_zero=True)
    _positive("max_grad_norm", c.max_grad_norm, allow_zero=True)
    _positive("batch_size", c.batch_size)
    _positive("gradient_accumulation", c.gradient_accumulation)
    if c.max_seq_length < 8:
        raise TrainConfigError(f"max_seq_length must be at least 8, got {c.max_seq_length}")
    _positive("seed", c.seed, allow_zero=True)
    if c.eval_every_steps is not None:
        _positive("eval_every_steps", c.eval_every_steps)
    _positive("logging_steps", c.logging_steps)
    if not _DEVICE.fullmatch(c.device):
        raise TrainConfigError(f"device must be auto, cpu, cuda or cuda:N, got {c.device!r}")


_CHECKS = (_check_types, _check_ranges)
